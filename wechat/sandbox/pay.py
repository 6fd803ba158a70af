"""WeChat Pay API v3 in public-key mode (WECHAT.md §8): JSAPI orders, query, close, notify.

Requests must carry a WECHATPAY2-SHA256-RSA2048 Authorization for the configured mchid (the
signature itself is checked when the merchant's key or certificate is configured). Every
answer, errors and the empty 204 included, is signed with the platform key pair the sandbox
generates once and keeps in its store; `Wechatpay-Serial` is its PUB_KEY_ID.

Control endpoints: POST /pay/<out_trade_no>/pay (the payer pays; the notification is posted),
POST /pay/<out_trade_no>/notify (post it again), GET /pay/<out_trade_no>, GET /pay/orders,
GET /pay/public-key. Refunds are in refunds.py, the daily trade bill in bills.py.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

import requests
from flask import Blueprint, Response, jsonify, request

from .core import BEIJING
from .crypto import (aead_encrypt, generate_rsa_key, load_any_public_key, load_private_key,
                     private_key_pem, public_key_pem, rsa_sign, rsa_verify)
from .errors import ControlError, PayError
from .faults import pay_guard

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
CLOCK_SKEW = 300  # WeChat Pay refuses request timestamps more than 5 minutes off
OUT_TRADE_NO = re.compile(r"^[0-9A-Za-z_\-*|]{6,32}$")
STATE_DESC = {"SUCCESS": "支付成功", "NOTPAY": "订单未支付", "CLOSED": "订单已关闭", "REFUND": "转入退款"}
PAID_STATES = ("SUCCESS", "REFUND")   # paid (REFUND: paid, then a refund was applied for)


@dataclass
class PayKeys:
    private_key: object
    public_key_id: str
    public_key_pem: str
    merchant_public_key: object | None


def load_pay_keys(sb) -> PayKeys:
    """The platform key pair (generated once per store) and the merchant's key, if known."""
    stored = sb.store.get_json("pay_keys")
    if stored is None:
        stored = sb.store.set_json_once("pay_keys", {
            "private_key": private_key_pem(generate_rsa_key()),
            "id": "PUB_KEY_ID_01" + secrets.token_hex(16).upper(),
        })
    private_key = load_private_key(stored["private_key"])
    key_id = sb.config["pay_public_key_id"] or stored["id"]
    pem = public_key_pem(private_key.public_key())
    path = sb.config["pay_public_key_path"]
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        _write_atomically(path, pem)  # several workers may start at once
        _write_atomically(path + ".id", key_id + "\n")
    merchant = None
    merchant_path = sb.config["merchant_key_path"]
    if merchant_path and os.path.exists(merchant_path):
        with open(merchant_path) as f:
            merchant = load_any_public_key(f.read())
    return PayKeys(private_key, key_id, pem, merchant)


def _write_atomically(path: str, text: str) -> None:
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as f:
        f.write(text)
    os.replace(temporary, path)


def signature_headers(sb, body: str) -> dict:
    timestamp, nonce = str(int(time.time())), secrets.token_hex(16).upper()
    return {
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": rsa_sign(sb.pay_keys.private_key, f"{timestamp}\n{nonce}\n{body}\n"),
        "Wechatpay-Serial": sb.pay_keys.public_key_id,
        "Wechatpay-Signature-Type": SIGNATURE_TYPE,
    }


def signed_response(sb, status: int, payload: dict | None = None) -> Response:
    body = "" if payload is None else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    response = Response(body, status=status)
    if body:
        response.headers["Content-Type"] = "application/json; charset=utf-8"
    else:
        del response.headers["Content-Type"]
    response.headers.update(signature_headers(sb, body))
    response.headers["Request-ID"] = uuid.uuid4().hex
    return response


def verify_request(sb) -> str:
    """Check the Authorization header; return the caller's mchid."""
    header = request.headers.get("Authorization", "")
    scheme, _, params = header.partition(" ")
    if scheme != SIGNATURE_TYPE:
        raise PayError(401, "SIGN_ERROR", "Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》")
    fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
    missing = [k for k in ("mchid", "nonce_str", "signature", "timestamp", "serial_no") if not fields.get(k)]
    if missing:
        raise PayError(401, "SIGN_ERROR", f"Http头Authorization缺少 {','.join(missing)}")
    if fields["mchid"] != sb.config["mchid"]:
        raise PayError(401, "SIGN_ERROR", "商户号不存在或与签名不匹配")
    if not fields["timestamp"].isdigit() or abs(time.time() - int(fields["timestamp"])) > CLOCK_SKEW:
        raise PayError(401, "SIGN_ERROR", "Http头Authorization中的timestamp与系统时间相差过大")
    if sb.pay_keys.merchant_public_key is not None:
        # The client signs the path below the gateway, so drop any mount prefix.
        full = request.full_path if request.query_string else request.path
        path = full[full.index("/v3/"):]
        body = request.get_data(as_text=True) if request.method != "GET" else ""
        message = f"{request.method}\n{path}\n{fields['timestamp']}\n{fields['nonce_str']}\n{body}\n"
        if not rsa_verify(sb.pay_keys.merchant_public_key, message, fields["signature"]):
            raise PayError(401, "SIGN_ERROR", "签名错误，请检查后再试")
    return fields["mchid"]


def _body() -> dict:
    try:
        data = json.loads(request.get_data() or b"null")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise PayError(400, "PARAM_ERROR", "请求体不是合法的JSON对象")
    return data


def _require(data: dict, path: str):
    value = data
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value in (None, ""):
        raise PayError(400, "PARAM_ERROR", f"输入源“/body/{path.replace('.', '/')}”映射到字段“{path.split('.')[-1]}”必填性规则校验失败，此字段为必填项")
    return value


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, BEIJING).isoformat(timespec="seconds")


def transaction(row) -> dict:
    params = json.loads(row["params"])
    state = row["trade_state"]
    answer = {
        "appid": row["appid"], "mchid": row["mchid"], "out_trade_no": row["out_trade_no"],
        "trade_type": "JSAPI", "trade_state": state, "trade_state_desc": STATE_DESC[state],
        "attach": params.get("attach", ""), "payer": {"openid": row["payer_openid"]},
        "amount": {"total": row["total"], "currency": "CNY", "payer_currency": "CNY"},
    }
    if state in PAID_STATES:
        answer.update(transaction_id=row["transaction_id"], bank_type="OTHERS", success_time=row["success_time"])
        answer["amount"]["payer_total"] = row["total"]
    return answer


def prepay(sb, mchid: str, data: dict) -> dict:
    for field in ("appid", "mchid", "description", "out_trade_no", "notify_url", "amount.total", "payer.openid"):
        _require(data, field)
    if data["mchid"] != mchid:
        raise PayError(400, "PARAM_ERROR", "请求中的商户号与签名商户号不一致")
    appid = data["appid"]
    if appid not in (sb.config["oa_appid"], sb.config["mp_appid"]):
        raise PayError(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
    out_trade_no = data["out_trade_no"]
    if not isinstance(out_trade_no, str) or not OUT_TRADE_NO.match(out_trade_no):
        raise PayError(400, "PARAM_ERROR", "商户订单号out_trade_no格式错误：6-32位数字、字母、_-*|")
    if len(str(data["description"])) > 127:
        raise PayError(400, "PARAM_ERROR", "商品描述description长度超过127")
    if len(str(data.get("attach", ""))) > 128:
        raise PayError(400, "PARAM_ERROR", "附加数据attach长度超过128")
    amount = data["amount"]
    if not isinstance(amount.get("total"), int) or isinstance(amount["total"], bool) or amount["total"] < 1:
        raise PayError(400, "PARAM_ERROR", "订单金额amount.total必须为正整数（单位：分）")
    if amount.get("currency", "CNY") != "CNY":
        raise PayError(400, "PARAM_ERROR", "币种currency只支持CNY")
    notify_url = str(data["notify_url"])
    # The real gateway requires https; the sandbox also takes http so local servers work.
    if not re.match(r"^https?://[^?#]+$", notify_url):
        raise PayError(400, "PARAM_ERROR", "通知地址notify_url须为http(s)绝对地址且不能携带参数")
    openid = data["payer"]["openid"]
    column = "oa_openid" if appid == sb.config["oa_appid"] else "mp_openid"
    if sb.store.one(f"SELECT 1 FROM users WHERE {column} = ?", openid) is None:
        raise PayError(400, "PARAM_ERROR", "appid和openid不匹配")
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False)
    with sb.store.tx() as conn:
        row = conn.execute("SELECT * FROM orders WHERE out_trade_no = ?", (out_trade_no,)).fetchone()
        if row is not None:
            if row["trade_state"] in PAID_STATES:
                raise PayError(400, "ORDERPAID", "该订单已支付")
            if row["trade_state"] == "CLOSED":
                raise PayError(400, "ORDER_CLOSED", "该订单已关闭")
            if _digest(row["params"]) != _digest(canonical):
                raise PayError(400, "INVALID_REQUEST", "201 商户订单号重复")
        else:
            conn.execute(
                "INSERT INTO orders (out_trade_no, mchid, appid, params, payer_openid, total, notify_url,"
                " trade_state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'NOTPAY', ?)",
                (out_trade_no, mchid, appid, canonical, openid, amount["total"], notify_url, sb.now()),
            )
    stamp = datetime.fromtimestamp(sb.now(), BEIJING).strftime("%d%H%M%S")
    return {"prepay_id": f"wx{stamp}{secrets.token_hex(14)}"}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _order(sb, out_trade_no: str):
    row = sb.store.one("SELECT * FROM orders WHERE out_trade_no = ?", out_trade_no)
    if row is None:
        raise PayError(404, "ORDER_NOT_EXIST", "订单不存在")
    return row


def pay_order(sb, out_trade_no: str) -> dict:
    """The payer pays: the order succeeds and its notification is prepared (not yet sent)."""
    now = sb.now()
    with sb.store.tx() as conn:
        row = conn.execute("SELECT * FROM orders WHERE out_trade_no = ?", (out_trade_no,)).fetchone()
        if row is None:
            raise ControlError(404, f"no order {out_trade_no}")
        if row["trade_state"] == "CLOSED":
            # What the payer's WeChat shows: a closed order cannot be paid (ORDER_CLOSED).
            raise ControlError(409, f"ORDER_CLOSED: 订单已关闭，无法支付 (order {out_trade_no} is CLOSED)")
        if row["trade_state"] != "NOTPAY":
            raise ControlError(409, f"order {out_trade_no} is {row['trade_state']}; use /notify to resend")
        expire = json.loads(row["params"]).get("time_expire")
        if expire and datetime.fromisoformat(expire).timestamp() < now:
            raise ControlError(409, f"order {out_trade_no} expired at {expire}")
        transaction_id = "4200" + datetime.fromtimestamp(now, BEIJING).strftime("%Y%m%d") + f"{secrets.randbelow(10**16):016d}"
        conn.execute(
            "UPDATE orders SET trade_state = 'SUCCESS', transaction_id = ?, success_time = ? WHERE out_trade_no = ?",
            (transaction_id, rfc3339(now), out_trade_no),
        )
        row = conn.execute("SELECT * FROM orders WHERE out_trade_no = ?", (out_trade_no,)).fetchone()
        resource = json.dumps(transaction(row), ensure_ascii=False, separators=(",", ":"))
        notification = {
            "id": str(uuid.uuid4()), "create_time": rfc3339(now), "resource_type": "encrypt-resource",
            "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
            "resource": {"original_type": "transaction", **aead_encrypt(sb.config["apiv3_key"], resource, "transaction")},
        }
        conn.execute("UPDATE orders SET notification = ? WHERE out_trade_no = ?",
                     (json.dumps(notification, ensure_ascii=False, separators=(",", ":")), out_trade_no))
    return transaction(row)


def notify(sb, out_trade_no: str) -> dict:
    """POST the order's notification (again); record and return the backend's answer."""
    row = sb.store.one("SELECT * FROM orders WHERE out_trade_no = ?", out_trade_no)
    if row is None:
        raise ControlError(404, f"no order {out_trade_no}")
    if not row["notification"]:
        raise ControlError(409, f"order {out_trade_no} is {row['trade_state']}: nothing to notify")
    body = row["notification"]
    headers = {"Content-Type": "application/json", **signature_headers(sb, body)}
    try:
        response = requests.post(row["notify_url"], data=body.encode(), headers=headers,
                                 timeout=float(sb.config["notify_timeout"]))
        status, answer = response.status_code, response.text[:2000]
    except requests.RequestException as exc:
        status, answer = None, f"{type(exc).__name__}: {exc}"
    sb.store.run("INSERT INTO notifications (out_trade_no, status, answer, created_at) VALUES (?, ?, ?, ?)",
                 out_trade_no, status, answer, sb.now())
    delivered = status is not None and 200 <= status < 300
    # WeChat Pay would retry on its schedule (15 s ... 24 h); here POST /notify resends.
    return {"id": json.loads(body)["id"], "status": status, "answer": answer, "delivered": delivered}


def register(bp: Blueprint, sb) -> None:
    @bp.errorhandler(PayError)
    def pay_error(error: PayError):
        return signed_response(sb, error.status, {"code": error.code, "message": error.message})

    @bp.route("/v3/pay/transactions/jsapi", methods=["POST"])
    def jsapi():
        mchid = verify_request(sb)
        pay_guard(sb, "v3/pay/transactions/jsapi")
        return signed_response(sb, 200, prepay(sb, mchid, _body()))

    @bp.route("/v3/pay/transactions/out-trade-no/<out_trade_no>")
    def query(out_trade_no):
        mchid = verify_request(sb)
        if request.args.get("mchid") != mchid:
            raise PayError(400, "PARAM_ERROR", "输入源“/query/mchid”映射到字段“mchid”必填性规则校验失败")
        return signed_response(sb, 200, transaction(_order(sb, out_trade_no)))

    @bp.route("/v3/pay/transactions/id/<transaction_id>")
    def query_by_id(transaction_id):
        mchid = verify_request(sb)
        if request.args.get("mchid") != mchid:
            raise PayError(400, "PARAM_ERROR", "输入源“/query/mchid”映射到字段“mchid”必填性规则校验失败")
        row = sb.store.one("SELECT * FROM orders WHERE transaction_id = ?", transaction_id)
        if row is None:
            raise PayError(404, "ORDER_NOT_EXIST", "订单不存在")
        return signed_response(sb, 200, transaction(row))

    @bp.route("/v3/pay/transactions/out-trade-no/<out_trade_no>/close", methods=["POST"])
    def close(out_trade_no):
        mchid = verify_request(sb)
        pay_guard(sb, f"v3/pay/transactions/out-trade-no/{out_trade_no}/close")
        if _body().get("mchid") != mchid:
            raise PayError(400, "PARAM_ERROR", "请求中的商户号与签名商户号不一致")
        with sb.store.tx() as conn:
            row = conn.execute("SELECT * FROM orders WHERE out_trade_no = ?", (out_trade_no,)).fetchone()
            if row is None:
                raise PayError(404, "ORDER_NOT_EXIST", "订单不存在")
            if row["trade_state"] in PAID_STATES:
                raise PayError(400, "ORDERPAID", "该订单已支付")
            conn.execute("UPDATE orders SET trade_state = 'CLOSED' WHERE out_trade_no = ?", (out_trade_no,))
        return signed_response(sb, 204)

    @bp.route("/pay/<out_trade_no>/pay", methods=["POST"])
    def pay_endpoint(out_trade_no):
        data = request.get_json(silent=True) or {}
        order = pay_order(sb, out_trade_no)
        answer = {"order": order}
        if data.get("notify", True):
            answer["notification"] = notify(sb, out_trade_no)
        return jsonify(answer)

    @bp.route("/pay/<out_trade_no>/notify", methods=["POST"])
    def notify_endpoint(out_trade_no):
        return jsonify(notify(sb, out_trade_no))

    @bp.route("/pay/orders")
    def orders():
        rows = sb.store.all("SELECT * FROM orders ORDER BY created_at DESC LIMIT 200")
        return jsonify([transaction(r) for r in rows])

    @bp.route("/pay/<out_trade_no>")
    def order_detail(out_trade_no):
        row = sb.store.one("SELECT * FROM orders WHERE out_trade_no = ?", out_trade_no)
        if row is None:
            raise ControlError(404, f"no order {out_trade_no}")
        log = sb.store.all("SELECT * FROM notifications WHERE out_trade_no = ? ORDER BY id", out_trade_no)
        return jsonify({"order": transaction(row), "notify_url": row["notify_url"],
                        "notifications": [dict(r) for r in log]})

    @bp.route("/pay/public-key")
    def public_key():
        return jsonify({"public_key_id": sb.pay_keys.public_key_id, "public_key_pem": sb.pay_keys.public_key_pem,
                        "mchid": sb.config["mchid"]})
