"""WeChat Pay's keys against our backend, over real HTTP with the strict sandbox (WECHAT.md §8):
our requests name the merchant API certificate serial WeChat Pay registered; notifications
signed with the platform certificate, the WeChat Pay public key, or either while a merchant
switches, are accepted as configured (WECHATPAY_VERIFY_MODE); signature probes get a 4xx."""
from __future__ import annotations

import hashlib
import json
import secrets
import time

import requests
from cryptography.hazmat.primitives import serialization

from app.models import Bill, BillStatus
from tests.mobile_api.payflow import fresh, order, resident, second_bill
from wechat import pay as wechat_pay
from wechat.sandbox import DEFAULTS as SANDBOX_DEFAULTS
from wechat.sandbox.crypto import aead_encrypt, generate_rsa_key, rsa_sign

WRONG_SERIAL = "商户证书序列号有误。请使用签名私钥匹配的证书序列号"


def _paid(db, bill) -> bool:
    return fresh(db, Bill, bill.id).status == BillStatus.PAID


def _accept(app, monkeypatch, mode: str, *, public_key: bool = True):
    """Our side: which of WeChat Pay's keys we accept (a merchant on certificates only has no
    WeChat Pay public key to configure)."""
    monkeypatch.setitem(app.config, "WECHATPAY_VERIFY_MODE", mode)
    if not public_key:
        monkeypatch.setitem(app.config, "WECHATPAY_PUBLIC_KEY_PATH", "/nonexistent/pub_key.pem")


def _sandbox_orders(pay_wechat) -> list:
    return requests.get(f"{pay_wechat.base}/pay/orders", timeout=10).json()


def test_requests_name_the_merchant_certificate_serial_wechat_pay_registered(app, db, pay_wechat, world, api,
                                                                             merchant_key_path, monkeypatch):
    me, _, _ = resident(db, pay_wechat, api, world.household)
    development_serial = app.config["WECHATPAY_CERT_SERIAL_NO"]
    # A serial WeChat Pay does not have for us — e.g. a hash of the merchant key, what was sent
    # when none was configured — is its 401 SIGN_ERROR: no order, the payer is asked to retry.
    with open(merchant_key_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    monkeypatch.setitem(app.config, "WECHATPAY_CERT_SERIAL_NO", hashlib.sha1(der).hexdigest().upper())
    assert order(me, world.household, world.bill).status_code == 503
    assert _sandbox_orders(pay_wechat) == []
    try:
        wechat_pay.query_order("HPNOSUCHORDER01")
        raise AssertionError("WeChat Pay accepted a request naming another certificate serial")
    except wechat_pay.PayRejected as exc:
        assert (exc.status, exc.code, exc.message) == (401, "SIGN_ERROR", WRONG_SERIAL)
    # None at all: nothing is sent (no guessing).
    monkeypatch.setitem(app.config, "WECHATPAY_CERT_SERIAL_NO", None)
    try:
        wechat_pay.query_order("HPNOSUCHORDER01")
        raise AssertionError("a request went out without the merchant certificate serial")
    except wechat_pay.PayUnavailable as exc:
        assert "WECHATPAY_CERT_SERIAL_NO" in str(exc)

    # The development serial: the one the sandbox registered for the development key.
    monkeypatch.setitem(app.config, "WECHATPAY_CERT_SERIAL_NO", development_serial)
    assert development_serial == SANDBOX_DEFAULTS["merchant_cert_serial"] == pay_wechat.sandbox.pay_keys.merchant_cert_serial
    assert order(me, world.household, world.bill).status_code == 201


def test_a_merchant_that_never_switched_to_the_public_key_is_paid(app, db, pay_wechat, world, api, monkeypatch):
    pay_wechat.faults(pay_sign_mode="platform_cert")
    _accept(app, monkeypatch, "platform_cert", public_key=False)
    me, _, _ = resident(db, pay_wechat, api, world.household)
    created = order(me, world.household, world.bill)      # answers signed with the certificate
    assert created.status_code == 201, created.text
    sent = pay_wechat.pay(created.json()["out_trade_no"])["notification"]
    keys = requests.get(f"{pay_wechat.base}/pay/public-key", timeout=10).json()
    assert sent["serial"] == keys["platform_cert_serial"] and not sent["serial"].startswith("PUB_KEY_ID_")
    assert sent["delivered"], sent
    assert _paid(db, world.bill)


def test_while_switching_notifications_signed_either_way_are_accepted(app, db, pay_wechat, world, api,
                                                                      make_season, monkeypatch):
    pay_wechat.faults(pay_sign_mode="both")
    _accept(app, monkeypatch, "both")
    older = second_bill(db, make_season, world)
    me, _, _ = resident(db, pay_wechat, api, world.household)
    first = order(me, world.household, world.bill).json()
    second = order(me, world.household, fresh(db, Bill, older.id)).json()
    by_cert = pay_wechat.pay(first["out_trade_no"])["notification"]
    by_key = pay_wechat.pay(second["out_trade_no"])["notification"]
    keys = requests.get(f"{pay_wechat.base}/pay/public-key", timeout=10).json()
    assert (by_cert["serial"], by_key["serial"]) == (keys["platform_cert_serial"], keys["public_key_id"])
    assert by_cert["delivered"] and by_key["delivered"], (by_cert, by_key)
    assert _paid(db, world.bill) and _paid(db, older)


def test_only_the_configured_kind_of_signature_is_accepted(app, db, pay_wechat, world, api, monkeypatch):
    me, _, _ = resident(db, pay_wechat, api, world.household)
    paying = order(me, world.household, world.bill).json()["out_trade_no"]
    # We know only the public key; WeChat Pay signs with a certificate: refused (and retried later).
    pay_wechat.faults(pay_sign_mode="platform_cert")
    sent = pay_wechat.pay(paying)["notification"]
    assert (sent["status"], sent["delivered"]) == (401, False)
    assert not _paid(db, world.bill)
    # Certificates only, while WeChat Pay signs with the public key: refused as well.
    _accept(app, monkeypatch, "platform_cert", public_key=False)
    pay_wechat.faults(pay_sign_mode="public_key")
    assert pay_wechat.notify(paying)["status"] == 401
    assert not _paid(db, world.bill)
    # The merchant switches: both are accepted, and the same notification credits once.
    _accept(app, monkeypatch, "both")
    monkeypatch.setitem(app.config, "WECHATPAY_PUBLIC_KEY_PATH", pay_wechat.sandbox.config["pay_public_key_path"])
    assert pay_wechat.notify(paying)["delivered"]
    assert _paid(db, world.bill)


def test_wechat_pays_signature_probes_are_refused_with_4xx(app, db, pay_wechat, world, api, monkeypatch):
    me, _, _ = resident(db, pay_wechat, api, world.household)
    paying = order(me, world.household, world.bill).json()["out_trade_no"]
    pay_wechat.pay(paying, notify=False)
    for mode in ("public_key", "platform_cert"):
        pay_wechat.faults(pay_sign_mode=mode)
        _accept(app, monkeypatch, "both")
        probe = requests.post(f"{pay_wechat.base}/pay/{paying}/probe", timeout=30).json()
        assert probe["refused"] and probe["status"] == 401, probe
        assert json.loads(probe["answer"]) == {"code": "FAIL", "message": "签名验证失败"}
        assert not _paid(db, world.bill)
    assert pay_wechat.notify(paying)["delivered"]
    assert _paid(db, world.bill)


def test_a_forged_certificate_serial_does_not_send_us_to_wechat_pay_each_time(app, db, pay_wechat, world, api,
                                                                             live_app, monkeypatch):
    """Each unknown serial could be a new certificate — or a forger's: WeChat Pay's list is
    asked for again at most once a minute, whatever the number of forged requests."""
    _accept(app, monkeypatch, "both")
    me, _, _ = resident(db, pay_wechat, api, world.household)
    paying = order(me, world.household, world.bill).json()
    # Every certificate download from now on would be refused: count how many are tried.
    pay_wechat.faults(pay_error="SYSTEM_ERROR", times=20, api="v3/certificates")
    resource = {"appid": app.config["MINIAPP_APPID"], "mchid": app.config["WECHATPAY_MCHID"],
                "out_trade_no": paying["out_trade_no"], "transaction_id": "4200000000" + secrets.token_hex(5),
                "trade_type": "JSAPI", "trade_state": "SUCCESS", "success_time": "2026-11-23T10:00:00+08:00",
                "payer": {"openid": "x"}, "amount": {"total": paying["amount_fen"], "currency": "CNY"}}
    body = json.dumps({"id": "EV-1", "event_type": "TRANSACTION.SUCCESS", "resource_type": "encrypt-resource",
                       "resource": {"original_type": "transaction", **aead_encrypt(
                           app.config["WECHATPAY_APIV3_KEY"], json.dumps(resource), "transaction")}})
    forger = generate_rsa_key()
    answers = []
    for _ in range(5):
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
        answers.append(requests.post(live_app.url + "/pay/notify", data=body.encode(), timeout=10, headers={
            "Content-Type": "application/json", "Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": nonce,
            "Wechatpay-Serial": secrets.token_hex(20).upper(), "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
            "Wechatpay-Signature": rsa_sign(forger, f"{timestamp}\n{nonce}\n{body}\n")}).status_code)
    # The first finds no certificate list (WeChat Pay busy: 500, try again later); the rest
    # are refused without asking.
    assert answers[0] == 500 and answers[1:] == [401] * 4
    remaining = [f["remaining"] for f in pay_wechat.faults()["injected"] if f["kind"] == "pay_error"]
    assert remaining == [19]
    assert not _paid(db, world.bill)
