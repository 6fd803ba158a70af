"""WeChat Pay v3 refunds (WECHAT.md §8): apply, query, and the signed, encrypted notification.

- ``POST /v3/refund/domestic/refunds``: the order is named by transaction_id or out_trade_no
  and must be paid; ``amount.total`` must be the order's; refunds of one order never exceed
  its total (INVALID_REQUEST “申请退款金额超过订单可退金额”). The same out_refund_no again
  answers the same refund (“同一退款单号多次请求只退一笔”); with other parameters it is
  refused. A new refund is PROCESSING; the order's trade_state becomes REFUND.
- ``GET /v3/refund/domestic/refunds/{out_refund_no}``: the refund, or 404 RESOURCE_NOT_EXISTS.
- The refund settles by itself after ``refund_auto_settle`` seconds (SUCCESS), or when told
  to: ``POST /sandbox/pay/refunds/<out_refund_no>/settle {"status": "SUCCESS"|"ABNORMAL"|"CLOSED"}``.
  Then ``REFUND.<STATUS>`` is POSTed to the refund's notify_url, signed like every WeChat Pay
  notification, with the resource AEAD-encrypted: original_type "refund", associated_data "",
  and exactly the documented fields — mchid, out_trade_no, transaction_id, out_refund_no,
  refund_id, refund_status, success_time (SUCCESS only), user_received_account,
  amount{total, refund, payer_total, payer_refund}; no appid.
- ``POST /sandbox/pay/refunds/<out_refund_no>/notify`` posts it again (WeChat Pay's retries);
  ``GET /sandbox/pay/refunds`` and ``GET /sandbox/pay/refunds/<out_refund_no>`` show them.
"""
from __future__ import annotations

import json
import re
import secrets
import threading
import uuid
from datetime import datetime

from flask import Blueprint, jsonify, request

from .core import BEIJING
from .crypto import aead_encrypt
from .errors import ControlError, PayError
from .faults import pay_guard
from .pay import PAID_STATES, _body, _require, post_notification, rfc3339, signed_response, verify_request

OUT_REFUND_NO = re.compile(r"^[0-9A-Za-z_\-|*@]{1,64}$")
SETTLE_STATUSES = ("SUCCESS", "ABNORMAL", "CLOSED")
SUMMARY = {"SUCCESS": "退款成功", "ABNORMAL": "退款异常", "CLOSED": "退款关闭"}
RECEIVED_ACCOUNT = "支付用户零钱"


def refund_json(row) -> dict:
    """The refund as the refund and query APIs answer it."""
    answer = {
        "refund_id": row["refund_id"], "out_refund_no": row["out_refund_no"],
        "transaction_id": json.loads(row["params"])["transaction_id"], "out_trade_no": row["out_trade_no"],
        "channel": "ORIGINAL", "user_received_account": row["user_received_account"] or RECEIVED_ACCOUNT,
        "create_time": row["create_time"], "status": row["status"], "funds_account": "AVAILABLE",
        "amount": {"total": row["total"], "refund": row["refund"], "from": [], "payer_total": row["total"],
                   "payer_refund": row["refund"], "settlement_refund": row["refund"],
                   "settlement_total": row["total"], "discount_refund": 0, "currency": "CNY", "refund_fee": 0},
        "promotion_detail": [],
    }
    if row["success_time"]:
        answer["success_time"] = row["success_time"]
    return answer


def _notification_resource(sb, row) -> dict:
    resource = {
        "mchid": row["mchid"], "out_trade_no": row["out_trade_no"],
        "transaction_id": json.loads(row["params"])["transaction_id"], "out_refund_no": row["out_refund_no"],
        "refund_id": row["refund_id"], "refund_status": row["status"],
        "user_received_account": row["user_received_account"] or RECEIVED_ACCOUNT,
        "amount": {"total": row["total"], "refund": row["refund"], "payer_total": row["total"],
                   "payer_refund": row["refund"]},
    }
    if row["success_time"]:
        resource["success_time"] = row["success_time"]
    return resource


def apply(sb, mchid: str, data: dict) -> dict:
    out_refund_no = _require(data, "out_refund_no")
    _require(data, "amount.refund")
    _require(data, "amount.total")
    if not isinstance(out_refund_no, str) or not OUT_REFUND_NO.match(out_refund_no):
        raise PayError(400, "PARAM_ERROR", "商户退款单号out_refund_no格式错误：1-64位数字、大小写字母_-|*@")
    if not (data.get("transaction_id") or data.get("out_trade_no")):
        raise PayError(400, "PARAM_ERROR", "微信支付订单号transaction_id和商户订单号out_trade_no必须二选一")
    amount = data["amount"]
    for key in ("refund", "total"):
        if not isinstance(amount.get(key), int) or isinstance(amount[key], bool) or amount[key] < 1:
            raise PayError(400, "PARAM_ERROR", f"金额amount.{key}必须为正整数（单位：分）")
    if amount.get("currency", "CNY") != "CNY":
        raise PayError(400, "PARAM_ERROR", "币种currency只支持CNY")
    if len(str(data.get("reason") or "")) > 80:
        raise PayError(400, "PARAM_ERROR", "退款原因reason长度超过80")
    notify_url = data.get("notify_url")
    if notify_url is not None and not re.match(r"^https?://[^?#]+$", str(notify_url)):
        raise PayError(400, "PARAM_ERROR", "退款结果回调地址notify_url须为http(s)绝对地址且不能携带参数")
    now = sb.now()
    with sb.store.tx() as conn:
        if data.get("transaction_id"):
            order = conn.execute("SELECT * FROM orders WHERE transaction_id = ?", (data["transaction_id"],)).fetchone()
        else:
            order = conn.execute("SELECT * FROM orders WHERE out_trade_no = ?", (data["out_trade_no"],)).fetchone()
        if order is None or order["mchid"] != mchid:
            raise PayError(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        if order["trade_state"] not in PAID_STATES:
            raise PayError(400, "INVALID_REQUEST", "订单未支付，无法退款")
        params = json.dumps({"transaction_id": order["transaction_id"], "refund": amount["refund"],
                             "total": amount["total"]}, sort_keys=True)
        existing = conn.execute("SELECT * FROM refunds WHERE out_refund_no = ?", (out_refund_no,)).fetchone()
        if existing is not None:
            if existing["params"] != params:
                raise PayError(400, "INVALID_REQUEST", "退款单号已存在，请求参数与原退款单不一致")
            return refund_json(existing)     # the same refund: refunded once
        if amount["total"] != order["total"]:
            raise PayError(400, "INVALID_REQUEST", "订单金额total与原支付订单金额不一致")
        refunded = conn.execute(
            "SELECT COALESCE(SUM(refund), 0) AS s FROM refunds WHERE out_trade_no = ? AND status != 'CLOSED'",
            (order["out_trade_no"],)).fetchone()["s"]
        if refunded + amount["refund"] > order["total"]:
            raise PayError(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
        refund_id = "50" + datetime.fromtimestamp(now, BEIJING).strftime("%Y%m%d%H%M%S") + f"{secrets.randbelow(10**14):014d}"
        conn.execute(
            "INSERT INTO refunds (out_refund_no, refund_id, out_trade_no, mchid, params, refund, total, reason,"
            " notify_url, status, create_time, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'PROCESSING', ?, ?)",
            (out_refund_no, refund_id, order["out_trade_no"], mchid, params, amount["refund"], amount["total"],
             data.get("reason"), notify_url, rfc3339(now), now))
        conn.execute("UPDATE orders SET trade_state = 'REFUND' WHERE out_trade_no = ?", (order["out_trade_no"],))
        row = conn.execute("SELECT * FROM refunds WHERE out_refund_no = ?", (out_refund_no,)).fetchone()
    delay = sb.config["refund_auto_settle"]
    if delay is not None:
        timer = threading.Timer(float(delay), _auto_settle, args=(sb, out_refund_no))
        timer.daemon = True
        timer.start()
    return refund_json(row)


def _auto_settle(sb, out_refund_no: str) -> None:
    try:
        settle(sb, out_refund_no, "SUCCESS")
    except ControlError:
        pass  # settled by hand meanwhile


def settle(sb, out_refund_no: str, status: str, send: bool = True) -> dict:
    """The refund ends (SUCCESS, ABNORMAL or CLOSED) and its notification is prepared (and sent)."""
    if status not in SETTLE_STATUSES:
        raise ControlError(400, f"status must be one of {SETTLE_STATUSES}")
    now = sb.now()
    with sb.store.tx() as conn:
        row = conn.execute("SELECT * FROM refunds WHERE out_refund_no = ?", (out_refund_no,)).fetchone()
        if row is None:
            raise ControlError(404, f"no refund {out_refund_no}")
        if row["status"] not in ("PROCESSING", "ABNORMAL") or (row["status"] == "ABNORMAL" and status == "ABNORMAL"):
            raise ControlError(409, f"refund {out_refund_no} is {row['status']}; use /notify to resend")
        conn.execute("UPDATE refunds SET status = ?, success_time = ?, user_received_account = ?"
                     " WHERE out_refund_no = ?",
                     (status, rfc3339(now) if status == "SUCCESS" else None, RECEIVED_ACCOUNT, out_refund_no))
        row = conn.execute("SELECT * FROM refunds WHERE out_refund_no = ?", (out_refund_no,)).fetchone()
        resource = json.dumps(_notification_resource(sb, row), ensure_ascii=False, separators=(",", ":"))
        notification = {
            "id": str(uuid.uuid4()), "create_time": rfc3339(now), "resource_type": "encrypt-resource",
            "event_type": f"REFUND.{status}", "summary": SUMMARY[status],
            # The official example's associated_data is "" (WECHAT.md §8): the AAD is what this says.
            "resource": {"original_type": "refund", **aead_encrypt(sb.config["apiv3_key"], resource, "")},
        }
        conn.execute("UPDATE refunds SET notification = ? WHERE out_refund_no = ?",
                     (json.dumps(notification, ensure_ascii=False, separators=(",", ":")), out_refund_no))
    answer = {"refund": refund_json(row)}
    if send:
        answer["notification"] = notify(sb, out_refund_no)
    return answer


def notify(sb, out_refund_no: str) -> dict:
    """POST the refund's notification (again) to its notify_url; record the backend's answer."""
    row = sb.store.one("SELECT * FROM refunds WHERE out_refund_no = ?", out_refund_no)
    if row is None:
        raise ControlError(404, f"no refund {out_refund_no}")
    if not row["notification"]:
        raise ControlError(409, f"refund {out_refund_no} is {row['status']}: nothing to notify")
    if not row["notify_url"]:
        # No notify_url in the request: WeChat Pay uses the one set in the merchant platform;
        # the sandbox has none, so nothing is posted.
        return {"id": None, "status": None, "answer": "no notify_url", "delivered": False}
    result = post_notification(sb, row["notify_url"], row["notification"])
    sb.store.run("INSERT INTO refund_notifications (out_refund_no, status, answer, created_at) VALUES (?, ?, ?, ?)",
                 out_refund_no, result["status"], result["answer"], sb.now())
    return result


def register(bp: Blueprint, sb) -> None:
    @bp.route("/v3/refund/domestic/refunds", methods=["POST"])
    def refunds_apply():
        mchid = verify_request(sb)
        pay_guard(sb, "v3/refund/domestic/refunds")
        return signed_response(sb, 200, apply(sb, mchid, _body()))

    @bp.route("/v3/refund/domestic/refunds/<out_refund_no>")
    def refunds_query(out_refund_no):
        mchid = verify_request(sb)
        pay_guard(sb, f"v3/refund/domestic/refunds/{out_refund_no}")
        row = sb.store.one("SELECT * FROM refunds WHERE out_refund_no = ?", out_refund_no)
        if row is None or row["mchid"] != mchid:
            raise PayError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return signed_response(sb, 200, refund_json(row))

    @bp.route("/pay/refunds/<out_refund_no>/settle", methods=["POST"])
    def refunds_settle(out_refund_no):
        data = request.get_json(silent=True) or {}
        return jsonify(settle(sb, out_refund_no, data.get("status", "SUCCESS"), send=data.get("notify", True)))

    @bp.route("/pay/refunds/<out_refund_no>/notify", methods=["POST"])
    def refunds_notify(out_refund_no):
        return jsonify(notify(sb, out_refund_no))

    @bp.route("/pay/refunds")
    def refunds_list():
        rows = sb.store.all("SELECT * FROM refunds ORDER BY created_at DESC LIMIT 200")
        return jsonify([refund_json(r) for r in rows])

    @bp.route("/pay/refunds/<out_refund_no>")
    def refunds_detail(out_refund_no):
        row = sb.store.one("SELECT * FROM refunds WHERE out_refund_no = ?", out_refund_no)
        if row is None:
            raise ControlError(404, f"no refund {out_refund_no}")
        log = sb.store.all("SELECT * FROM refund_notifications WHERE out_refund_no = ? ORDER BY id", out_refund_no)
        return jsonify({"refund": refund_json(row), "notify_url": row["notify_url"],
                        "notifications": [dict(r) for r in log]})
