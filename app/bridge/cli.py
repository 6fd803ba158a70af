"""``flask bridge ...``: dead letters (list, show, replay), outbound status, and the simulator."""
from __future__ import annotations

import json
import sys

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from app.extensions import db


@click.group("bridge", help="呼叫中心对接: dead letters, replay, outbound status, load simulation.")
def bridge_cli() -> None:
    pass


@bridge_cli.command("dead-letters")
@click.option("--all", "show_all", is_flag=True, help="Also those already replayed successfully.")
@click.option("--limit", default=50, show_default=True)
@with_appcontext
def dead_letters(show_all: bool, limit: int) -> None:
    """List stored payloads that could not be processed (newest first)."""
    from app.bridge.ingest import list_dead_letters

    rows = list_dead_letters(include_replayed=show_all, limit=limit)
    if not rows:
        click.echo("no dead letters")
        return
    for row in rows:
        state = row.replay_result or "not replayed"
        click.echo(f"#{row.id}  {row.received_at:%Y-%m-%d %H:%M:%S}Z  /{row.endpoint}  {row.reason[:160]}")
        click.echo(f"      replay: {state[:160]}")
        click.echo(f"      body: {row.raw_body[:200]}")


@bridge_cli.command("show")
@click.argument("dead_letter_id", type=int)
@with_appcontext
def show(dead_letter_id: int) -> None:
    """Print one dead letter's raw body (to fix it and replay with --body)."""
    from app.models import BridgeDeadLetter

    row = db.session.get(BridgeDeadLetter, dead_letter_id)
    if row is None:
        raise click.ClickException(f"no dead letter {dead_letter_id}")
    click.echo(f"# /{row.endpoint}  {row.reason}", err=True)
    click.echo(row.raw_body)


@bridge_cli.command("replay")
@click.argument("dead_letter_id", type=int)
@click.option("--body", type=click.File("rb"), help="A corrected payload to process instead (- for stdin).")
@with_appcontext
def replay_cmd(dead_letter_id: int, body) -> None:
    """Process a dead letter again, as first received; prints the answer."""
    from app.bridge.ingest import replay

    try:
        answer = replay(dead_letter_id, body.read() if body else None)
    except (LookupError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{answer.status} {json.dumps(answer.body, ensure_ascii=False)}")
    if answer.status >= 300:
        sys.exit(1)


@bridge_cli.command("outbound")
@click.option("--limit", default=50, show_default=True)
@click.option("--retry-failed", is_flag=True, help="Put failed status posts back in the queue.")
@with_appcontext
def outbound(limit: int, retry_failed: bool) -> None:
    """Status posts to the phone system not yet delivered (pending, enqueued, failed)."""
    from app.models import OutboxMessage, OutboxStatus, utcnow

    rows = list(db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.topic == "bridge.status", OutboxMessage.status != OutboxStatus.DONE)
        .order_by(OutboxMessage.id).limit(limit)))
    for row in rows:
        click.echo(f"#{row.id}  {row.status:<8} {row.ordering_key}  {row.payload.get('action')} -> "
                   f"{row.payload.get('state')}  attempts={row.attempts}  {row.last_error or ''}"[:200])
    if retry_failed:
        failed = [r for r in rows if r.status == OutboxStatus.FAILED]
        for row in failed:
            row.status, row.attempts, row.available_at = OutboxStatus.PENDING, 0, utcnow()
        db.session.commit()
        click.echo(f"{len(failed)} failed post(s) back to pending; the sweeper sends them in order")
    if not rows:
        click.echo("nothing waiting")


@bridge_cli.command("simulate")
@click.option("--url", default="http://127.0.0.1:5000", show_default=True, help="The running backend.")
@click.option("--rate", default=5.0, show_default=True, help="Scenarios started per second.")
@click.option("--duration", default=10.0, show_default=True, help="Seconds to run (at most 600).")
@click.option("--mix", default=None, help="Weights, e.g. new=35,update=15,call=30,lookup=10,duplicate=6,late=3,malformed=1")
@click.option("--workers", default=8, show_default=True, help="Concurrent requests.")
@click.option("--secret", default=None, help="Signing secret (default: this app's BRIDGE_SECRET).")
@click.option("--seed", default=None, type=int, help="Random seed, for a repeatable run.")
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback URL.")
@with_appcontext
def simulate(url, rate, duration, mix, workers, secret, seed, allow_remote) -> None:
    """Play a realistic phone-system load (Chinese tickets, updates, calls with post-call IVR ratings, duplicates, late and bad payloads)."""
    from app.bridge.simulate import PhoneSystem, is_loopback, parse_mix, run
    from app.models import Household, Role, Staff

    if not allow_remote and not is_loopback(url):
        raise click.ClickException(f"{url} is not a loopback address; pass --allow-remote to load it anyway")
    if not 0 < rate <= 500 or not 0 < duration <= 600:
        raise click.ClickException("rate must be in (0, 500] and duration in (0, 600]")
    try:
        weights = parse_mix(mix)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--mix") from exc
    # Realistic callers: phones and account numbers of this database's households, if any.
    callers = [(p, a) for p, a in db.session.execute(
        select(Household.owner_phone, Household.account_no).where(Household.owner_phone.is_not(None)).limit(500))]
    assignees = list(db.session.scalars(select(Staff.username).where(
        Staff.role.in_((Role.CREW_MEMBER, Role.CREW_LEAD)), Staff.active.is_(True)).limit(20)))
    db.session.remove()
    system = PhoneSystem(url, secret or current_app.config["BRIDGE_SECRET"], callers=callers,
                         assignees=assignees, seed=seed)
    click.echo(f"simulating the phone system against {url}: {rate}/s for {duration} s, mix {weights}")
    report = run(system, rate=rate, duration=duration, mix=weights, workers=workers)
    for line in report.lines():
        click.echo(line)
