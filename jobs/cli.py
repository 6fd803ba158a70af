"""``flask jobs``: what staff and operators need to see and re-run background work.

    flask jobs stats                     queue depths, running/failed/scheduled jobs, outbox states
    flask jobs failed [--queue Q]        failed jobs with their last error line
    flask jobs requeue JOB_ID…           re-run these failed jobs
    flask jobs requeue --all [--queue Q] re-run every failed job
    flask jobs outbox-retry [ID…]        put failed outbox rows back to pending (the sweeper sends them)
    flask jobs progress ANNOUNCEMENT_ID  pending / sent / failed / skipped / unknown of a broadcast
    flask jobs rate [PER_MINUTE|--reset] the broadcast send rate shared by all workers
    flask jobs clear-quota               forget the spent-quota flags (after WeChat's reset / clear_quota)
"""
from __future__ import annotations

import click
from flask.cli import AppGroup
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from app.queue import QUEUES, get_queue
from app.services import run_settings

jobs_cli = AppGroup("jobs", help="后台任务：队列、失败任务重试、群发进度与速率")


def _queues(name: str | None):
    return [get_queue(name)] if name else [get_queue(q) for q in QUEUES]


@jobs_cli.command("stats")
def stats() -> None:
    """Queue depths and registries, and the outbox by status."""
    from jobs.outbox import pending_counts

    click.echo(f"{'queue':<10}{'queued':>8}{'started':>9}{'failed':>8}{'scheduled':>11}")
    for q in _queues(None):
        conn = q.connection
        click.echo(f"{q.name:<10}{q.count:>8}{len(StartedJobRegistry(q.name, connection=conn)):>9}"
                   f"{len(FailedJobRegistry(q.name, connection=conn)):>8}"
                   f"{len(ScheduledJobRegistry(q.name, connection=conn)):>11}")
    from app.services.notices import count_unknown_notices

    counts = pending_counts()
    click.echo("outbox: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) if counts else "outbox: empty")
    unknown = count_unknown_notices()
    if unknown:
        click.echo(f"notices of unknown outcome (console 失败任务, 重新发送): {unknown}")


@jobs_cli.command("failed")
@click.option("--queue", type=click.Choice(QUEUES), default=None)
@click.option("--limit", default=50, show_default=True)
def failed(queue: str | None, limit: int) -> None:
    """List failed jobs (newest registry order) with the last line of their error."""
    total = 0
    for q in _queues(queue):
        registry = FailedJobRegistry(q.name, connection=q.connection)
        for job_id in registry.get_job_ids()[:limit]:
            job = Job.fetch(job_id, connection=q.connection) if Job.exists(job_id, connection=q.connection) else None
            if job is None:
                click.echo(f"{q.name:<8} {job_id}  (job data expired)")
                continue
            exc = (job.latest_result().exc_string if job.latest_result() else None) or ""
            last = exc.strip().splitlines()[-1] if exc.strip() else "?"
            ended = job.ended_at.strftime("%Y-%m-%d %H:%M:%S") if job.ended_at else "-"
            click.echo(f"{q.name:<8} {job_id}  {ended}  {job.func_name}{tuple(job.args)}  {last[:160]}")
            total += 1
    click.echo(f"{total} failed job(s)")


@jobs_cli.command("requeue")
@click.argument("job_ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="re-run every failed job")
@click.option("--queue", type=click.Choice(QUEUES), default=None)
def requeue(job_ids: tuple[str, ...], all_: bool, queue: str | None) -> None:
    """Re-run failed jobs (they are idempotent: re-running one that half-worked is safe)."""
    if not job_ids and not all_:
        raise click.UsageError("give job ids or --all")
    done = 0
    for q in _queues(queue):
        registry = FailedJobRegistry(q.name, connection=q.connection)
        ids = registry.get_job_ids() if all_ else [j for j in job_ids if j in registry]
        for job_id in ids:
            registry.requeue(job_id)
            done += 1
    click.echo(f"requeued {done} job(s)")


@jobs_cli.command("outbox-retry")
@click.argument("ids", nargs=-1, type=int)
def outbox_retry(ids: tuple[int, ...]) -> None:
    """Give failed outbox rows another round of attempts (all of them without ids)."""
    from sqlalchemy import update

    from app.extensions import db
    from app.models import OutboxMessage, OutboxStatus, utcnow

    stmt = update(OutboxMessage).where(OutboxMessage.status == OutboxStatus.FAILED)
    if ids:
        stmt = stmt.where(OutboxMessage.id.in_(ids))
    res = db.session.execute(stmt.values(status=OutboxStatus.PENDING, attempts=0, available_at=utcnow()))
    db.session.commit()
    click.echo(f"{res.rowcount} outbox row(s) back to pending")


@jobs_cli.command("progress")
@click.argument("announcement_id", type=int)
def progress(announcement_id: int) -> None:
    """Progress of a broadcast."""
    from app.errors import NotFoundError
    from app.services.announcements import progress as get_progress

    try:
        p = get_progress(announcement_id)
    except NotFoundError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"公告 {p['announcement_id']}: {p['status']}" + (f"（{p['status_reason']}）" if p["status_reason"] else ""))
    click.echo(f"total {p['total']}  pending {p['pending']}  sending {p['sending']}  sent {p['sent']}  "
               f"failed {p['failed']}  skipped {p['skipped']}  unknown {p['unknown']}")
    if p["unknown"]:
        click.echo(f"{p['unknown']} recipient(s) of unknown outcome: see the announcement's page in the console (重新发送)")


@jobs_cli.command("rate")
@click.argument("per_minute", type=int, required=False)
@click.option("--reset", is_flag=True, help="back to BROADCAST_RATE_PER_MINUTE")
def rate(per_minute: int | None, reset: bool) -> None:
    """Show or set the broadcast send rate (messages per minute, all workers together)."""
    from jobs import broadcast

    if reset:
        broadcast.set_rate_per_minute(None)
    elif per_minute is not None:
        if per_minute < 1:
            raise click.BadParameter("must be at least 1")
        broadcast.set_rate_per_minute(per_minute)
    click.echo(f"broadcast rate: {broadcast.rate_per_minute()} per minute "
               f"(default {run_settings.default_broadcast_rate()})")


@jobs_cli.command("clear-quota")
def clear_quota() -> None:
    """After WeChat's daily reset (or POST /cgi-bin/clear_quota): let halted broadcasts resume."""
    from jobs import broadcast

    click.echo(f"removed {broadcast.clear_quota_halt()} key(s); halted broadcasts resume at the next sweep")
