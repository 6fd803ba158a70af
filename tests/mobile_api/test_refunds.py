"""Money paid twice for one bill goes back through WeChat Pay's refund API, once, and the payer
is told; over real HTTP with the sandbox playing WeChat Pay (refunds, REFUND.* notifications)."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from app.models import Bill, BillStatus, OutboxMessage, Payment, PaymentState, Refund, RefundState
from app.services.receipts import receipt_url
from tests.mobile_api.payflow import fresh, legacy_order, order, resident, second_bill
from tests.web.conftest import PASSWORD, Console


def _two_phones_pay_one_bill(db, pay_wechat, world, api):
    """Two orders for one bill made before "one pending order per bill", both paid."""
    phone_a, user_a, person_a = resident(db, pay_wechat, api, world.household)
    _, user_b, person_b = resident(db, pay_wechat, api, world.household)
    first = order(phone_a, world.household, world.bill).json()
    second = legacy_order(db, user_b, world.household, [fresh(db, Bill, world.bill.id)])
    assert pay_wechat.pay(first["out_trade_no"])["notification"]["delivered"]
    assert pay_wechat.pay(second.out_trade_no)["notification"]["delivered"]
    return first, second, person_a, person_b


def test_a_second_payment_is_refunded_once_and_the_payer_told(db, pay_wechat, world, api, worker, client,
                                                              make_staff):
    first, second, person_a, person_b = _two_phones_pay_one_bill(db, pay_wechat, world, api)

    # The bill is credited once; the second payment is all surplus, recorded for a refund.
    bill = fresh(db, Bill, world.bill.id)
    assert (bill.status, bill.paid_fen) == (BillStatus.PAID, bill.amount_fen)
    assert bill.late_fee_paid_fen == first["items"][0]["late_fee_fen"]
    refund = db.session.scalar(select(Refund))
    assert (refund.out_refund_no, refund.amount_fen, refund.state) == (
        f"RF{second.out_trade_no}", second.amount_fen, RefundState.PENDING)
    assert first["out_trade_no"] in refund.detail and "已缴清" in refund.detail

    # The job asks WeChat Pay to refund (accepted: PROCESSING); the payers are told of their payments.
    worker()
    refund = fresh(db, Refund, refund.id)
    assert refund.state == RefundState.PROCESSING and refund.refund_id and refund.accepted_at
    at_wechat = pay_wechat.refund(refund.out_refund_no)
    assert at_wechat["refund"]["amount"] == {**at_wechat["refund"]["amount"], "refund": second.amount_fen,
                                             "total": second.amount_fen}
    assert at_wechat["notify_url"].endswith("/pay/refund-notify")
    assert pay_wechat.order(second.out_trade_no)["order"]["trade_state"] == "REFUND"
    paid_push = str(pay_wechat.inbox(person_a["openid"]))
    assert "缴费成功" in paid_push and receipt_url(first["out_trade_no"]) in paid_push
    told_b = pay_wechat.inbox(person_b["openid"])
    assert len(told_b) == 1 and "已缴清" in str(told_b) and "原路" in str(told_b)   # paid twice: it goes back

    # WeChat Pay finishes it and notifies; the same notification again, and 5 copies at once.
    settled = pay_wechat.settle_refund(refund.out_refund_no)
    assert settled["notification"]["delivered"], settled
    copies = []
    threads = [threading.Thread(target=lambda: copies.append(pay_wechat.refund_notify(refund.out_refund_no)))
               for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(c["delivered"] for c in copies), copies
    refund = fresh(db, Refund, refund.id)
    assert refund.state == RefundState.SUCCESS and refund.succeeded_at and refund.user_received_account
    assert fresh(db, Payment, second.id).state == PaymentState.REFUNDED
    notices = db.session.scalar(select(func.count()).where(OutboxMessage.topic == "notify.refund"))
    assert notices == 1

    worker()
    news = pay_wechat.inbox(person_b["openid"])[len(told_b):]     # one notice, however many notifications
    assert len(news) == 1 and "退款" in str(news[0])
    assert f"{second.amount_fen / 100:.2f}" in str(news[0]).replace(",", "")

    # Staff see it on the console's 退款 page, with its state and reason.
    agent = make_staff(role="agent", password=PASSWORD)
    db.session.commit()
    console = Console(client)
    console.login(agent.username)
    page = console.get("/console/refunds").get_data(as_text=True)
    assert refund.out_refund_no in page and "已退款" in page and "供热费重复缴纳" in page
    assert first["out_trade_no"] in page   # the detail names the order that paid the bill


def test_a_retried_refund_request_refunds_once(db, pay_wechat, world, api, worker):
    """The refund job runs again (a worker died after WeChat Pay accepted it): same out_refund_no,
    WeChat Pay answers with the same refund; the money goes back once."""
    _, second, _, _ = _two_phones_pay_one_bill(db, pay_wechat, world, api)
    worker()
    refund = db.session.scalar(select(Refund))
    first_id = fresh(db, Refund, refund.id).refund_id
    # As if the answer had been lost: back to pending, submitted again.
    refund.state, refund.refund_id = RefundState.PENDING, None
    db.session.commit()
    from jobs.refunds import submit_refund

    assert submit_refund({"refund_id": refund.id}) == RefundState.PROCESSING
    refund = fresh(db, Refund, refund.id)
    assert refund.refund_id == first_id
    import requests

    listed = requests.get(f"{pay_wechat.base}/pay/refunds", timeout=10).json()
    assert [r["out_refund_no"] for r in listed] == [refund.out_refund_no]


def test_a_refund_wechat_pay_cannot_fund_now_is_retried_later(db, pay_wechat, world, api, worker):
    _two_phones_pay_one_bill(db, pay_wechat, world, api)
    pay_wechat.faults(pay_error="NOT_ENOUGH", times=1, api="refund/domestic/refunds")
    worker()
    refund = db.session.scalar(select(Refund))
    refund = fresh(db, Refund, refund.id)
    assert refund.state == RefundState.PENDING and "NOT_ENOUGH" in refund.last_error
    row = db.session.scalar(select(OutboxMessage).where(OutboxMessage.topic == "pay.refund"))
    assert row.status == "pending" and row.available_at > row.created_at   # parked, not dropped
    # Later (the sweeper's turn): accepted.
    from jobs.outbox import deliver_outbox_message

    deliver_outbox_message(row.id)
    assert fresh(db, Refund, refund.id).state == RefundState.PROCESSING


def test_a_refund_wechat_pay_refuses_is_shown_to_staff_and_can_be_submitted_again(
        db, pay_wechat, world, api, worker, client, make_staff):
    _two_phones_pay_one_bill(db, pay_wechat, world, api)
    pay_wechat.faults(pay_error="USER_ACCOUNT_ABNORMAL", times=1, api="refund/domestic/refunds")
    worker()
    refund = fresh(db, Refund, db.session.scalar(select(Refund.id)))
    assert refund.state == RefundState.FAILED and "USER_ACCOUNT_ABNORMAL" in refund.last_error
    agent = make_staff(role="agent", password=PASSWORD)
    db.session.commit()
    console = Console(client)
    console.login(agent.username)
    page = console.get("/console/refunds?state=failed").get_data(as_text=True)
    assert refund.out_refund_no in page and "提交失败" in page and "重新提交" in page
    assert console.post(f"/console/refunds/{refund.id}/retry").status_code == 302
    worker()
    assert fresh(db, Refund, refund.id).state == RefundState.PROCESSING


def test_an_old_order_paid_late_refunds_only_what_was_paid_twice(db, pay_wechat, world, api, worker, make_season):
    """An old order for bill A was closed here but not at WeChat Pay (before the fix, a close
    that never reached it); a newer order for A and B was paid; then the old one was paid too.
    The surplus is exactly the old order's principal and late fee for A."""
    older = second_bill(db, make_season, world)
    me, user, _ = resident(db, pay_wechat, api, world.household)
    old = legacy_order(db, user, world.household, [fresh(db, Bill, older.id)])
    old.state = PaymentState.CLOSED
    db.session.commit()
    new = order(me, world.household, world.bill, fresh(db, Bill, older.id)).json()
    pay_wechat.pay(new["out_trade_no"])
    pay_wechat.pay(old.out_trade_no)
    refund = db.session.scalar(select(Refund))
    item = fresh(db, Payment, old.id).items[0]
    assert refund.amount_fen == item.principal_fen + item.late_fee_fen == old.amount_fen
    assert item.late_fee_fen > 0
    older_bill = fresh(db, Bill, older.id)
    assert (older_bill.paid_fen, older_bill.late_fee_paid_fen) == (older_bill.amount_fen,
                                                                   [i for i in new["items"] if i["bill_id"] == older.id][0]["late_fee_fen"])


def test_the_receipt_shows_principal_late_fee_and_total(app, db, pay_wechat, world, api, make_season):
    older = second_bill(db, make_season, world)
    me, _, _ = resident(db, pay_wechat, api, world.household)
    paid = order(me, world.household, world.bill, older).json()
    pay_wechat.pay(paid["out_trade_no"])
    receipt = me.get(f"/api/v1/payments/{paid['out_trade_no']}/receipt").json()
    principal = sum(i["principal_fen"] for i in paid["items"])
    late_fee = sum(i["late_fee_fen"] for i in paid["items"])
    assert late_fee > 0 and principal > 0
    assert (receipt["principal_fen"], receipt["late_fee_fen"], receipt["amount_fen"]) == (
        principal, late_fee, principal + late_fee)
    assert receipt["refunded_fen"] == 0 and receipt["refunds"] == []
    page = api().get(receipt["verify_url"].replace(app.config["PUBLIC_BASE_URL"], "")).text
    yuan = lambda fen: f"{fen / 100:,.2f}"   # noqa: E731
    assert f'data-testid="receipt-principal">{yuan(principal)}元' in page
    assert f'data-testid="receipt-late-fee">{yuan(late_fee)}元' in page
    assert f'data-testid="receipt-total">{yuan(principal + late_fee)}元' in page
    for item in paid["items"]:
        assert (f"{item['season']}供暖季：本金 {yuan(item['principal_fen'])}元，滞纳金 {yuan(item['late_fee_fen'])}元，"
                f"小计 {yuan(item['principal_fen'] + item['late_fee_fen'])}元") in page
    assert "含滞纳金" not in page   # the old page called the principal a total "including" the late fee


def test_a_forged_refund_notification_is_refused(db, pay_wechat, world, api, worker, live_app):
    import json as _json

    import requests

    from tests.mobile_api.test_pay_notify import forged_headers

    _two_phones_pay_one_bill(db, pay_wechat, world, api)
    worker()
    refund = db.session.scalar(select(Refund))
    body = _json.dumps({"id": "x", "event_type": "REFUND.SUCCESS", "resource": {
        "original_type": "refund", "algorithm": "AEAD_AES_256_GCM", "ciphertext": "", "nonce": "",
        "associated_data": ""}}).encode()
    answer = requests.post(live_app.url + "/pay/refund-notify", data=body, headers=forged_headers(pay_wechat, body),
                           timeout=10)
    assert answer.status_code == 401 and answer.json() == {"code": "FAIL", "message": "签名验证失败"}
    assert fresh(db, Refund, refund.id).state == RefundState.PROCESSING


@pytest.mark.parametrize("status", [RefundState.ABNORMAL, RefundState.CLOSED])
def test_abnormal_and_closed_refund_notifications_are_recorded_once(db, pay_wechat, world, api, worker, status):
    """REFUND.ABNORMAL (the payer's card refused it: staff take over) and REFUND.CLOSED, with the
    resource as WeChat Pay documents it — no appid, no success_time — are accepted like SUCCESS."""
    _two_phones_pay_one_bill(db, pay_wechat, world, api)
    worker()
    refund = db.session.scalar(select(Refund))
    settled = pay_wechat.settle_refund(refund.out_refund_no, status.upper())
    assert (settled["notification"]["status"], settled["notification"]["delivered"]) == (204, True), settled
    assert pay_wechat.refund_notify(refund.out_refund_no)["delivered"]       # WeChat Pay's retry
    refund = fresh(db, Refund, refund.id)
    assert refund.state == status and refund.succeeded_at is None
    assert fresh(db, Payment, refund.payment_id).state == PaymentState.PAID   # nothing went back


def test_refunds_name_the_refund_notify_url(app, db, pay_wechat, world, api, worker, live_app, monkeypatch):
    """wechatpayv3 would fill in the payment notify URL; WeChat Pay posts the result where the
    refund request said (WECHATPAY_REFUND_NOTIFY_URL)."""
    refund_url = live_app.url.replace("127.0.0.1", "localhost") + "/pay/refund-notify"
    monkeypatch.setitem(app.config, "WECHATPAY_REFUND_NOTIFY_URL", refund_url)
    _two_phones_pay_one_bill(db, pay_wechat, world, api)
    worker()
    refund = db.session.scalar(select(Refund))
    assert pay_wechat.refund(refund.out_refund_no)["notify_url"] == refund_url
    assert pay_wechat.settle_refund(refund.out_refund_no)["notification"]["delivered"]
    assert fresh(db, Refund, refund.id).state == RefundState.SUCCESS
