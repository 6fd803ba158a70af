"""WeChat Pay refunds and the trade bill, through the real wechatpayv3 client (public-key mode)."""
from __future__ import annotations

import gzip
import hashlib
import json
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from wechatpayv3 import WeChatPay, WeChatPayType

from tests.wechat.sandbox.conftest import APIV3_KEY, MCHID, MERCHANT_SERIAL, MP_APPID, _fresh, _start
from wechat.pay import parse_trade_bill

BEIJING = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def _manual_server(tmp_path_factory, backend, merchant_key):
    server, handle = _start(tmp_path_factory, backend, merchant_key, refund_auto_settle=None)
    yield handle
    server.stop()


@pytest.fixture()
def sb(_manual_server, backend):
    """The sandbox, with refunds settling only when a test says so."""
    yield _fresh(_manual_server, backend)
    backend.answer = None


@pytest.fixture()
def pay(sb, backend):
    keys = sb.get("/pay/public-key").json()
    client = WeChatPay(wechatpay_type=WeChatPayType.MINIPROG, mchid=MCHID, private_key=sb.merchant_key_pem,
                       cert_serial_no=MERCHANT_SERIAL, appid=MP_APPID, apiv3_key=APIV3_KEY,
                       notify_url=backend.url + "/pay/notify", public_key=keys["public_key_pem"],
                       public_key_id=keys["public_key_id"])
    client._core._gate_way = sb.base
    return client


def _paid_order(sb, pay, out_trade_no="BILL20261201001", total=215874):
    user = sb.create_user()
    code, _ = pay.pay(description="供热费 户号10100023 2026-2027", out_trade_no=out_trade_no,
                      amount={"total": total}, payer={"openid": user["mp_openid"]})
    assert code == 200
    assert sb.post(f"/pay/{out_trade_no}/pay", json={"notify": False}).status_code == 200
    return json.loads(pay.query(out_trade_no=out_trade_no)[1])


def _refund(pay, backend, out_refund_no="RFBILL20261201001", refund=215874, total=215874, **kw):
    return pay.refund(out_refund_no=out_refund_no, amount={"refund": refund, "total": total, "currency": "CNY"},
                      out_trade_no=kw.pop("out_trade_no", "BILL20261201001"), reason="供热费重复缴纳，多收款项原路退回",
                      notify_url=backend.url + "/pay/refund-notify", **kw)


def test_a_refund_is_accepted_once_per_out_refund_no(sb, pay, backend):
    _paid_order(sb, pay)
    code, text = _refund(pay, backend)
    first = json.loads(text)
    assert code == 200 and first["status"] == "PROCESSING" and first["refund_id"].startswith("50")
    assert (first["amount"]["refund"], first["amount"]["total"], first["out_refund_no"]) == (
        215874, 215874, "RFBILL20261201001")
    # The same request again (a retry): the same refund, nothing more refunded.
    again = json.loads(_refund(pay, backend)[1])
    assert again["refund_id"] == first["refund_id"]
    # The same number with other parameters, or more than the order had: refused.
    code, text = _refund(pay, backend, refund=100)
    assert code == 400 and json.loads(text)["code"] == "INVALID_REQUEST"
    code, text = _refund(pay, backend, out_refund_no="RFANOTHER0001", refund=1)
    assert code == 400 and json.loads(text)["message"] == "申请退款金额超过订单可退金额"
    # The order now says a refund was applied for.
    assert json.loads(pay.query(out_trade_no="BILL20261201001")[1])["trade_state"] == "REFUND"


def test_refund_errors_are_wechat_pays(sb, pay, backend):
    code, text = _refund(pay, backend, out_trade_no="NOSUCHORDER01")
    assert code == 404 and json.loads(text) == {"code": "RESOURCE_NOT_EXISTS", "message": "订单不存在"}
    user = sb.create_user()
    pay.pay(description="x", out_trade_no="UNPAID000001", amount={"total": 100}, payer={"openid": user["mp_openid"]})
    code, text = _refund(pay, backend, out_trade_no="UNPAID000001", refund=100, total=100)
    assert code == 400 and json.loads(text)["code"] == "INVALID_REQUEST"
    _paid_order(sb, pay)
    code, text = _refund(pay, backend, total=1)
    assert code == 400 and json.loads(text)["code"] == "INVALID_REQUEST"
    code, text = pay.query_refund(out_refund_no="RFNOSUCH0001")
    assert code == 404 and json.loads(text)["code"] == "RESOURCE_NOT_EXISTS"
    sb.faults(pay_error="NOT_ENOUGH", times=1, api="refund/domestic/refunds")
    code, text = _refund(pay, backend)
    assert code == 403 and json.loads(text)["code"] == "NOT_ENOUGH"
    assert _refund(pay, backend)[0] == 200     # counted down: the next one goes through


def test_a_settled_refund_is_notified_signed_and_encrypted_like_wechat_pay(sb, pay, backend):
    _paid_order(sb, pay)
    _refund(pay, backend)
    answer = sb.post("/pay/refunds/RFBILL20261201001/settle", json={"status": "SUCCESS"}).json()
    assert answer["notification"]["delivered"] is True
    got = backend.wait_for(lambda r: r.path == "/pay/refund-notify")
    body = json.loads(got.body)
    assert (body["event_type"], body["resource"]["original_type"], body["resource"]["associated_data"]) == (
        "REFUND.SUCCESS", "refund", "")
    # wechatpayv3 verifies the signature (public key) and decrypts the resource.
    verified = pay.callback(got.headers, got.body)
    resource = verified["resource"]
    assert (resource["out_refund_no"], resource["refund_status"], resource["amount"]["refund"]) == (
        "RFBILL20261201001", "SUCCESS", 215874)
    assert "appid" not in resource and resource["mchid"] == MCHID and resource["success_time"]
    queried = json.loads(pay.query_refund(out_refund_no="RFBILL20261201001")[1])
    assert queried["status"] == "SUCCESS" and queried["user_received_account"] == "支付用户零钱"
    # WeChat Pay's retry posts the same notification again.
    assert sb.post("/pay/refunds/RFBILL20261201001/notify").json()["delivered"] is True
    assert sum(1 for r in backend.received if r.path == "/pay/refund-notify") == 2
    # An abnormal or closed end is notified the same way.
    _paid_order(sb, pay, out_trade_no="BILL20261201002", total=500)
    _refund(pay, backend, out_refund_no="RFBILL20261201002", refund=500, total=500, out_trade_no="BILL20261201002")
    sb.post("/pay/refunds/RFBILL20261201002/settle", json={"status": "ABNORMAL"})
    abnormal = backend.wait_for(lambda r: r.path == "/pay/refund-notify" and b"REFUND.ABNORMAL" in r.body)
    assert pay.callback(abnormal.headers, abnormal.body)["resource"]["refund_status"] == "ABNORMAL"


def test_refunds_settle_by_themselves_after_the_configured_delay(tmp_path_factory, backend, merchant_key):
    server, handle = _start(tmp_path_factory, backend, merchant_key, refund_auto_settle=0.1)
    try:
        sb = _fresh(handle, backend)
        keys = sb.get("/pay/public-key").json()
        client = WeChatPay(wechatpay_type=WeChatPayType.MINIPROG, mchid=MCHID, private_key=sb.merchant_key_pem,
                           cert_serial_no=MERCHANT_SERIAL, appid=MP_APPID, apiv3_key=APIV3_KEY,
                           notify_url=backend.url + "/pay/notify", public_key=keys["public_key_pem"],
                           public_key_id=keys["public_key_id"])
        client._core._gate_way = sb.base
        _paid_order(sb, client)
        _refund(client, backend)
        got = backend.wait_for(lambda r: r.path == "/pay/refund-notify", timeout=10)
        assert b"REFUND.SUCCESS" in got.body
    finally:
        server.stop()


def _advance_to(sb, moment: datetime) -> None:
    now = sb.post("/clock", json={"advance": 0}).json()["now"]
    assert sb.post("/clock", json={"advance": moment.timestamp() - now}).status_code == 200


def _noon_tomorrow() -> datetime:
    local = datetime.fromtimestamp(time.time(), BEIJING)
    return (local + timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)


def test_the_trade_bill_is_wechat_pays_csv_of_the_days_payments_and_refunds(sb, pay, backend):
    noon = _noon_tomorrow()
    _advance_to(sb, noon)
    day = noon.date().isoformat()
    _paid_order(sb, pay)
    _paid_order(sb, pay, out_trade_no="BILL20261201002", total=12345)
    _refund(pay, backend)
    # Not before 10:00 the next day (and never today).
    code, text = pay.trade_bill(bill_date=day)
    assert code == 400 and json.loads(text) == {"code": "STATEMENT_CREATING", "message": "账单生成中"}
    _advance_to(sb, noon.replace(hour=10, minute=1) + timedelta(days=1))
    code, text = pay.trade_bill(bill_date=day)   # wechatpayv3 asks for ALL, GZIP
    assert code == 200
    answer = json.loads(text)
    assert answer["hash_type"] == "SHA1" and "/v3/billdownload/file?token=" in answer["download_url"]
    status, data = pay.download_bill(answer["download_url"])   # signed request; the answer is not signed
    assert status == 200 and isinstance(data, bytes)
    raw = gzip.decompress(data)
    assert hashlib.sha1(raw).hexdigest() == answer["hash_value"]
    text = raw.decode("utf-8")
    lines = text.lstrip("\ufeff").split("\r\n")
    assert lines[0].startswith("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态")
    assert lines[0].endswith("订单金额,申请退款金额,费率备注")
    details = lines[1:4]
    assert all(field.startswith("`") for row in details for field in row.split(","))
    assert lines[4] == "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
    # 2158.74 + 123.45 paid, 2158.74 refunded; fee 0.6 %: 12.95 + 0.74 − 12.95 (returned with the refund)
    assert lines[5] == "`3,`2282.19,`2158.74,`0.00,`0.74000,`2282.19,`2158.74"
    bill = parse_trade_bill(text, noon.date())
    assert sorted((r.kind, r.out_trade_no, r.amount_fen, r.state) for r in bill.records) == [
        ("payment", "BILL20261201001", 215874, "SUCCESS"), ("payment", "BILL20261201002", 12345, "SUCCESS"),
        ("refund", "BILL20261201001", 215874, "PROCESSING")]
    # The same day asked again: the same file (a bill is a snapshot).
    assert json.loads(pay.trade_bill(bill_date=day)[1])["hash_value"] == answer["hash_value"]


def test_trade_bill_refusals(sb, pay):
    noon = _noon_tomorrow()
    _advance_to(sb, noon + timedelta(days=1))
    code, text = pay.trade_bill(bill_date=noon.date().isoformat())
    assert code == 400 and json.loads(text) == {"code": "NO_STATEMENT_EXIST", "message": "请求的账单文件不存在"}
    code, text = pay.trade_bill(bill_date=noon.date().isoformat(), tar_type=None)   # wechatpayv3 sends "None"
    assert code == 400 and json.loads(text)["code"] == "PARAM_ERROR"
    code, text = pay.trade_bill(bill_date="2026/12/01")
    assert code == 400 and json.loads(text)["code"] == "PARAM_ERROR"
    code, text = pay.trade_bill(bill_date=(noon - timedelta(days=120)).date().isoformat())
    assert code == 400 and json.loads(text)["message"] == "仅支持三个月内的账单下载申请"
    status, text = pay.download_bill(sb.base + "/v3/billdownload/file?token=forged")
    assert status == 400 and json.loads(text)["code"] == "INVALID_REQUEST"


def test_a_closed_order_cannot_be_paid(sb, pay):
    user = sb.create_user()
    pay.pay(description="x", out_trade_no="CLOSEME00001", amount={"total": 100}, payer={"openid": user["mp_openid"]})
    assert pay.close(out_trade_no="CLOSEME00001") == (204, b"")
    refused = sb.post("/pay/CLOSEME00001/pay")
    assert refused.status_code == 409 and "ORDER_CLOSED" in refused.json()["error"]["message"]
    code, text = pay.pay(description="x", out_trade_no="CLOSEME00001", amount={"total": 100},
                         payer={"openid": user["mp_openid"]})
    assert code == 400 and json.loads(text)["code"] == "ORDER_CLOSED"
