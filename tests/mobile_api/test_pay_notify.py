"""POST /pay/notify and the order lifecycle against the WeChat Pay sandbox, over real HTTP."""
from __future__ import annotations

import json
import secrets
import time
from datetime import timedelta

import requests
from sqlalchemy import select

from app.models import Bill, BillStatus, HouseholdBinding, Payment, PaymentState, WechatUser, utcnow
from mobile_api.auth import issue_token
from wechat.sandbox.crypto import aead_encrypt, generate_rsa_key, rsa_sign
from wechat.sandbox.pay import signature_headers


def forged_headers(driver, body: bytes) -> dict:
    """Headers that look like WeChat Pay's, signed with a key that is not the platform's."""
    timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
    return {"Content-Type": "application/json", "Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": nonce,
            "Wechatpay-Serial": driver.sandbox.pay_keys.public_key_id,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
            "Wechatpay-Signature": rsa_sign(generate_rsa_key(), f"{timestamp}\n{nonce}\n{body.decode()}\n")}


def _genuine(driver, app, resource: dict) -> tuple[bytes, dict]:
    """A notification signed with the sandbox's platform key: what only WeChat Pay can send."""
    body = json.dumps({
        "id": "EV-" + secrets.token_hex(4), "create_time": "2026-11-23T10:00:00+08:00",
        "resource_type": "encrypt-resource", "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
        "resource": {"original_type": "transaction",
                     **aead_encrypt(app.config["WECHATPAY_APIV3_KEY"], json.dumps(resource), "transaction")},
    }, separators=(",", ":"))
    return body.encode(), {"Content-Type": "application/json", **signature_headers(driver.sandbox, body)}


def _resident_with_order(db, pay_wechat, world, api):
    person = pay_wechat.create_user()
    user = WechatUser(mp_openid=person["mp_openid"])
    db.session.add(user)
    db.session.flush()
    db.session.add(HouseholdBinding(wechat_user_id=user.id, household_id=world.household.id, proof="owner_name"))
    db.session.commit()
    me = api(issue_token(user))
    answer = me.post("/api/v1/payments", json={"household_id": world.household.id, "bill_ids": [world.bill.id]})
    assert answer.status_code == 201, answer.text
    return me, answer.json()


def _transaction(app, order, **changes):
    resource = {"appid": app.config["MINIAPP_APPID"], "mchid": app.config["WECHATPAY_MCHID"],
                "out_trade_no": order["out_trade_no"], "transaction_id": "4200000000" + secrets.token_hex(5),
                "trade_type": "JSAPI", "trade_state": "SUCCESS", "success_time": "2026-11-23T10:00:00+08:00",
                "payer": {"openid": "x"}, "amount": {"total": order["amount_fen"], "currency": "CNY"}}
    resource.update(changes)
    return resource


def _bill(db, world):
    db.session.expire_all()
    return db.session.get(Bill, world.bill.id)


def test_forged_and_tampered_notifications_are_refused_and_credit_nothing(app, db, pay_wechat, world, api, live_app):
    _, order = _resident_with_order(db, pay_wechat, world, api)
    body, headers = _genuine(pay_wechat, app, _transaction(app, order))
    url = live_app.url + "/pay/notify"

    forged = requests.post(url, data=body, headers=forged_headers(pay_wechat, body), timeout=10)
    tampered = requests.post(url, data=body.replace(b"TRANSACTION", b"TRANSACTIOM"), headers=headers, timeout=10)
    other_serial = requests.post(url, data=body, headers={**headers, "Wechatpay-Serial": "PUB_KEY_ID_OTHER"}, timeout=10)
    stale = dict(headers, **{"Wechatpay-Timestamp": str(int(time.time()) - 3600)})
    replayed_late = requests.post(url, data=body, headers=stale, timeout=10)
    unsigned = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
    for answer in (forged, tampered, other_serial, replayed_late, unsigned):
        assert answer.status_code == 401 and answer.json() == {"code": "FAIL", "message": "签名验证失败"}
    assert _bill(db, world).status == BillStatus.UNPAID

    assert requests.post(url, data=body, headers=headers, timeout=10).status_code == 204
    assert _bill(db, world).status == BillStatus.PAID


def test_a_signed_notification_with_another_amount_is_refused(app, db, pay_wechat, world, api, live_app):
    _, order = _resident_with_order(db, pay_wechat, world, api)
    body, headers = _genuine(pay_wechat, app, _transaction(app, order, amount={"total": 1, "currency": "CNY"}))
    answer = requests.post(live_app.url + "/pay/notify", data=body, headers=headers, timeout=10)
    assert answer.status_code == 400 and answer.json()["code"] == "FAIL"
    assert _bill(db, world).status == BillStatus.UNPAID
    assert db.session.scalar(select(Payment.state)) == PaymentState.CREATED


def test_a_notification_for_an_unknown_order_is_refused(app, db, pay_wechat, world, api, live_app):
    _, order = _resident_with_order(db, pay_wechat, world, api)
    body, headers = _genuine(pay_wechat, app, _transaction(app, order, out_trade_no="HPUNKNOWN0001"))
    answer = requests.post(live_app.url + "/pay/notify", data=body, headers=headers, timeout=10)
    assert answer.status_code == 404 and answer.json()["code"] == "FAIL"


def test_lost_notification_is_settled_when_the_client_asks(app, db, pay_wechat, world, api):
    me, order = _resident_with_order(db, pay_wechat, world, api)
    pay_wechat.pay(order["out_trade_no"], notify=False)
    assert me.get(f"/api/v1/payments/{order['out_trade_no']}").json()["state"] == "paid"
    assert _bill(db, world).status == BillStatus.PAID
    # ...and the late notification changes nothing.
    assert pay_wechat.notify(order["out_trade_no"])["delivered"] is True
    assert _bill(db, world).paid_fen == world.bill.amount_fen


def test_receipt_page_refuses_a_forged_token(app, db, pay_wechat, world, api):
    me, order = _resident_with_order(db, pay_wechat, world, api)
    assert me.get(f"/api/v1/payments/{order['out_trade_no']}/receipt").status_code == 409  # not paid yet
    pay_wechat.pay(order["out_trade_no"])
    receipt = me.get(f"/api/v1/payments/{order['out_trade_no']}/receipt").json()
    token = receipt["verify_url"].rsplit("/", 1)[1]
    assert api().get(f"/r/{token}").status_code == 200
    assert api().get(f"/r/{token[:-3]}abc").status_code == 404
    from itsdangerous import URLSafeSerializer
    guessed = URLSafeSerializer("not-our-secret", salt="receipt-v1").dumps(order["out_trade_no"])
    assert api().get(f"/r/{guessed}").status_code == 404


def test_stale_orders_are_closed_at_wechat_and_here_and_paid_ones_credited(app, db, pay_wechat, world, api, worker,
                                                                             make_household):
    from app.services.billing import issue_bills
    from jobs.payments import close_stale_payments

    me, order = _resident_with_order(db, pay_wechat, world, api)
    other = make_household(community=world.community, station=world.station)
    issue_bills(world.season, [other])
    db.session.add(HouseholdBinding(wechat_user_id=db.session.scalar(select(WechatUser.id)), household_id=other.id,
                                    proof="owner_name"))
    db.session.commit()
    other_bill = db.session.scalar(select(Bill).where(Bill.household_id == other.id))
    second = me.post("/api/v1/payments", json={"household_id": other.id, "bill_ids": [other_bill.id]}).json()
    pay_wechat.pay(second["out_trade_no"], notify=False)       # paid, but the notification was lost
    later = utcnow() + timedelta(hours=3)
    assert close_stale_payments(now=utcnow()) == 0   # still young: left alone
    assert close_stale_payments(now=later) == 2
    worker()
    db.session.expire_all()
    states = dict(db.session.execute(select(Payment.out_trade_no, Payment.state)).all())
    assert states == {order["out_trade_no"]: "closed", second["out_trade_no"]: "paid"}
    assert pay_wechat.order(order["out_trade_no"])["order"]["trade_state"] == "CLOSED"
    assert close_stale_payments(now=later) == 0


def test_payment_of_another_households_bill_is_refused(app, db, pay_wechat, world, api, make_household):
    from app.services.billing import issue_bills

    me, _ = _resident_with_order(db, pay_wechat, world, api)
    stranger = make_household(community=world.community, station=world.station)
    issue_bills(world.season, [stranger])
    db.session.commit()
    bill = db.session.scalar(select(Bill).where(Bill.household_id == stranger.id))
    assert me.post("/api/v1/payments", json={"household_id": world.household.id,
                                             "bill_ids": [bill.id]}).status_code == 404
    assert me.post("/api/v1/payments", json={"household_id": stranger.id,
                                             "bill_ids": [bill.id]}).status_code == 404
