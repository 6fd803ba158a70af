"""POST /pay/notify: WeChat Pay v3 payment notifications (DESIGN §4.2, WECHAT.md §8).

Verify the signature with the WeChat Pay public key, decrypt the resource, check the order
and the amount, and credit the bills exactly once (``credit_payment`` claims the payment
with one conditional UPDATE, so any number of copies, in any order or at once, credit once).
Answers: 204 when handled (also for a repeat); 4xx/5xx with ``{"code": "FAIL", "message"}``
to refuse (WeChat Pay then retries on its schedule).
"""
from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request
from sqlalchemy.exc import DBAPIError

from app.errors import ConflictError, DomainError, NotFoundError
from app.extensions import db
from wechat import pay

log = logging.getLogger(__name__)

bp = Blueprint("pay_notify", __name__)

MAX_BODY = 64 * 1024


def _fail(status: int, message: str):
    return jsonify(code="FAIL", message=message), status


@bp.route("/pay/notify", methods=["POST"])
def pay_notify():
    if (request.content_length or 0) > MAX_BODY:
        return _fail(413, "通知内容过大")
    body = request.get_data(cache=False)
    try:
        notification = pay.verify_notification(request.headers, body)
    except pay.NotificationRejected as exc:
        log.warning("pay notify refused from %s: %s", request.remote_addr, exc)
        return _fail(401, "签名验证失败")
    except pay.PayUnavailable as exc:
        log.error("pay notify cannot be verified now: %s", exc)
        return _fail(500, "系统繁忙，请稍后重试")
    if notification["event_type"] != "TRANSACTION.SUCCESS":
        return "", 204      # nothing for us to do (refunds are not handled here)
    resource = notification["resource"]
    try:
        result = pay.settle_transaction(resource)
        db.session.commit()
    except NotFoundError:
        db.session.rollback()
        log.error("pay notify for unknown order %s", resource.get("out_trade_no"))
        return _fail(404, "订单不存在")
    except ConflictError as exc:
        db.session.rollback()
        log.error("pay notify %s: %s", resource.get("out_trade_no"), exc.message)
        return _fail(409, exc.message)
    except DomainError as exc:      # amount mismatch: never credit, keep WeChat retrying for a person to see
        db.session.rollback()
        log.error("pay notify %s refused: %s", resource.get("out_trade_no"), exc.message)
        return _fail(400, exc.message)
    except DBAPIError:
        db.session.rollback()
        log.exception("pay notify %s: database error", resource.get("out_trade_no"))
        return _fail(500, "系统繁忙，请稍后重试")
    if result is not None and result.credited:
        log.info("payment %s credited (transaction %s)", resource["out_trade_no"], resource["transaction_id"])
    return "", 204
