"""WeChat Pay API v3 (WECHAT.md §8): JSAPI orders, query, close, notify, platform certificates.

Requests must carry a WECHATPAY2-SHA256-RSA2048 Authorization for the configured mchid whose
``serial_no`` is the merchant's registered API certificate serial (401 SIGN_ERROR otherwise;
the signature itself is checked when the merchant's key or certificate is configured).

WeChat Pay signs with one of two key pairs the sandbox generates once and keeps in its store:
the WeChat Pay public key (``Wechatpay-Serial: PUB_KEY_ID_…``) and the platform certificate
(``Wechatpay-Serial`` = the certificate's hexadecimal serial), another key pair.
``pay_sign_mode`` says which: ``public_key``, ``platform_cert`` (a merchant that never switched
to the public key), or ``both`` (a merchant switching: every answer follows the request's
``Wechatpay-Serial`` header, notifications alternate certificate / public key — WeChat Pay
ramps the public key's share up over about seven days). Every answer, errors and the empty
204 included, is signed; ``GET /v3/certificates`` lists the platform certificate encrypted
with the APIv3 key (AEAD_AES_256_GCM, associated_data "certificate"), signed with it.

Control endpoints: POST /pay/<out_trade_no>/pay (the payer pays; the notification is posted),
POST /pay/<out_trade_no>/notify (post it again), POST /pay/<out_trade_no>/probe (a signature
probe: the notification with a ``WECHATPAY/SIGNTEST/`` signature, which must be refused with
4xx), POST /pay/<out_trade_no>/state (the payer's side moves an unpaid order to USERPAYING,
PAYERROR or REVOKED), GET /pay/<out_trade_no>, GET /pay/orders, GET /pay/public-key.
Refunds are in refunds.py, the daily trade bill in bills.py.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import requests
from flask import Blueprint, Response, jsonify, request

from cryptography.x509 import load_pem_x509_certificate

from .config import BEIJING
from .crypto import (aead_encrypt, certificate_serial, generate_rsa_key, load_any_public_key, load_private_key,
                     platform_certificate, private_key_pem, public_key_pem, rsa_sign, rsa_verify)
from .errors import ControlError, PayError
from .faults import pay_guard, settings as fault_settings

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
CLOCK_SKEW = 300  # WeChat Pay refuses request timestamps more than 5 minutes off
OUT_TRADE_NO = re.compile(r"^[0-9A-Za-z_\-*|]{6,32}$")
STATE_DESC = {"SUCCESS": "支付成功", "NOTPAY": "订单未支付", "CLOSED": "订单已关闭", "REFUND": "转入退款",
              "USERPAYING": "用户支付中（付款码支付）", "PAYERROR": "支付失败(其他原因，如银行返回失败)",
              "REVOKED": "已撤销（付款码支付）"}
PAID_STATES = ("SUCCESS", "REFUND")   # paid (REFUND: paid, then a refund was applied for)
UNPAID_STATES = ("NOTPAY", "USERPAYING", "PAYERROR", "REVOKED")
PAYABLE_STATES = ("NOTPAY", "USERPAYING", "PAYERROR")   # a failed payment may be tried again
SIGN_PROBE_PREFIX = "WECHATPAY/SIGNTEST/"
PLATFORM_CERT_KEY = "pay_keys_platform_cert"   # kept by /reset, like pay_keys
SIGN_COUNTER_KEY = "pay_sign_counter"
WRONG_SERIAL = "商户证书序列号有误。请使用签名私钥匹配的证书序列号"


@dataclass(frozen=True)
class Signer:
    """A key WeChat Pay signs with and the Wechatpay-Serial that names it."""

    key: object
    serial: str


@dataclass
class PayKeys:
    private_key: object                 # the WeChat Pay public key's pair
    public_key_id: str
    public_key_pem: str
    cert_private_key: object            # the platform certificate's pair (another key)
    cert_pem: str
    cert_serial: str
    cert_not_before: datetime
    cert_not_after: datetime
    merchant_public_key: object | None
    merchant_cert_serial: str | None    # what the Authorization's serial_no must be

    @property
    def public_key_signer(self) -> Signer:
        return Signer(self.private_key, self.public_key_id)

    @property
    def cert_signer(self) -> Signer:
        return Signer(self.cert_private_key, self.cert_serial)


def load_pay_keys(sb) -> PayKeys:
    """The WeChat Pay key pairs (generated once per store) and the merchant's key, if known."""
    stored = sb.store.get_json("pay_keys")
    if stored is None:
        stored = sb.store.set_json_once("pay_keys", {
            "private_key": private_key_pem(generate_rsa_key()),
            "id": "PUB_KEY_ID_01" + secrets.token_hex(16).upper(),
        })
    cert_stored = sb.store.get_json(PLATFORM_CERT_KEY)
    if cert_stored is None:
        key, now = generate_rsa_key(), datetime.now(timezone.utc).replace(microsecond=0)
        cert_stored = sb.store.set_json_once(PLATFORM_CERT_KEY, {
            "private_key": private_key_pem(key),
            # Platform certificates live five years (WeChat Pay's update-pub-key guide).
            "certificate": platform_certificate(key, now - timedelta(days=1), now + timedelta(days=5 * 365)),
        })
    certificate = load_pem_x509_certificate(cert_stored["certificate"].encode())
    private_key = load_private_key(stored["private_key"])
    key_id = sb.config["pay_public_key_id"] or stored["id"]
    pem = public_key_pem(private_key.public_key())
    path = sb.config["pay_public_key_path"]
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        _write_atomically(path, pem)  # several workers may start at once
        _write_atomically(path + ".id", key_id + "\n")
    merchant = None
    merchant_serial = sb.config["merchant_cert_serial"]
    merchant_path = sb.config["merchant_key_path"]
    if merchant_path and os.path.exists(merchant_path):
        with open(merchant_path) as f:
            merchant_pem = f.read()
        merchant = load_any_public_key(merchant_pem)
        if not merchant_serial and "CERTIFICATE" in merchant_pem:
            merchant_serial = certificate_serial(load_pem_x509_certificate(merchant_pem.encode()))
    return PayKeys(private_key, key_id, pem, load_private_key(cert_stored["private_key"]),
                   cert_stored["certificate"], certificate_serial(certificate),
                   certificate.not_valid_before_utc, certificate.not_valid_after_utc, merchant, merchant_serial)


def _write_atomically(path: str, text: str) -> None:
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as f:
        f.write(text)
    os.replace(temporary, path)


def sign_mode(sb) -> str:
    """public_key | platform_cert | both: the setting, or its override (POST /sandbox/faults)."""
    return fault_settings(sb).get("pay_sign_mode") or sb.config["pay_sign_mode"]


def default_signer(sb) -> Signer:
    """The key of the current mode (the public key while switching)."""
    keys = sb.pay_keys
    return keys.cert_signer if sign_mode(sb) == "platform_cert" else keys.public_key_signer


def answer_signer(sb) -> Signer:
    """Who signs an API answer. While switching, WeChat Pay answers as the request asked:
    the public key when its Wechatpay-Serial names the public key id, else the certificate."""
    keys, mode = sb.pay_keys, sign_mode(sb)
    if mode == "both":
        asked = request.headers.get("Wechatpay-Serial")
        return keys.public_key_signer if asked == keys.public_key_id else keys.cert_signer
    return default_signer(sb)


def notification_signer(sb) -> Signer:
    """Who signs the next notification: while switching, certificate and public key take
    turns (the first is the certificate), each delivery signed afresh."""
    keys = sb.pay_keys
    if sign_mode(sb) != "both":
        return default_signer(sb)
    with sb.store.tx() as conn:
        row = conn.execute("SELECT value FROM kv WHERE key = ?", (SIGN_COUNTER_KEY,)).fetchone()
        count = (json.loads(row["value"]) if row else 0) + 1
        conn.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (SIGN_COUNTER_KEY, json.dumps(count)))
    return keys.cert_signer if count % 2 else keys.public_key_signer


def signature_headers(sb, body: str, signer: Signer | None = None) -> dict:
    signer = signer or default_signer(sb)
    timestamp, nonce = str(int(time.time())), secrets.token_hex(16).upper()
    return {
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": rsa_sign(signer.key, f"{timestamp}\n{nonce}\n{body}\n"),
        "Wechatpay-Serial": signer.serial,
        "Wechatpay-Signature-Type": SIGNATURE_TYPE,
    }


def post_notification(sb, url: str, body: str, probe: bool = False) -> dict:
    """POST a notification as WeChat Pay does: signed afresh. A probe carries a signature
    that is deliberately wrong (``WECHATPAY/SIGNTEST/…``): the merchant must answer 4xx."""
    signer = notification_signer(sb)
    headers = {"Content-Type": "application/json", **signature_headers(sb, body, signer)}
    if probe:
        headers["Wechatpay-Signature"] = SIGN_PROBE_PREFIX + base64.b64encode(secrets.token_bytes(256)).decode()
    try:
        response = requests.post(url, data=body.encode(), headers=headers, timeout=float(sb.config["notify_timeout"]))
        status, answer = response.status_code, response.text[:2000]
    except requests.RequestException as exc:
        status, answer = None, f"{type(exc).__name__}: {exc}"
    return {"id": json.loads(body)["id"], "status": status, "answer": answer, "serial": signer.serial,
            "delivered": status is not None and 200 <= status < 300}


def signed_response(sb, status: int, payload: dict | None = None, signer: Signer | None = None) -> Response:
    body = "" if payload is None else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    response = Response(body, status=status)
    if body:
        response.headers["Content-Type"] = "application/json; charset=utf-8"
    else:
        del response.headers["Content-Type"]
    response.headers.update(signature_headers(sb, body, signer or answer_signer(sb)))
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
    registered = sb.pay_keys.merchant_cert_serial
    if registered and fields["serial_no"].upper() != registered.upper():
        # The merchant's API certificate serial (apiclient_cert.pem), not a hash of the key.
        raise PayError(401, "SIGN_ERROR", WRONG_SERIAL)
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
    if appid not in bound_appids(sb):
        raise PayError(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配,请检查后再试")
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
    column = {sb.config["oa_appid"]: "oa_openid", sb.config["mp_appid"]: "mp_openid"}.get(appid)
    if column is None or sb.store.one(f"SELECT 1 FROM users WHERE {column} = ?", openid) is None:
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
        prepay_id = f"wx{stamp}{secrets.token_hex(14)}"
        # Kept so the payer's WeChat can find the order the page's package names (jsbridge.py).
        conn.execute("INSERT INTO prepays (prepay_id, out_trade_no, appid, created_at) VALUES (?, ?, ?, ?)",
                     (prepay_id, out_trade_no, appid, sb.now()))
    return {"prepay_id": prepay_id}


def bound_appids(sb) -> list[str]:
    """The appids bound to the merchant (商户平台 AppID账号管理)."""
    return sb.config["pay_bound_appids"] or [sb.config["oa_appid"], sb.config["mp_appid"]]


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
        if row["trade_state"] not in PAYABLE_STATES:
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
    result = post_notification(sb, row["notify_url"], row["notification"])
    sb.store.run("INSERT INTO notifications (out_trade_no, status, answer, created_at) VALUES (?, ?, ?, ?)",
                 out_trade_no, result["status"], result["answer"], sb.now())
    # WeChat Pay would retry on its schedule (15 s ... 24 h); here POST /notify resends.
    return result


def probe(sb, out_trade_no: str) -> dict:
    """WeChat Pay's signature probe: the order's notification with a wrong signature. The
    merchant must refuse it (4xx); ``refused`` says whether it did."""
    row = sb.store.one("SELECT * FROM orders WHERE out_trade_no = ?", out_trade_no)
    if row is None:
        raise ControlError(404, f"no order {out_trade_no}")
    if not row["notification"]:
        raise ControlError(409, f"order {out_trade_no} is {row['trade_state']}: nothing to notify")
    result = post_notification(sb, row["notify_url"], row["notification"], probe=True)
    result["refused"] = result["status"] is not None and 400 <= result["status"] < 500
    return result


def set_trade_state(sb, out_trade_no: str, state: str) -> dict:
    """The payer's side moves an unpaid order: USERPAYING (entering the password), PAYERROR
    (the bank refused), REVOKED (a payment-code order revoked)."""
    if state not in ("USERPAYING", "PAYERROR", "REVOKED"):
        raise ControlError(400, "trade_state must be USERPAYING, PAYERROR or REVOKED")
    with sb.store.tx() as conn:
        row = conn.execute("SELECT * FROM orders WHERE out_trade_no = ?", (out_trade_no,)).fetchone()
        if row is None:
            raise ControlError(404, f"no order {out_trade_no}")
        if row["trade_state"] not in PAYABLE_STATES:
            raise ControlError(409, f"order {out_trade_no} is {row['trade_state']}")
        conn.execute("UPDATE orders SET trade_state = ? WHERE out_trade_no = ?", (state, out_trade_no))
        row = conn.execute("SELECT * FROM orders WHERE out_trade_no = ?", (out_trade_no,)).fetchone()
    return transaction(row)


def certificates(sb) -> dict:
    """``GET /v3/certificates``: the platform certificates, each encrypted with the APIv3 key."""
    keys = sb.pay_keys
    return {"data": [{
        "serial_no": keys.cert_serial,
        "effective_time": rfc3339(keys.cert_not_before.timestamp()),
        "expire_time": rfc3339(keys.cert_not_after.timestamp()),
        "encrypt_certificate": aead_encrypt(sb.config["apiv3_key"], keys.cert_pem, "certificate"),
    }]}


def register(bp: Blueprint, sb) -> None:
    @bp.errorhandler(PayError)
    def pay_error(error: PayError):
        return signed_response(sb, error.status, {"code": error.code, "message": error.message})

    @bp.route("/v3/pay/transactions/jsapi", methods=["POST"])
    def jsapi():
        mchid = verify_request(sb)
        pay_guard(sb, "v3/pay/transactions/jsapi")
        return signed_response(sb, 200, prepay(sb, mchid, _body()))

    @bp.route("/v3/certificates")
    def platform_certificates():
        verify_request(sb)
        pay_guard(sb, "v3/certificates")
        # Signed with the certificate it lists: the merchant checks the download with it.
        return signed_response(sb, 200, certificates(sb), signer=sb.pay_keys.cert_signer)

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

    @bp.route("/pay/<out_trade_no>/probe", methods=["POST"])
    def probe_endpoint(out_trade_no):
        return jsonify(probe(sb, out_trade_no))

    @bp.route("/pay/<out_trade_no>/state", methods=["POST"])
    def state_endpoint(out_trade_no):
        data = request.get_json(silent=True) or {}
        return jsonify({"order": set_trade_state(sb, out_trade_no, data.get("trade_state"))})

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
        keys = sb.pay_keys
        return jsonify({"public_key_id": keys.public_key_id, "public_key_pem": keys.public_key_pem,
                        "platform_cert_serial": keys.cert_serial, "platform_cert_pem": keys.cert_pem,
                        "sign_mode": sign_mode(sb), "mchid": sb.config["mchid"],
                        "merchant_cert_serial": keys.merchant_cert_serial, "bound_appids": bound_appids(sb)})
