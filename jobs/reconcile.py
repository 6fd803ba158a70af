"""Daily reconciliation against WeChat Pay's trade bill (app.services.reconciliation).

``reconcile(day)`` downloads the day's bill (wechat.pay.download_trade_bill: apply, download,
SHA1 check, parse), matches it against our payments and refunds and stores the result,
replacing an earlier run of that day. ``reconcile_due`` is the periodic job (jobs/cron.py,
every 30 minutes): WeChat Pay makes the bill of day D from 09:00 on D+1 and recommends
fetching it after 10:00 (Beijing), so from ``READY_AT`` on it reconciles yesterday once —
a STATEMENT_CREATING answer leaves it for the next tick. ``flask pay reconcile`` runs one day
by hand (any day in the last three months, again as often as wanted).
"""
from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.clock import local_now
from app.extensions import db
from app.models import MismatchKind, ReconciliationRun
from app.services import reconciliation
from app.services.billing import local_today
from wechat import pay as wechat_pay

log = logging.getLogger(__name__)

READY_AT = time(10, 30)      # local time after which yesterday's bill is fetched


def reconcile(day: date) -> ReconciliationRun:
    """Reconcile one day now; raises wechat.pay.BillNotReady / PayUnavailable / BillInvalid."""
    run = reconciliation.reconcile_fetched(day, wechat_pay.download_trade_bill)
    db.session.commit()
    log.info("reconciled %s: %d matched, %d mismatch(es)", day, run.matched, run.mismatch_count)
    return run


def reconcile_due(now: datetime | None = None) -> str:
    """Reconcile yesterday once its bill is ready (periodic; does nothing when done)."""
    local = local_now(now)
    if local.time() < READY_AT:
        return "too early"
    day = local.date() - timedelta(days=1)
    if db.session.scalar(select(ReconciliationRun.id).where(ReconciliationRun.bill_date == day)) is not None:
        return "done"
    try:
        run = reconcile(day)
    except wechat_pay.BillNotReady:
        db.session.rollback()
        return "not ready"
    return f"{run.mismatch_count} mismatch(es)"


# --- flask pay reconcile -------------------------------------------------------------------------

pay_cli = AppGroup("pay", help="WeChat Pay: reconciliation (对账).")


def _yuan(fen: int) -> str:
    return f"{fen / 100:,.2f}"


@pay_cli.command("reconcile")
@click.option("--date", "day", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="YYYY-MM-DD (default: yesterday in the app's time zone)")
def reconcile_command(day):
    """对账: download WeChat Pay's trade bill of a day and match it against our records."""
    day = day.date() if day else local_today() - timedelta(days=1)
    click.echo(f"对账 Reconciliation {day.isoformat()}")
    try:
        run = reconcile(day)
    except wechat_pay.BillNotReady:
        raise click.ClickException("微信支付账单生成中，请 10:00 后再试 (WeChat Pay is still making the bill; try after 10:00)")
    except (wechat_pay.PayUnavailable, wechat_pay.PayRejected, wechat_pay.BillInvalid) as exc:
        raise click.ClickException(f"无法获取微信支付账单 (cannot get WeChat Pay's bill): {exc}")
    if not run.bill_available:
        click.echo("  微信支付当日无交易账单 (WeChat Pay has no bill: no trade that day)")
    click.echo(f"  微信支付 WeChat Pay: {run.wechat_payments} 笔支付 payments {_yuan(run.wechat_payment_fen)} 元, "
               f"{run.wechat_refunds} 笔退款 refunds {_yuan(run.wechat_refund_fen)} 元")
    click.echo(f"  我方 Ours:           {run.our_payments} 笔支付 payments {_yuan(run.our_payment_fen)} 元, "
               f"{run.our_refunds} 笔退款 refunds {_yuan(run.our_refund_fen)} 元")
    click.echo(f"  一致 Matched: {run.matched}   差异 Mismatches: {run.mismatch_count}")
    english = {MismatchKind.MISSING_LOCAL: "missing here", MismatchKind.MISSING_REMOTE: "missing at WeChat Pay",
               MismatchKind.AMOUNT: "amount differs", MismatchKind.STATE: "state differs"}
    for m in run.mismatches:
        number = m.out_refund_no or m.out_trade_no
        click.echo(f"  - {m.kind_label} ({english.get(m.kind, m.kind)}): {number}  {m.detail}"
                   + ("  [已处理 resolved]" if m.resolved_at else ""))
