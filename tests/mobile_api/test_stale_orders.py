"""The stale-order job (jobs/payments.py) against every trade_state WeChat Pay documents —
SUCCESS, REFUND, NOTPAY, USERPAYING, PAYERROR, CLOSED, REVOKED — with the sandbox as WeChat
Pay: each order ends here for good, and none comes back run after run."""
from __future__ import annotations

from datetime import timedelta

import pytest

from app.models import Bill, BillStatus, Payment, PaymentState, utcnow
from jobs.payments import close_stale_payments
from tests.mobile_api.payflow import fresh, order, resident
from wechat import pay as wechat_pay


def _stale_order(db, pay_wechat, world, api) -> Payment:
    me, _, _ = resident(db, pay_wechat, api, world.household)
    created = order(me, world.household, world.bill)
    assert created.status_code == 201, created.text
    return db.session.query(Payment).filter_by(out_trade_no=created.json()["out_trade_no"]).one()


def _sweep(worker) -> int:
    """One run of the cron entry three hours on, its jobs done; returns how many it took up."""
    taken = close_stale_payments(now=utcnow() + timedelta(hours=3))
    worker()
    return taken


def _at_wechat(pay_wechat, out_trade_no) -> str:
    return pay_wechat.order(out_trade_no)["order"]["trade_state"]


def test_an_order_refunded_at_wechat_pay_is_credited_once_and_not_taken_up_again(db, pay_wechat, world, api,
                                                                                 worker):
    payment = _stale_order(db, pay_wechat, world, api)
    pay_wechat.pay(payment.out_trade_no, notify=False)       # paid; the notification was lost
    # Staff refunded it in WeChat Pay's merchant platform (not through this backend).
    wechat_pay.refund(out_refund_no="RFMCHPLATFORM0001", out_trade_no=payment.out_trade_no, transaction_id=None,
                      refund_fen=payment.amount_fen, total_fen=payment.amount_fen, reason="商户平台退款")
    assert _at_wechat(pay_wechat, payment.out_trade_no) == "REFUND"

    assert _sweep(worker) == 1
    paid = fresh(db, Payment, payment.id)
    assert paid.state == PaymentState.PAID and paid.transaction_id
    assert fresh(db, Bill, world.bill.id).status == BillStatus.PAID     # the money did arrive
    assert _sweep(worker) == 0                                          # not asked about again, ever


@pytest.mark.parametrize("trade_state", ["NOTPAY", "USERPAYING", "PAYERROR"])
def test_an_unpaid_order_is_closed_at_wechat_pay_and_here(db, pay_wechat, world, api, worker, trade_state):
    payment = _stale_order(db, pay_wechat, world, api)
    if trade_state != "NOTPAY":     # the payer's side: entering the password / the bank refused
        pay_wechat._post(f"/pay/{payment.out_trade_no}/state", json={"trade_state": trade_state})
    assert _sweep(worker) == 1
    assert fresh(db, Payment, payment.id).state == PaymentState.CLOSED
    assert _at_wechat(pay_wechat, payment.out_trade_no) == "CLOSED"    # it can no longer be paid there
    assert fresh(db, Bill, world.bill.id).status != BillStatus.PAID
    assert _sweep(worker) == 0


@pytest.mark.parametrize("how", ["closed", "revoked", "never_reached"])
def test_an_order_wechat_pay_has_closed_or_never_had_is_closed_here(db, pay_wechat, world, api, worker, how):
    payment = _stale_order(db, pay_wechat, world, api)
    if how == "closed":
        assert wechat_pay.close_order(payment.out_trade_no) == "closed"
    elif how == "revoked":
        pay_wechat._post(f"/pay/{payment.out_trade_no}/state", json={"trade_state": "REVOKED"})
    else:
        pay_wechat.reset()          # WeChat Pay has no such order (the prepay never reached it)
    assert _sweep(worker) == 1
    assert fresh(db, Payment, payment.id).state == PaymentState.CLOSED
    assert _sweep(worker) == 0
    # The bill is free again: a new order can be made for it.
    me, _, _ = resident(db, pay_wechat, api, world.household)
    assert order(me, world.household, world.bill).status_code == 201
