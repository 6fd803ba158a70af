"""POST /pay/notify and POST /pay/refund-notify: WeChat Pay v3 payment and refund
notifications (DESIGN §4.2, WECHAT.md §8).

Verify the signature (WeChat Pay public key or platform certificate, as configured; signature
probes refused), decrypt the resource, check the order and the amount, and credit the bills
exactly once (``credit_payment`` claims the payment with one conditional UPDATE, so any
number of copies, in any order or at once, credit once).
A refund notification (REFUND.SUCCESS / ABNORMAL / CLOSED) moves the refund's state once
(``record_refund_result``: a conditional UPDATE too), so duplicates have one effect.
Answers: 204 when handled (also for a repeat); 4xx/5xx with ``{"code": "FAIL", "message"}``
to refuse (WeChat Pay then retries on its schedule).
"""
from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import RequestEntityTooLarge

from app.errors import ConflictError, DomainError, NotFoundError
from app.extensions import db
from app.http_limits import limit_blueprint
from wechat import pay

log = logging.getLogger(__name__)

bp = Blueprint("pay_notify", __name__)

MAX_BODY = 64 * 1024
limit_blueprint(bp, MAX_BODY)   # every notification, chunked or not (app/http_limits.py)


def _fail(status: int, message: str):
    return jsonify(code="FAIL", message=message), status


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc):
    return _fail(413, "通知内容过大")


@bp.route("/pay/refund-notify", methods=["POST"])
def refund_notify():
    if (request.content_length or 0) > MAX_BODY:
        return _fail(413, "通知内容过大")
    body = request.get_data(cache=False)
    notification, refusal = _verified(body, "refund notify")
    if refusal is not None:
        return refusal
    if not _is_refund(notification):
        return "", 204      # not a refund: nothing for us to do here
    return _record_refund(notification["resource"])


def _verified(body: bytes, what: str):
    """(notification, None), or (None, the answer refusing it): 401 for what WeChat Pay did not
    sign — its own signature probes included, which must get a 4xx — and 500 when a platform
    certificate cannot be fetched now (WeChat Pay sends it again later)."""
    try:
        return pay.verify_notification(request.headers, body), None
    except pay.SignatureProbe:
        log.info("%s: WeChat Pay signature probe from %s refused, as it should be", what, request.remote_addr)
        return None, _fail(401, "签名验证失败")
    except pay.NotificationRejected as exc:
        log.warning("%s refused from %s: %s", what, request.remote_addr, exc)
        return None, _fail(401, "签名验证失败")
    except pay.PayUnavailable as exc:
        log.error("%s cannot be verified now: %s", what, exc)
        return None, _fail(500, "系统繁忙，请稍后重试")


def _is_refund(notification: dict) -> bool:
    return notification.get("original_type") == "refund" and (notification["event_type"] or "").startswith("REFUND.")


def _settle(what: str, ref: str | None, settle, resource: dict, unknown: str):
    """``settle(resource)`` and commit: (its result, None), or (None, the failure WeChat Pay
    gets — it retries and a person looks): an unknown order or refund 404, a conflict 409, any
    other refusal (an amount that does not match: never credited) 400, the database 500."""
    try:
        result = settle(resource)
        db.session.commit()
        return result, None
    except NotFoundError:
        db.session.rollback()
        log.error("%s for unknown %s", what, ref)
        return None, _fail(404, unknown)
    except DomainError as exc:
        db.session.rollback()
        log.error("%s %s refused: %s", what, ref, exc.message)
        return None, _fail(409 if isinstance(exc, ConflictError) else 400, exc.message)
    except DBAPIError:
        db.session.rollback()
        log.exception("%s %s: database error", what, ref)
        return None, _fail(500, "系统繁忙，请稍后重试")


def _record_refund(resource: dict):
    """A refund's result, recorded once (duplicates and concurrent copies change nothing)."""
    result, refusal = _settle("refund notify", resource.get("out_refund_no"), pay.settle_refund, resource,
                              "退款单不存在")
    if refusal is not None:
        return refusal
    if result.changed:
        log.info("refund %s is now %s", resource["out_refund_no"], result.refund.state)
    return "", 204


@bp.route("/pay/notify", methods=["POST"])
def pay_notify():
    body = request.get_data(cache=False)  # 413 past MAX_BODY
    notification, refusal = _verified(body, "pay notify")
    if refusal is not None:
        return refusal
    if _is_refund(notification):
        return _record_refund(notification["resource"])   # a refund result sent to this URL
    if notification["event_type"] != "TRANSACTION.SUCCESS":
        return "", 204      # nothing else for us to do
    resource = notification["resource"]
    result, refusal = _settle("pay notify", resource.get("out_trade_no"), pay.settle_transaction, resource,
                              "订单不存在")
    if refusal is not None:
        return refusal
    if result is not None and result.credited:
        log.info("payment %s credited (transaction %s)", resource["out_trade_no"], resource["transaction_id"])
    return "", 204
