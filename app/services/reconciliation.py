"""Daily reconciliation (对账): WeChat Pay's trade bill of a day against our payments and refunds.

What belongs to a day is what WeChat Pay's bill puts there (its 日切 is 00:00 Beijing): a
payment by its success time (our ``paid_at`` is WeChat Pay's ``success_time``), a refund by
the time WeChat Pay accepted it (our ``accepted_at`` is its ``create_time``). The day is the
app's calendar day (``TIMEZONE``, app.clock.local_tz).

Each difference is stored as a mismatch of one kind — missing here (in the bill, not ours),
missing at WeChat Pay (ours, not in the bill), amount differs, state differs — with details
for staff, open until someone marks it resolved. Reconciling a day again replaces that day's
results in one transaction; a mismatch found again keeps the resolution staff gave it.

The bill's rows come in as ``records``: objects with ``kind`` ("payment" | "refund"),
``out_trade_no``, ``transaction_id``, ``state``, ``amount_fen``, ``out_refund_no`` and
``refund_id`` (wechat.pay.BillRecord), so this module knows nothing of WeChat Pay's file.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select

from app.errors import ConflictError, NotFoundError, ValidationError
from app.clock import local_tz
from app.extensions import db
from app.models import (
    MismatchKind, Payment, PaymentState, ReconciliationMismatch, ReconciliationRun, Refund, RefundState, utcnow,
)

PAID = (PaymentState.PAID, PaymentState.REFUNDED)
PAYMENT_STATE_TEXT = {PaymentState.CREATED: "未支付", PaymentState.CLOSED: "已关闭", PaymentState.PAID: "已支付",
                      PaymentState.REFUNDED: "已退款"}


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a local calendar day, as aware datetimes."""
    start = datetime.combine(day, time(0), tzinfo=local_tz())
    return start, start + timedelta(days=1)


def _yuan(fen: int | None) -> str:
    return "—" if fen is None else f"{fen / 100:,.2f}元"


@dataclass
class _Found:
    kind: str
    record: str
    detail: str
    out_trade_no: str | None = None
    out_refund_no: str | None = None
    transaction_id: str | None = None
    our_amount_fen: int | None = None
    wechat_amount_fen: int | None = None
    our_state: str | None = None
    wechat_state: str | None = None


def _compare_payments(remote: dict, ours: dict[str, Payment], day: date) -> tuple[list[_Found], int]:
    found, matched = [], 0
    for no, rec in remote.items():
        mine = ours.pop(no, None)
        common = dict(record="payment", out_trade_no=no, transaction_id=rec.transaction_id,
                      wechat_amount_fen=rec.amount_fen, wechat_state=rec.state)
        if mine is None:
            known = db.session.scalar(select(Payment).where(Payment.out_trade_no == no))
            if known is None:
                found.append(_Found(MismatchKind.MISSING_LOCAL, detail="微信支付账单有此笔支付，我方没有这个订单", **common))
            elif known.state not in PAID:
                found.append(_Found(MismatchKind.STATE, our_amount_fen=known.amount_fen, our_state=known.state,
                                    detail=f"微信支付已支付，我方订单为“{PAYMENT_STATE_TEXT.get(known.state, known.state)}”", **common))
            else:
                paid_day = known.paid_at.astimezone(local_tz()).date()
                found.append(_Found(MismatchKind.STATE, our_amount_fen=known.amount_fen, our_state=known.state,
                                    detail=f"支付日期不一致：我方记为{paid_day.isoformat()}，微信支付为{day.isoformat()}", **common))
            continue
        common.update(our_amount_fen=mine.amount_fen, our_state=mine.state)
        if rec.amount_fen != mine.amount_fen:
            found.append(_Found(MismatchKind.AMOUNT, detail=(
                f"金额不符：微信支付{_yuan(rec.amount_fen)}，我方{_yuan(mine.amount_fen)}"), **common))
        elif rec.state != "SUCCESS":
            found.append(_Found(MismatchKind.STATE, detail=f"微信支付交易状态为{rec.state}，我方已入账", **common))
        elif mine.transaction_id != rec.transaction_id:
            found.append(_Found(MismatchKind.STATE, detail=(
                f"微信支付单号不符：微信支付{rec.transaction_id}，我方{mine.transaction_id}"), **common))
        else:
            matched += 1
    for no, mine in ours.items():
        found.append(_Found(MismatchKind.MISSING_REMOTE, record="payment", out_trade_no=no,
                            transaction_id=mine.transaction_id, our_amount_fen=mine.amount_fen, our_state=mine.state,
                            detail="我方已入账，微信支付账单中没有这笔支付"))
    return found, matched


def _compare_refunds(remote: dict, ours: dict[str, Refund]) -> tuple[list[_Found], int]:
    found, matched = [], 0
    for no, rec in remote.items():
        mine = ours.pop(no, None)
        common = dict(record="refund", out_trade_no=rec.out_trade_no, out_refund_no=no,
                      transaction_id=rec.transaction_id, wechat_amount_fen=rec.amount_fen, wechat_state=rec.state)
        if mine is None:
            known = db.session.scalar(select(Refund).where(Refund.out_refund_no == no))
            if known is None:
                found.append(_Found(MismatchKind.MISSING_LOCAL, detail="微信支付账单有此笔退款，我方没有这个退款单", **common))
            else:
                found.append(_Found(MismatchKind.STATE, our_amount_fen=known.amount_fen, our_state=known.state,
                                    detail=f"微信支付已受理此退款，我方退款单为“{known.state_label}”", **common))
            continue
        common.update(our_amount_fen=mine.amount_fen, our_state=mine.state)
        if rec.amount_fen != mine.amount_fen:
            found.append(_Found(MismatchKind.AMOUNT, detail=(
                f"退款金额不符：微信支付{_yuan(rec.amount_fen)}，我方{_yuan(mine.amount_fen)}"), **common))
        elif rec.state == "SUCCESS" and mine.state != RefundState.SUCCESS:
            found.append(_Found(MismatchKind.STATE, detail=f"微信支付退款成功，我方为“{mine.state_label}”", **common))
        elif rec.state in ("CLOSED", "ABNORMAL") and mine.state == RefundState.SUCCESS:
            found.append(_Found(MismatchKind.STATE, detail=f"微信支付退款状态为{rec.state}，我方记为已退款", **common))
        else:
            matched += 1   # PROCESSING in the bill is a snapshot: the refund may have succeeded since
    for no, mine in ours.items():
        found.append(_Found(MismatchKind.MISSING_REMOTE, record="refund", out_trade_no=mine.payment.out_trade_no,
                            out_refund_no=no, our_amount_fen=mine.amount_fen, our_state=mine.state,
                            detail="我方退款已被微信支付受理，微信支付账单中没有这笔退款"))
    return found, matched


def reconcile_fetched(day: date, fetch_bill) -> ReconciliationRun:
    """Reconcile ``day`` against the trade bill ``fetch_bill(day)`` returns (the caller passes
    ``wechat.pay.download_trade_bill``; its errors pass through) — the one step behind the
    console's 重新对账 and the daily job. The caller commits."""
    bill = fetch_bill(day)
    return reconcile_day(day, bill.records, bill_available=bill.available)


def reconcile_day(day: date, records, *, bill_available: bool = True) -> ReconciliationRun:
    """Match the bill's ``records`` of ``day`` against ours and store the result (the caller
    commits). Replaces an earlier run of the same day."""
    start, end = day_bounds(day)
    ours_payments = {p.out_trade_no: p for p in db.session.scalars(
        select(Payment).where(Payment.paid_at >= start, Payment.paid_at < end, Payment.state.in_(PAID)))}
    ours_refunds = {r.out_refund_no: r for r in db.session.scalars(
        select(Refund).where(Refund.accepted_at >= start, Refund.accepted_at < end,
                             Refund.state.in_(RefundState.ACCEPTED)))}
    records = list(records)
    remote_payments = {r.out_trade_no: r for r in records if r.kind == "payment"}
    remote_refunds = {r.out_refund_no: r for r in records if r.kind == "refund"}

    run = ReconciliationRun(
        bill_date=day, ran_at=utcnow(), bill_available=bill_available,
        wechat_payments=len(remote_payments), wechat_payment_fen=sum(r.amount_fen for r in remote_payments.values()),
        wechat_refunds=len(remote_refunds), wechat_refund_fen=sum(r.amount_fen for r in remote_refunds.values()),
        our_payments=len(ours_payments), our_payment_fen=sum(p.amount_fen for p in ours_payments.values()),
        our_refunds=len(ours_refunds), our_refund_fen=sum(r.amount_fen for r in ours_refunds.values()),
    )
    found_payments, matched_payments = _compare_payments(remote_payments, ours_payments, day)
    found_refunds, matched_refunds = _compare_refunds(remote_refunds, ours_refunds)
    found = found_payments + found_refunds
    run.matched = matched_payments + matched_refunds
    run.mismatch_count = len(found)

    earlier = db.session.scalar(select(ReconciliationRun).where(ReconciliationRun.bill_date == day))
    resolutions = {}
    if earlier is not None:
        resolutions = {(m.kind, m.record, m.out_trade_no, m.out_refund_no): m
                       for m in earlier.mismatches if m.resolved_at is not None}
        db.session.delete(earlier)
        db.session.flush()
    for f in found:
        mismatch = ReconciliationMismatch(bill_date=day, **f.__dict__)
        previous = resolutions.get((f.kind, f.record, f.out_trade_no, f.out_refund_no))
        if previous is not None:
            mismatch.resolved_at = previous.resolved_at
            mismatch.resolved_by_id = previous.resolved_by_id
            mismatch.resolution_note = previous.resolution_note
        run.mismatches.append(mismatch)
    db.session.add(run)
    db.session.flush()
    return run


def open_mismatch_count() -> int:
    """Mismatches nobody has resolved yet (the leader dashboard's figure)."""
    return db.session.scalar(select(func.count(ReconciliationMismatch.id))
                             .where(ReconciliationMismatch.resolved_at.is_(None))) or 0


def resolve_mismatch(mismatch_id: int, staff_id: int, note: str) -> ReconciliationMismatch:
    """Staff say how a mismatch was handled; it stops counting as open."""
    mismatch = db.session.get(ReconciliationMismatch, mismatch_id)
    if mismatch is None:
        raise NotFoundError("对账差异不存在", code="mismatch_not_found")
    if mismatch.resolved_at is not None:
        raise ConflictError("该差异已处理", code="mismatch_resolved")
    note = (note or "").strip()
    if not note:
        raise ValidationError("请填写处理说明", fields={"note": ["请填写处理说明"]})
    mismatch.resolved_at = utcnow()
    mismatch.resolved_by_id = staff_id
    mismatch.resolution_note = note[:300]
    db.session.flush()
    return mismatch
