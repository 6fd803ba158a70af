"""Orders paid before the sandbox existed: the demo city's payment history.

WeChat Pay knows every order a merchant was ever paid; the sandbox only knows those made
through it. So that the trade bill (and the backend's daily reconciliation) agrees with a
seeded database, the backend registers its historical paid orders here:

  POST /pay/history  {"orders": [{"out_trade_no", "transaction_id", "payer_openid", "total",
                                  "success_time", "description"?, "appid"?}, ...]}

An order already known is left as it is (idempotent). Control endpoint, not a WeChat Pay API.
"""
from __future__ import annotations

import json
from datetime import datetime

from flask import Blueprint, jsonify, request

from .errors import ControlError

MAX_ORDERS_PER_CALL = 2000
REQUIRED = ("out_trade_no", "transaction_id", "payer_openid", "total", "success_time")


def _check(spec) -> tuple:
    if not isinstance(spec, dict) or any(spec.get(k) in (None, "") for k in REQUIRED):
        raise ControlError(400, f"each order needs {', '.join(REQUIRED)}")
    if not isinstance(spec["total"], int) or spec["total"] <= 0:
        raise ControlError(400, "total must be a positive integer (fen)")
    try:
        paid = datetime.fromisoformat(spec["success_time"])
    except (TypeError, ValueError):
        raise ControlError(400, "success_time must be RFC 3339, e.g. 2026-11-30T10:15:00+08:00") from None
    if paid.tzinfo is None:
        raise ControlError(400, "success_time needs its offset, e.g. +08:00")
    return spec, paid


def register(bp: Blueprint, sb) -> None:
    @bp.route("/pay/history", methods=["POST"])
    def pay_history():
        data = request.get_json(silent=True)
        orders = data.get("orders") if isinstance(data, dict) else None
        if not isinstance(orders, list) or len(orders) > MAX_ORDERS_PER_CALL:
            raise ControlError(400, f"orders must be a list of at most {MAX_ORDERS_PER_CALL} objects")
        checked = [_check(o) for o in orders]
        created = 0
        with sb.store.tx() as conn:
            for spec, paid in checked:
                params = {"description": spec.get("description") or "", "out_trade_no": spec["out_trade_no"]}
                created += conn.execute(
                    "INSERT INTO orders (out_trade_no, mchid, appid, params, payer_openid, total, notify_url,"
                    " trade_state, transaction_id, success_time, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, '', 'SUCCESS', ?, ?, ?) ON CONFLICT DO NOTHING",
                    (spec["out_trade_no"], sb.config["mchid"], spec.get("appid") or sb.config["mp_appid"],
                     json.dumps(params, ensure_ascii=False), spec["payer_openid"], spec["total"],
                     spec["transaction_id"], spec["success_time"], paid.timestamp()),
                ).rowcount
        return jsonify({"created": created, "existing": len(checked) - created})
