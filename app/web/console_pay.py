"""Console pages of the money side: 退款 (refunds of money paid twice) and 对账 (the daily
reconciliation against WeChat Pay's trade bill). Same rules as ``app.web.console`` (same
blueprint): every console role may look, agents and admins may act."""
from __future__ import annotations

from datetime import date, timedelta

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from app.errors import ValidationError
from app.extensions import db
from app.models import (
    MismatchKind, ReconciliationMismatch, ReconciliationRun, Refund, RefundState, Staff,
)
from app.services import billing, reconciliation
from app.services.billing import local_today
from app.web import auth
from app.web.console_base import bp, done
from wechat import pay as wechat_pay

REFUND_PAGE = 50
REFUND_BADGE = {RefundState.SUCCESS: "ok", RefundState.PROCESSING: "", RefundState.PENDING: "warn",
                RefundState.FAILED: "bad", RefundState.ABNORMAL: "bad", RefundState.CLOSED: "bad"}


# --- 退款 -------------------------------------------------------------------------------------------

@bp.route("/refunds")
def refunds():
    state = request.args.get("state") or ""
    if state and state not in RefundState.ALL:
        abort(400)
    page = max(request.args.get("page", 1, type=int), 1)
    query = select(Refund).order_by(Refund.id.desc())
    if state:
        query = query.where(Refund.state == state)
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = db.session.scalars(query.limit(REFUND_PAGE).offset((page - 1) * REFUND_PAGE)).all()
    counts = dict(db.session.execute(select(Refund.state, func.count()).group_by(Refund.state)).all())
    return render_template("console/refunds.html", rows=rows, state=state, counts=counts, labels=RefundState.LABELS,
                           badges=REFUND_BADGE, page=page, pages=max((total + REFUND_PAGE - 1) // REFUND_PAGE, 1),
                           total=total, retryable=_retryable)


def _retryable(refund: Refund) -> bool:
    return refund.state == RefundState.FAILED or (refund.state == RefundState.PENDING and bool(refund.last_error))


@bp.route("/refunds/<int:refund_id>/retry", methods=["POST"])
def refund_retry(refund_id: int):
    refund = billing.retry_refund(refund_id)
    return done(f"退款单 {refund.out_refund_no} 已重新提交微信支付", "console.refunds")


# --- 对账 -------------------------------------------------------------------------------------------

def _day(value: str | None) -> date:
    if not value:
        return local_today() - timedelta(days=1)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError("日期格式不正确", fields={"date": ["格式应为 YYYY-MM-DD"]})


@bp.route("/reconciliation")
def reconciliation_page():
    day = _day(request.args.get("date"))
    run = db.session.scalar(select(ReconciliationRun).where(ReconciliationRun.bill_date == day))
    recent = db.session.scalars(select(ReconciliationRun).order_by(ReconciliationRun.bill_date.desc()).limit(14)).all()
    open_count = reconciliation.open_mismatch_count()
    open_days = db.session.execute(
        select(ReconciliationMismatch.bill_date, func.count()).where(ReconciliationMismatch.resolved_at.is_(None))
        .group_by(ReconciliationMismatch.bill_date).order_by(ReconciliationMismatch.bill_date.desc()).limit(31)).all()
    counts = {}
    resolvers = {}
    if run is not None:
        for m in run.mismatches:
            counts[m.kind] = counts.get(m.kind, 0) + 1
        ids = {m.resolved_by_id for m in run.mismatches if m.resolved_by_id}
        if ids:
            resolvers = dict(db.session.execute(select(Staff.id, Staff.name).where(Staff.id.in_(ids))).all())
    return render_template("console/reconciliation.html", day=day, run=run, recent=recent, open_count=open_count,
                           open_days=open_days, counts=counts, kinds=MismatchKind.LABELS, resolvers=resolvers,
                           yesterday=local_today() - timedelta(days=1))


@bp.route("/reconciliation/run", methods=["POST"])
def reconciliation_run():
    """Reconcile a day now (again): the same as ``flask pay reconcile --date``."""
    day = _day(request.form.get("date"))
    if day > local_today() - timedelta(days=1):
        raise ValidationError("只能对昨天及以前的日期对账", fields={"date": ["微信支付次日 10 点后提供前一天的账单"]})
    try:
        run = reconciliation.reconcile_fetched(day, wechat_pay.download_trade_bill)
        db.session.commit()
    except wechat_pay.BillNotReady:
        db.session.rollback()
        flash("微信支付账单生成中，请 10:00 后再试", "error")
        return redirect(url_for("console.reconciliation_page", date=day.isoformat()))
    except (wechat_pay.PayUnavailable, wechat_pay.PayRejected, wechat_pay.BillInvalid) as exc:
        db.session.rollback()
        flash(f"无法获取微信支付账单：{exc}", "error")
        return redirect(url_for("console.reconciliation_page", date=day.isoformat()))
    flash(f"{day.isoformat()} 对账完成：一致 {run.matched} 笔，差异 {run.mismatch_count} 笔", "ok")
    return redirect(url_for("console.reconciliation_page", date=day.isoformat()))


@bp.route("/reconciliation/mismatches/<int:mismatch_id>/resolve", methods=["POST"])
def mismatch_resolve(mismatch_id: int):
    mismatch = reconciliation.resolve_mismatch(mismatch_id, auth.current_staff().id, request.form.get("note", ""))
    return done("已标记为已处理", "console.reconciliation_page", date=mismatch.bill_date.isoformat())
