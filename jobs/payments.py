"""Close stale WeChat Pay orders (created, never paid) — periodic, one job per order.

An order older than ``STALE_AFTER`` (its 2-hour time_expire plus a margin) is first asked
about at WeChat Pay, and every ``trade_state`` WeChat Pay documents ends it here for good, so
no order comes back run after run:

- SUCCESS — paid (the notification was lost): credited;
- REFUND — paid, and a refund has been applied for since (not by this backend: ours follow a
  credit): credited all the same, the money having arrived; the refund shows in that day's
  reconciliation as WeChat Pay's (我方缺失) for staff;
- NOTPAY, USERPAYING, PAYERROR — not paid (yet): closed at WeChat Pay, then here. A close
  refused with ORDERPAID (paid in between) is asked about again and credited in this run;
- CLOSED, REVOKED — closed at WeChat Pay already: closed here;
- no such order at WeChat Pay (the prepay never reached it): closed here.

Safe to run twice: every step is conditional on the current state.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from app.extensions import db
from app.models import Payment, PaymentState, utcnow
from app.queue import enqueue_for_ids
from app.services.billing import close_payment
from wechat import pay as wechat_pay

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(hours=2, minutes=15)
BATCH = 200
UNPAID = ("NOTPAY", "USERPAYING", "PAYERROR")   # can still be paid until closed at WeChat Pay
CLOSED_THERE = ("CLOSED", "REVOKED")


def close_stale_payments(now=None) -> int:
    """Enqueue :func:`close_stale_payment` for each stale created order; returns how many."""
    cutoff = (now or utcnow()) - STALE_AFTER
    return enqueue_for_ids("jobs.payments.close_stale_payment", db.session.scalars(
        select(Payment.id).where(Payment.state == PaymentState.CREATED, Payment.created_at < cutoff)
        .order_by(Payment.id).limit(BATCH)), job_prefix="close-payment")


def close_stale_payment(payment_id: int) -> str:
    payment = db.session.get(Payment, payment_id)
    if payment is None or payment.state != PaymentState.CREATED:
        return "nothing to do"
    out_trade_no = payment.out_trade_no
    # Asked even without a prepay_id: the answer carrying it may have been lost.
    transaction = wechat_pay.query_order(out_trade_no)
    state = transaction.get("trade_state") if transaction else None
    if state in UNPAID and wechat_pay.close_order(out_trade_no) == "paid":
        transaction = wechat_pay.query_order(out_trade_no)      # paid in between: credit it now
        state = transaction.get("trade_state") if transaction else None
    if state in wechat_pay.PAID_TRADE_STATES:
        wechat_pay.settle_transaction(transaction)
        db.session.commit()
        if state == "REFUND":
            log.warning("payment %s: paid, and WeChat Pay shows a refund applied for outside this backend; "
                        "credited, the refund is left to reconciliation", out_trade_no)
        return "credited"
    if state is not None and state not in UNPAID + CLOSED_THERE:
        log.error("payment %s: WeChat Pay trade_state %r is not one it documents; left as it is", out_trade_no, state)
        return f"unknown trade_state {state}"
    close_payment(out_trade_no)
    db.session.commit()
    return "closed"
