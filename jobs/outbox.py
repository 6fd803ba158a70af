"""Deliver transactional-outbox rows (DESIGN §5).

The after-commit hook enqueues ``deliver_outbox_message`` for each new row; the sweeper
(run by cron) enqueues rows that were never handed to RQ — Redis was down at commit time,
or a worker died holding them. Each topic has one handler; a row is marked done only after
its handler returned, and a handler must itself be idempotent (delivery is at least once).
"""
from __future__ import annotations

import importlib
import logging
from datetime import timedelta

from sqlalchemy import select, update

from app.extensions import db
from app.models import OutboxMessage, OutboxStatus, utcnow
from app.queue import Deferred, enqueue
from app.services import outbox

log = logging.getLogger(__name__)

# topic (or topic prefix) -> dotted path of ``handler(payload: dict, outbox_id: int) -> None``.
# Topics without a handler stay pending until one is registered (they are never dropped):
# "notify.outage" gets its fan-out with the broadcast jobs, "bridge.status" with the bridge.
HANDLERS: dict[str, str] = {
    "notify.task_assigned": "jobs.notify.task_assigned",
    "notify.emergency_alert": "jobs.notify.emergency_alert",
    "notify.ticket_updated": "jobs.notify.ticket_updated",
    "bridge.status": "jobs.bridge.post_status",
    "notify.outage": "jobs.outage_notices.notify_outage",
    "notify.deadline_reminder": "jobs.reminders.send_deadline_reminder",
    "broadcast.start": "jobs.broadcast.start_announcement",
    "notify.outage_restored": "jobs.notify.outage_restored",
    "notify.cluster_alert": "jobs.notify.cluster_alert",
    "pay.refund": "jobs.refunds.submit_refund",
    "notify.payment_paid": "jobs.pay_notices.payment_paid",
    "notify.refund": "jobs.pay_notices.refund_result",
    "notify.resend": "jobs.notify.resend_notice",
    "chat.send": "jobs.chat.send_chat_message",
    "notify.chat_invite": "jobs.chat.chat_invite",
    "notify.ticket_change": "jobs.resident_pushes.push_ticket_change",
    "notify.low_rating": "jobs.resident_pushes.low_rating_alert",
    "media.ticket_photo": "jobs.media.fetch_promised_photo",
    "media.chat_image": "jobs.chat.fetch_promised_image",
}
MAX_ATTEMPTS = 10  # then the row is marked failed, for a person to see

SWEEP_GRACE = timedelta(seconds=30)     # let the after-commit enqueue go first
STUCK_AFTER = timedelta(minutes=15)     # an enqueued row not done by then is swept again


def handler_for(topic: str):
    for prefix, path in HANDLERS.items():
        if topic == prefix or topic.startswith(prefix + "."):
            module, _, name = path.rpartition(".")
            return getattr(importlib.import_module(module), name)
    return None


def deliver_outbox_message(outbox_id: int) -> str:
    msg = db.session.get(OutboxMessage, outbox_id)
    if msg is None:
        return "missing"
    if msg.status == OutboxStatus.DONE:
        return "already done"
    handler = handler_for(msg.topic)
    if handler is None:
        return "no handler yet"
    msg.attempts += 1
    db.session.commit()
    try:
        handler(dict(msg.payload), outbox_id)
    except Deferred as exc:
        # WeChat said "not now" (per-minute limit, daily quota): park the row until then;
        # the sweeper picks it up at that time. No hot retry loop.
        db.session.rollback()
        db.session.execute(update(OutboxMessage).where(OutboxMessage.id == outbox_id).values(
            status=OutboxStatus.PENDING, available_at=exc.until, last_error=exc.reason))
        db.session.commit()
        return "deferred"
    except Exception as exc:
        db.session.rollback()
        values = {"last_error": f"{type(exc).__name__}: {exc}"[:2000]}
        if msg.attempts >= MAX_ATTEMPTS:
            values["status"] = OutboxStatus.FAILED
        db.session.execute(update(OutboxMessage).where(OutboxMessage.id == outbox_id).values(**values))
        db.session.commit()
        raise  # RQ records the failure and retries with backoff
    db.session.execute(update(OutboxMessage).where(OutboxMessage.id == outbox_id)
                       .values(status=OutboxStatus.DONE, done_at=utcnow(), last_error=None))
    db.session.commit()
    return "done"


def sweep_outbox(batch: int | None = None) -> int:
    """Enqueue pending rows with a handler; put back rows stuck in ``enqueued``."""
    from flask import current_app

    batch = batch or current_app.config.get("OUTBOX_BATCH", 200)
    now = utcnow()
    db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.ENQUEUED, OutboxMessage.enqueued_at < now - STUCK_AFTER)
        .values(status=OutboxStatus.PENDING)
    )
    db.session.commit()
    rows = [m for m in outbox.pending_ready(batch, older_than=SWEEP_GRACE, now=now) if handler_for(m.topic)]
    for msg in rows:
        enqueue("jobs.outbox.deliver_outbox_message", msg.id, queue="notify", job_id=f"outbox-{msg.id}")
    outbox.mark_enqueued([m.id for m in rows])
    db.session.commit()
    if rows:
        log.info("outbox sweeper enqueued %d message(s)", len(rows))
    return len(rows)


def pending_counts() -> dict[str, int]:
    from sqlalchemy import func

    return dict(db.session.execute(
        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all())
