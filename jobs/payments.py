"""Close stale WeChat Pay orders (created, never paid) — periodic, one job per order.

An order older than ``STALE_AFTER`` (its 2-hour time_expire plus a margin) is first asked
about at WeChat Pay: paid there → credited here (the notification was lost); otherwise it is
closed there, then here. A close that WeChat refuses with ORDERPAID is credited on the next
run's query. Safe to run twice: every step is conditional on the current state.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from app.extensions import db
from app.models import Payment, PaymentState, utcnow
from app.queue import enqueue
from app.services.billing import close_payment
from wechat import pay as wechat_pay

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(hours=2, minutes=15)
BATCH = 200


def close_stale_payments(now=None) -> int:
    """Enqueue :func:`close_stale_payment` for each stale created order; returns how many."""
    cutoff = (now or utcnow()) - STALE_AFTER
    ids = list(db.session.scalars(
        select(Payment.id).where(Payment.state == PaymentState.CREATED, Payment.created_at < cutoff)
        .order_by(Payment.id).limit(BATCH)))
    for payment_id in ids:
        enqueue("jobs.payments.close_stale_payment", payment_id, job_id=f"close-payment-{payment_id}")
    return len(ids)


def close_stale_payment(payment_id: int) -> str:
    payment = db.session.get(Payment, payment_id)
    if payment is None or payment.state != PaymentState.CREATED:
        return "nothing to do"
    transaction = wechat_pay.query_order(payment.out_trade_no) if payment.prepay_id else None
    if transaction is not None and transaction.get("trade_state") == "SUCCESS":
        wechat_pay.settle_transaction(transaction)
        db.session.commit()
        return "credited"
    if transaction is not None and transaction.get("trade_state") not in ("CLOSED", "REVOKED", "PAYERROR"):
        if wechat_pay.close_order(payment.out_trade_no) == "paid":
            return "paid meanwhile; credited on the next run"
    close_payment(payment.out_trade_no)
    db.session.commit()
    return "closed"
