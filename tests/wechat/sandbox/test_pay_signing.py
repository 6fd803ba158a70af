"""WeChat Pay's keys as a merchant meets them (WECHAT.md §8): the merchant certificate serial in
every request, the platform certificate and the WeChat Pay public key (either, or both while
switching), GET /v3/certificates, signature probes, appids bound to the merchant — through the
real wechatpayv3 client and plain HTTP."""
from __future__ import annotations

import hashlib
import json

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import load_pem_x509_certificate
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3.utils import aes_decrypt, build_authorization, load_private_key, rsa_verify

from tests.wechat.sandbox.conftest import (APIV3_KEY, MCHID, MERCHANT_SERIAL, MP_APPID, OA_APPID, _fresh,
                                           _start)

PROBE_PREFIX = "WECHATPAY/SIGNTEST/"


def _signed_get(sb, path: str, serial: str = MERCHANT_SERIAL, wechatpay_serial: str | None = None):
    """A GET signed with the merchant key, as any WeChat Pay client sends it."""
    authorization = build_authorization(path, "GET", MCHID, serial, load_private_key(sb.merchant_key_pem))
    headers = {"Authorization": authorization, "Accept": "application/json"}
    if wechatpay_serial:
        headers["Wechatpay-Serial"] = wechatpay_serial
    return requests.get(sb.base + path, headers=headers, timeout=10)


def _verifies(response, public_key) -> bool:
    h = response.headers
    return rsa_verify(h["Wechatpay-Timestamp"], h["Wechatpay-Nonce"], response.text, h["Wechatpay-Signature"],
                      public_key)


def _keys(sb) -> dict:
    keys = sb.get("/pay/public-key").json()
    keys["public_key"] = serialization.load_pem_public_key(keys["public_key_pem"].encode())
    keys["certificate"] = load_pem_x509_certificate(keys["platform_cert_pem"].encode())
    return keys


def _order(sb, wxpay, out_trade_no="BILL20261202001", total=100):
    user = sb.create_user()
    code, text = wxpay.pay(description="2026-2027采暖费", out_trade_no=out_trade_no, amount={"total": total},
                           payer={"openid": user["mp_openid"]})
    assert code == 200, text
    return user


def test_a_request_naming_another_certificate_serial_is_401_sign_error(sandbox, wxpay):
    # What the backend used to send when no serial was configured: a hash of the public key.
    key = load_private_key(sandbox.merchant_key_pem)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    for serial in (hashlib.sha1(der).hexdigest().upper(), "5157F09EFDC096DE15EBE81A47057A7232F1B8E2"):
        wxpay._core._cert_serial_no = serial
        code, text = wxpay.query(out_trade_no="BILL20261202001")
        assert code == 401
        assert json.loads(text) == {"code": "SIGN_ERROR", "message": "商户证书序列号有误。请使用签名私钥匹配的证书序列号"}
    wxpay._core._cert_serial_no = MERCHANT_SERIAL.lower()     # the registered one (hex, any case)
    assert wxpay.query(out_trade_no="BILL20261202001")[0] == 404


def test_platform_certificates_are_listed_encrypted_with_the_apiv3_key(sandbox):
    keys = _keys(sandbox)
    answer = _signed_get(sandbox, "/v3/certificates")
    assert answer.status_code == 200
    [entry] = answer.json()["data"]
    encrypted = entry["encrypt_certificate"]
    assert (encrypted["algorithm"], encrypted["associated_data"], len(encrypted["nonce"])) == (
        "AEAD_AES_256_GCM", "certificate", 12)
    pem = aes_decrypt(encrypted["nonce"], encrypted["ciphertext"], encrypted["associated_data"], APIV3_KEY)
    certificate = load_pem_x509_certificate(pem.encode())
    assert entry["serial_no"] == format(certificate.serial_number, "X") == keys["platform_cert_serial"]
    assert len(entry["serial_no"]) == 40
    assert entry["effective_time"].endswith("+08:00") and entry["expire_time"].endswith("+08:00")
    assert certificate.not_valid_after_utc.year - certificate.not_valid_before_utc.year == 5
    # The answer is signed with that certificate (the merchant checks the download with it),
    # a key pair other than the WeChat Pay public key's.
    assert answer.headers["Wechatpay-Serial"] == entry["serial_no"]
    assert _verifies(answer, certificate.public_key()) and not _verifies(answer, keys["public_key"])
    # Without the merchant's signature there is nothing.
    assert _signed_get(sandbox, "/v3/certificates", serial="00").status_code == 401


def test_a_merchant_that_never_switched_gets_certificate_signed_answers_and_notifications(
        sandbox, backend, tmp_path):
    sandbox.faults(pay_sign_mode="platform_cert")
    keys = _keys(sandbox)
    # wechatpayv3 in certificate mode, its cert_dir seeded (WECHAT.md §8: no call at start-up).
    (tmp_path / f"{keys['platform_cert_serial']}.pem").write_text(keys["platform_cert_pem"])
    pay = WeChatPay(wechatpay_type=WeChatPayType.MINIPROG, mchid=MCHID, private_key=sandbox.merchant_key_pem,
                    cert_serial_no=MERCHANT_SERIAL, appid=MP_APPID, apiv3_key=APIV3_KEY,
                    notify_url=backend.url + "/pay/notify", cert_dir=str(tmp_path))
    pay._core._gate_way = sandbox.base
    _order(sandbox, pay)          # the answer is verified with the certificate
    # Asking for the public key changes nothing: the merchant never switched.
    answer = _signed_get(sandbox, "/v3/pay/transactions/out-trade-no/BILL20261202001?mchid=" + MCHID,
                         wechatpay_serial=keys["public_key_id"])
    assert answer.headers["Wechatpay-Serial"] == keys["platform_cert_serial"]
    assert _verifies(answer, keys["certificate"].public_key())

    sent = sandbox.post("/pay/BILL20261202001/pay").json()["notification"]
    assert sent["serial"] == keys["platform_cert_serial"]
    got = backend.wait_for(lambda r: r.path == "/pay/notify")
    assert got.headers["Wechatpay-Serial"] == keys["platform_cert_serial"]
    assert pay.callback(got.headers, got.body)["resource"]["trade_state"] == "SUCCESS"


def test_while_switching_answers_follow_the_request_and_notifications_take_turns(sandbox, backend, wxpay):
    sandbox.faults(pay_sign_mode="both")
    keys = _keys(sandbox)
    _order(sandbox, wxpay)       # wechatpayv3 in public-key mode sends Wechatpay-Serial: PUB_KEY_ID_…
    path = "/v3/pay/transactions/out-trade-no/BILL20261202001?mchid=" + MCHID
    by_key = _signed_get(sandbox, path, wechatpay_serial=keys["public_key_id"])
    by_cert = _signed_get(sandbox, path)
    assert by_key.headers["Wechatpay-Serial"] == keys["public_key_id"] and _verifies(by_key, keys["public_key"])
    assert by_cert.headers["Wechatpay-Serial"] == keys["platform_cert_serial"]
    assert _verifies(by_cert, keys["certificate"].public_key())

    serials = [sandbox.post("/pay/BILL20261202001/pay").json()["notification"]["serial"]]
    serials += [sandbox.post("/pay/BILL20261202001/notify").json()["serial"] for _ in range(3)]
    assert serials == [keys["platform_cert_serial"], keys["public_key_id"]] * 2
    received = [r for r in backend.received if r.path == "/pay/notify"]
    assert [r.headers["Wechatpay-Serial"] for r in received] == serials
    # wechatpayv3 (public key configured) verifies both kinds: unknown serials send it to /v3/certificates.
    assert all(wxpay.callback(r.headers, r.body) is not None for r in received)


def test_a_signature_probe_carries_a_wrong_signature_and_expects_4xx(sandbox, backend, wxpay):
    _order(sandbox, wxpay)
    sandbox.post("/pay/BILL20261202001/pay")
    backend.received.clear()
    accepted = sandbox.post("/pay/BILL20261202001/probe").json()     # the fake backend answers 204 to anything
    assert (accepted["status"], accepted["refused"]) == (204, False)
    got = backend.received[-1]
    assert got.headers["Wechatpay-Signature"].startswith(PROBE_PREFIX)
    assert wxpay.callback(got.headers, got.body) is None             # a verifying merchant refuses it
    backend.answer = lambda received: (401, b'{"code":"FAIL","message":"bad signature"}')
    assert sandbox.post("/pay/BILL20261202001/probe").json()["refused"] is True


@pytest.fixture(scope="module")
def _mini_program_only(tmp_path_factory, backend, merchant_key):
    server, handle = _start(tmp_path_factory, backend, merchant_key, pay_bound_appids=[MP_APPID])
    yield handle
    server.stop()


def test_orders_for_an_appid_not_bound_to_the_merchant_are_refused(sandbox, backend, wxpay, _mini_program_only):
    user = sandbox.create_user()

    def order(sb, appid, openid, out_trade_no):
        keys = sb.get("/pay/public-key").json()
        pay = WeChatPay(wechatpay_type=WeChatPayType.JSAPI, mchid=MCHID, private_key=sb.merchant_key_pem,
                        cert_serial_no=MERCHANT_SERIAL, appid=appid, apiv3_key=APIV3_KEY,
                        notify_url=backend.url + "/pay/notify", public_key=keys["public_key_pem"],
                        public_key_id=keys["public_key_id"])
        pay._core._gate_way = sb.base
        code, text = pay.pay(description="采暖费", out_trade_no=out_trade_no, amount={"total": 1},
                             payer={"openid": openid})
        return code, json.loads(text)

    # Bound by default: the official account (H5 JSAPI) and the mini-program.
    assert order(sandbox, OA_APPID, user["oa_openid"], "BILL20261202010")[0] == 200
    assert order(sandbox, MP_APPID, user["mp_openid"], "BILL20261202011")[0] == 200
    refused = {"code": "APPID_MCHID_NOT_MATCH", "message": "appid和mch_id不匹配,请检查后再试"}
    assert order(sandbox, "wx0123456789abcdef", user["mp_openid"], "BILL20261202012") == (400, refused)
    # A merchant that bound only the mini-program refuses the official account's orders.
    mp_only = _fresh(_mini_program_only, backend)
    other = mp_only.create_user()
    assert order(mp_only, OA_APPID, other["oa_openid"], "BILL20261202013") == (400, refused)
    assert order(mp_only, MP_APPID, other["mp_openid"], "BILL20261202014")[0] == 200


REFUND_FIELDS = {"mchid", "out_trade_no", "transaction_id", "out_refund_no", "refund_id", "refund_status",
                 "success_time", "user_received_account", "amount"}


@pytest.mark.parametrize("status", ["SUCCESS", "ABNORMAL", "CLOSED"])
def test_refund_notifications_carry_exactly_the_documented_resource(status, tmp_path_factory, backend,
                                                                   merchant_key, _manual_refunds):
    sb = _fresh(_manual_refunds, backend)
    keys = sb.get("/pay/public-key").json()
    pay = WeChatPay(wechatpay_type=WeChatPayType.MINIPROG, mchid=MCHID, private_key=sb.merchant_key_pem,
                    cert_serial_no=MERCHANT_SERIAL, appid=MP_APPID, apiv3_key=APIV3_KEY,
                    notify_url=backend.url + "/pay/notify", public_key=keys["public_key_pem"],
                    public_key_id=keys["public_key_id"])
    pay._core._gate_way = sb.base
    _order(sb, pay, total=300)
    sb.post("/pay/BILL20261202001/pay", json={"notify": False})
    pay.refund(out_refund_no="RFBILL20261202001", amount={"refund": 300, "total": 300, "currency": "CNY"},
               out_trade_no="BILL20261202001", notify_url=backend.url + "/pay/refund-notify")
    sb.post("/pay/refunds/RFBILL20261202001/settle", json={"status": status})
    got = backend.wait_for(lambda r: r.path == "/pay/refund-notify")
    notification = pay.callback(got.headers, got.body)
    assert notification["event_type"] == f"REFUND.{status}"
    resource = notification["resource"]
    expected = REFUND_FIELDS if status == "SUCCESS" else REFUND_FIELDS - {"success_time"}
    assert set(resource) == expected                      # no appid: refunds do not name one
    assert set(resource["amount"]) == {"total", "refund", "payer_total", "payer_refund"}
    assert resource["refund_status"] == status


@pytest.fixture(scope="module")
def _manual_refunds(tmp_path_factory, backend, merchant_key):
    server, handle = _start(tmp_path_factory, backend, merchant_key, refund_auto_settle=None)
    yield handle
    server.stop()


def test_the_payers_side_moves_an_unpaid_order(sandbox, wxpay):
    _order(sandbox, wxpay)
    moved = sandbox.post("/pay/BILL20261202001/state", json={"trade_state": "USERPAYING"}).json()["order"]
    assert (moved["trade_state"], moved["trade_state_desc"]) == ("USERPAYING", "用户支付中（付款码支付）")
    assert json.loads(wxpay.query(out_trade_no="BILL20261202001")[1])["trade_state"] == "USERPAYING"
    assert sandbox.post("/pay/BILL20261202001/pay", json={"notify": False}).json()["order"]["trade_state"] == "SUCCESS"
    assert sandbox.post("/pay/BILL20261202001/state", json={"trade_state": "PAYERROR"}).status_code == 409

    _order(sandbox, wxpay, out_trade_no="BILL20261202002")
    sandbox.post("/pay/BILL20261202002/state", json={"trade_state": "PAYERROR"})
    assert wxpay.close(out_trade_no="BILL20261202002") == (204, b"")
    assert json.loads(wxpay.query(out_trade_no="BILL20261202002")[1])["trade_state"] == "CLOSED"
    assert sandbox.post("/pay/BILL20261202002/state", json={"trade_state": "SUCCESS"}).status_code == 400
