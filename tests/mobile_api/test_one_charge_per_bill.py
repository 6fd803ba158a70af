"""One pending order per bill (DESIGN §5), over real HTTP with the sandbox playing WeChat Pay."""
from __future__ import annotations

import threading

import requests
from sqlalchemy import select

from app.models import Bill, BillStatus, Payment, PaymentItem, PaymentState
from tests.mobile_api.payflow import fresh, order, payments, resident, second_bill


def test_the_same_request_again_answers_the_pending_order(db, pay_wechat, world, api):
    me, _, _ = resident(db, pay_wechat, api, world.household)
    first = order(me, world.household, world.bill)
    again = order(me, world.household, world.bill)
    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    assert again.json()["out_trade_no"] == first.json()["out_trade_no"]
    assert again.json()["amount_fen"] == first.json()["amount_fen"]
    assert again.json()["pay_params"]["package"].startswith("prepay_id=wx")   # payable: signed afresh
    assert len(payments(db)) == 1
    # The answered order can be paid, and the bill is credited once.
    assert pay_wechat.pay(first.json()["out_trade_no"])["notification"]["delivered"]
    assert fresh(db, Bill, world.bill.id).status == BillStatus.PAID


def test_a_different_set_of_bills_closes_the_old_order_at_wechat_pay_first(db, pay_wechat, world, api, make_season):
    older = second_bill(db, make_season, world)
    me, _, _ = resident(db, pay_wechat, api, world.household)
    old = order(me, world.household, world.bill).json()["out_trade_no"]
    new = order(me, world.household, world.bill, older)
    assert new.status_code == 201, new.text
    assert new.json()["out_trade_no"] != old
    assert {i["bill_id"] for i in new.json()["items"]} == {world.bill.id, older.id}

    # Closed at WeChat Pay, and here; the bill is held by the new order only.
    assert pay_wechat.order(old)["order"]["trade_state"] == "CLOSED"
    states = {p.out_trade_no: p.state for p in payments(db)}
    assert states == {old: PaymentState.CLOSED, new.json()["out_trade_no"]: PaymentState.CREATED}
    holders = db.session.scalars(select(PaymentItem.payment_id).where(PaymentItem.pending_bill_id == world.bill.id)).all()
    assert holders == [db.session.scalar(select(Payment.id).where(Payment.out_trade_no == new.json()["out_trade_no"]))]

    # The payer's phone still shows the old order: WeChat Pay refuses to take money for it.
    refused = requests.post(f"{pay_wechat.base}/pay/{old}/pay", json={}, timeout=10)
    assert refused.status_code == 409 and "ORDER_CLOSED" in refused.text
    assert fresh(db, Bill, world.bill.id).status == BillStatus.UNPAID
    # The new one is paid and credits both bills.
    assert pay_wechat.pay(new.json()["out_trade_no"])["notification"]["delivered"]
    assert fresh(db, Bill, world.bill.id).status == BillStatus.PAID
    assert fresh(db, Bill, older.id).status == BillStatus.PAID


def test_another_payer_for_the_same_bill_replaces_the_pending_order(db, pay_wechat, world, api):
    first_phone, _, _ = resident(db, pay_wechat, api, world.household)
    second_phone, _, _ = resident(db, pay_wechat, api, world.household)
    old = order(first_phone, world.household, world.bill).json()["out_trade_no"]
    new = order(second_phone, world.household, world.bill)
    assert new.status_code == 201 and new.json()["out_trade_no"] != old
    assert pay_wechat.order(old)["order"]["trade_state"] == "CLOSED"
    assert [p.state for p in payments(db)] == [PaymentState.CLOSED, PaymentState.CREATED]


def test_two_requests_at_once_make_one_order(db, pay_wechat, world, api):
    me, _, _ = resident(db, pay_wechat, api, world.household)
    body = {"household_id": world.household.id, "bill_ids": [world.bill.id]}
    answers, start = [], threading.Barrier(2)

    def go():
        start.wait()
        answers.append(me.post("/api/v1/payments", json=body))

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status_code for a in answers) == [200, 201], [a.text for a in answers]
    assert len({a.json()["out_trade_no"] for a in answers}) == 1
    assert [p.state for p in payments(db)] == [PaymentState.CREATED]
    # Both answers are payable parameters of that one order.
    assert all(a.json()["pay_params"]["package"].startswith("prepay_id=wx") for a in answers)


def test_a_paid_bill_cannot_be_ordered_again(db, pay_wechat, world, api):
    me, _, _ = resident(db, pay_wechat, api, world.household)
    no = order(me, world.household, world.bill).json()["out_trade_no"]
    pay_wechat.pay(no)
    again = order(me, world.household, world.bill)
    assert again.status_code == 409
    assert again.json()["error"] == {"code": "bill_not_open", "message": "2026-2027供暖季账单已缴清，请勿重复缴费"}
    assert len(payments(db)) == 1


def test_a_pending_order_paid_meanwhile_is_credited_not_replaced(db, pay_wechat, world, api, make_season):
    """The old order was paid at WeChat Pay just before a request for a different set closes it:
    WeChat Pay says ORDERPAID, the old order is credited, and the new request sees a paid bill."""
    older = second_bill(db, make_season, world)
    me, _, _ = resident(db, pay_wechat, api, world.household)
    old = order(me, world.household, world.bill).json()["out_trade_no"]
    pay_wechat.pay(old, notify=False)          # paid; the notification has not arrived yet
    answer = order(me, world.household, world.bill, older)
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "bill_not_open"
    assert fresh(db, Bill, world.bill.id).status == BillStatus.PAID
    assert [p.state for p in payments(db)] == [PaymentState.PAID]
    # The older season alone can still be paid.
    assert order(me, world.household, older).status_code == 201
