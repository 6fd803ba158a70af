"""Refunds of money received twice, through WeChat Pay (``/v3/refund/domestic/refunds``).

``submit_refund`` is the outbox handler of ``pay.refund`` (recorded with the surplus in the
transaction that credited the payment, or when staff submit a failed refund again): it asks
WeChat Pay to refund and records the answer. It is safe to run any number of times: the
out_refund_no is the refund's own, so WeChat Pay answers a repeat with the same refund
instead of refunding twice, and a refund already accepted is left alone.

Failures: WeChat Pay unreachable or busy (5xx, SYSTEM_ERROR, FREQUENCY_LIMITED) → the
exception propagates and the outbox/RQ retry with backoff; NOT_ENOUGH (the merchant's
balance cannot cover it) → parked for an hour (``Deferred``); any other refusal is final:
the refund becomes ``failed`` with WeChat Pay's message, for staff to see on the console's
退款 page (and submit again once fixed).

``check_refunds`` (cron) asks WeChat Pay about refunds still PROCESSING after a while, in
case the refund notification was lost.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from app.extensions import db
from app.models import Refund, RefundState, utcnow
from app.queue import Deferred, enqueue_for_ids
from app.services.billing import refund_refused
from wechat import pay as wechat_pay

log = logging.getLogger(__name__)

RETRY_LATER = {"NOT_ENOUGH": timedelta(hours=1)}
CHECK_AFTER = timedelta(minutes=10)     # a refund still PROCESSING this long: ask WeChat Pay
BATCH = 200


def submit_refund(payload: dict, outbox_id: int | None = None) -> str:
    refund = db.session.get(Refund, payload["refund_id"])
    if refund is None or refund.state != RefundState.PENDING:
        return "nothing to do"
    payment = refund.payment
    refund.attempts += 1
    db.session.commit()
    try:
        answer = wechat_pay.refund(out_refund_no=refund.out_refund_no, out_trade_no=payment.out_trade_no,
                                   transaction_id=payment.transaction_id, refund_fen=refund.amount_fen,
                                   total_fen=payment.amount_fen, reason=refund.reason)
    except wechat_pay.PayRejected as exc:
        message = f"微信支付拒绝退款：{exc.code} {exc.message}"[:300]
        if exc.code in RETRY_LATER:
            refund.last_error = message
            db.session.commit()
            raise Deferred(utcnow() + RETRY_LATER[exc.code], message) from exc
        refund_refused(refund, message)
        db.session.commit()
        log.error("refund %s refused for good: %s", refund.out_refund_no, message)
        return "refused"
    except wechat_pay.PayUnavailable as exc:
        refund.last_error = f"微信支付暂时不可用：{exc}"[:300]
        db.session.commit()
        raise   # retried with backoff (outbox attempts, RQ retry)
    result = wechat_pay.settle_refund(answer)
    db.session.commit()
    log.info("refund %s accepted by WeChat Pay: %s", refund.out_refund_no, result.refund.state)
    return result.refund.state


def check_refunds(now=None) -> int:
    """Enqueue a query for each refund still PROCESSING after ``CHECK_AFTER``; returns how many."""
    cutoff = (now or utcnow()) - CHECK_AFTER
    return enqueue_for_ids("jobs.refunds.check_refund", db.session.scalars(
        select(Refund.id).where(Refund.state == RefundState.PROCESSING, Refund.updated_at < cutoff)
        .order_by(Refund.id).limit(BATCH)), job_prefix="check-refund")


def check_refund(refund_id: int) -> str:
    refund = db.session.get(Refund, refund_id)
    if refund is None or refund.state != RefundState.PROCESSING:
        return "nothing to do"
    answer = wechat_pay.query_refund(refund.out_refund_no)
    if answer is None:   # WeChat Pay never got it: submit it again (same out_refund_no)
        refund.state = RefundState.PENDING
        db.session.commit()
        return submit_refund({"refund_id": refund.id})
    result = wechat_pay.settle_refund(answer)
    refund.updated_at = utcnow()   # asked now: the next check waits CHECK_AFTER again
    db.session.commit()
    return result.refund.state
