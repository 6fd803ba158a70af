"""WeChat Pay v3 through the real wechatpayv3 client in public-key mode."""
import json

import pytest


def _prepay(wxpay, user, out_trade_no="BILL20261123001", total=123456):
    return wxpay.pay(description="2026-2027采暖费", out_trade_no=out_trade_no, amount={"total": total},
                     payer={"openid": user["mp_openid"]}, attach="bill:42")


def test_jsapi_prepay_returns_prepay_id(sandbox, wxpay):
    user = sandbox.create_user()
    code, text = _prepay(wxpay, user)
    assert code == 200
    assert json.loads(text)["prepay_id"].startswith("wx")


def test_query_unpaid_order_is_notpay(sandbox, wxpay):
    user = sandbox.create_user()
    _prepay(wxpay, user)
    code, text = wxpay.query(out_trade_no="BILL20261123001")
    order = json.loads(text)
    assert code == 200
    assert (order["trade_state"], order["amount"]["total"], order["payer"]["openid"]) == ("NOTPAY", 123456, user["mp_openid"])


def test_query_unknown_order_is_404_order_not_exist(sandbox, wxpay):
    code, text = wxpay.query(out_trade_no="NOPE000001")
    assert code == 404 and json.loads(text)["code"] == "ORDER_NOT_EXIST"


def test_close_answers_signed_204_and_closes(sandbox, wxpay):
    user = sandbox.create_user()
    _prepay(wxpay, user)
    assert wxpay.close(out_trade_no="BILL20261123001") == (204, b"")  # verified by wechatpayv3
    assert json.loads(wxpay.query(out_trade_no="BILL20261123001")[1])["trade_state"] == "CLOSED"


def test_same_out_trade_no_same_params_gives_new_prepay_id_different_params_rejected(sandbox, wxpay):
    user = sandbox.create_user()
    first = json.loads(_prepay(wxpay, user)[1])["prepay_id"]
    second = json.loads(_prepay(wxpay, user)[1])["prepay_id"]
    assert first != second
    code, text = _prepay(wxpay, user, total=1)
    assert code == 400 and json.loads(text)["code"] == "INVALID_REQUEST"


def test_openid_of_another_appid_is_rejected(sandbox, wxpay):
    user = sandbox.create_user()
    code, text = wxpay.pay(description="x", out_trade_no="BILL000001", amount={"total": 1},
                           payer={"openid": user["oa_openid"]})
    assert code == 400 and json.loads(text)["code"] == "PARAM_ERROR"


def test_pay_posts_notification_that_wechatpayv3_verifies_and_decrypts(sandbox, backend, wxpay):
    user = sandbox.create_user()
    _prepay(wxpay, user)
    answer = sandbox.post("/pay/BILL20261123001/pay").json()
    assert answer["notification"]["delivered"] is True

    received = backend.wait_for(lambda r: r.path == "/pay/notify")
    notification = wxpay.callback(received.headers, received.body)
    assert notification is not None, "signature or decryption failed"
    assert notification["event_type"] == "TRANSACTION.SUCCESS"
    resource = notification["resource"]
    assert resource["out_trade_no"] == "BILL20261123001"
    assert resource["amount"]["total"] == resource["amount"]["payer_total"] == 123456
    assert resource["trade_state"] == "SUCCESS" and resource["attach"] == "bill:42"
    assert resource["transaction_id"] == answer["order"]["transaction_id"]


def test_tampered_notification_fails_verification(sandbox, backend, wxpay):
    user = sandbox.create_user()
    _prepay(wxpay, user)
    sandbox.post("/pay/BILL20261123001/pay")
    received = backend.wait_for(lambda r: r.path == "/pay/notify")
    assert wxpay.callback(received.headers, received.body.replace(b"TRANSACTION", b"TRANSACTIOM")) is None


def test_paid_order_cannot_be_closed_or_prepaid_again(sandbox, wxpay):
    user = sandbox.create_user()
    _prepay(wxpay, user)
    sandbox.post("/pay/BILL20261123001/pay")
    code, text = wxpay.close(out_trade_no="BILL20261123001")
    assert code == 400 and json.loads(text)["code"] == "ORDERPAID"
    code, text = _prepay(wxpay, user)
    assert code == 400 and json.loads(text)["code"] == "ORDERPAID"


def test_refused_notification_is_recorded_and_can_be_resent(sandbox, backend, wxpay):
    user = sandbox.create_user()
    _prepay(wxpay, user)
    backend.answer = lambda received: (500, b'{"code":"FAIL","message":"busy"}')
    first = sandbox.post("/pay/BILL20261123001/pay").json()["notification"]
    assert (first["status"], first["delivered"]) == (500, False)

    backend.answer = None
    again = sandbox.post("/pay/BILL20261123001/notify").json()
    assert again["delivered"] is True and again["id"] == first["id"]
    log = sandbox.get("/pay/BILL20261123001").json()["notifications"]
    assert [n["status"] for n in log] == [500, 204]


def test_query_after_payment_matches_notification(sandbox, wxpay):
    user = sandbox.create_user()
    _prepay(wxpay, user)
    paid = sandbox.post("/pay/BILL20261123001/pay", json={"notify": False}).json()["order"]
    order = json.loads(wxpay.query(out_trade_no="BILL20261123001")[1])
    assert order == paid and order["trade_state"] == "SUCCESS"
    by_id = json.loads(wxpay.query(transaction_id=order["transaction_id"])[1])
    assert by_id["out_trade_no"] == "BILL20261123001"


def test_request_signed_with_another_key_is_401_sign_error(sandbox, wxpay):
    from wechat.sandbox.crypto import generate_rsa_key, private_key_pem
    from wechatpayv3.utils import load_private_key

    wxpay._core._private_key = load_private_key(private_key_pem(generate_rsa_key()))
    code, text = wxpay.query(out_trade_no="BILL20261123001")
    assert code == 401 and json.loads(text)["code"] == "SIGN_ERROR"


def test_public_key_file_is_written_for_the_backend(sandbox):
    keys = sandbox.get("/pay/public-key").json()
    path = sandbox.sandbox.config["pay_public_key_path"]
    with open(path) as f:
        assert f.read() == keys["public_key_pem"]
    with open(path + ".id") as f:
        assert f.read().strip() == keys["public_key_id"]
    assert keys["public_key_id"].startswith("PUB_KEY_ID_")


@pytest.mark.parametrize("field", ["description", "out_trade_no"])
def test_bad_order_fields_are_param_error(sandbox, wxpay, field):
    user = sandbox.create_user()
    bad = {"description": "x" * 128, "out_trade_no": "ab"}
    args = {"description": "采暖费", "out_trade_no": "BILL000002", field: bad[field]}
    code, text = wxpay.pay(amount={"total": 1}, payer={"openid": user["mp_openid"]}, **args)
    assert code == 400 and json.loads(text)["code"] == "PARAM_ERROR"
