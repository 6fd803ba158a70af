"""The transactional outbox (DESIGN §5).

A state change that must notify someone calls :func:`record` inside the same database
transaction, so the change and the promise to tell someone commit or roll back together.
After a successful commit the new rows are handed to RQ (best effort); if Redis is down the
rows stay ``pending`` and the sweeper job enqueues them once Redis is back.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import datetime, timedelta

from flask import Flask, current_app, has_app_context
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from app.dbutil import insert_or_skip
from app.extensions import db
from app.models import OutboxMessage, OutboxStatus, utcnow
from app.queue import enqueue_each

log = logging.getLogger(__name__)

DELIVER_JOB = "jobs.outbox.deliver_outbox_message"
_NEW_KEY = "outbox_new_ids"


def record(topic: str, payload: dict, *, dedupe_key: str, ordering_key: str | None = None,
           session: Session | None = None) -> int | None:
    """Add an outbox row to the current transaction (nothing is sent before commit); its id.

    ``dedupe_key`` makes the promise idempotent: recording the same notification twice in
    retried code leaves one row (INSERT ... ON CONFLICT DO NOTHING on its unique key; the
    second call answers the first row's id). One statement per new row, no ORM object: this
    runs for every ticket change. Inside :func:`collect` the row is only noted (None is
    answered) and written with the others when the block ends.
    """
    session = session or db.session
    collected = session.info.get(_COLLECT_KEY)
    if collected is not None:  # inside collect(): written with the others at its end
        collected.setdefault(dedupe_key, {"topic": topic, "payload": payload, "dedupe_key": dedupe_key,
                                          "ordering_key": ordering_key})
        return None
    table = OutboxMessage.__table__
    new_id = session.execute(
        insert_or_skip(table, conflict=["dedupe_key"])
        .values(topic=topic, payload=payload, dedupe_key=dedupe_key, ordering_key=ordering_key)
        .returning(table.c.id)).scalar()
    if new_id is None:
        return session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key))
    session.info.setdefault(_NEW_KEY, []).append(new_id)
    return new_id


_COLLECT_KEY = "outbox_collected"


@contextmanager
def collect(session: Session | None = None):
    """Write the promises recorded inside the block in one statement when it ends:
    ``INSERT ... VALUES (...), (...) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id``, in the
    order recorded (a repeated ``dedupe_key`` is one row). Nested blocks join the outer one.
    An exception leaves nothing written (the caller's transaction rolls back anyway).
    """
    session = session or db.session
    if _COLLECT_KEY in session.info:
        yield
        return
    rows: dict = {}
    session.info[_COLLECT_KEY] = rows
    try:
        yield
    finally:
        session.info.pop(_COLLECT_KEY, None)
    if not rows:
        return
    table = OutboxMessage.__table__
    now = utcnow()
    values = [{**row, "status": OutboxStatus.PENDING, "attempts": 0, "available_at": now, "created_at": now}
              for row in rows.values()]
    # Parameters apart from the statement (SQLAlchemy's "insertmanyvalues": still one INSERT
    # with a VALUES row each), so the statement is compiled once per process, not per call.
    new_ids = session.execute(insert_or_skip(table, conflict=["dedupe_key"]).returning(table.c.id),
                              values).scalars().all()
    session.info.setdefault(_NEW_KEY, []).extend(sorted(new_ids))


def pending_ready(limit: int, *, older_than: timedelta = timedelta(0), now: datetime | None = None) -> list[OutboxMessage]:
    """Pending rows whose time has come, oldest first."""
    now = now or utcnow()
    return list(db.session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.PENDING,
               OutboxMessage.available_at <= now - older_than)
        .order_by(OutboxMessage.id)
        .limit(limit)
    ))


def mark_enqueued(ids: list[int]) -> None:
    if ids:
        db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids), OutboxMessage.status == OutboxStatus.PENDING)
            .values(status=OutboxStatus.ENQUEUED, enqueued_at=utcnow())
        )


_installed = False


def install_after_commit_dispatch(app: Flask) -> None:
    """After each successful commit, enqueue a delivery job per new outbox row.

    Listeners are registered once per process (several test apps share the Session class).
    """
    global _installed
    if _installed:
        return
    _installed = True

    @event.listens_for(Session, "after_commit")
    def _dispatch(session):
        ids = session.info.pop(_NEW_KEY, None)
        if not ids or not has_app_context() or not current_app.config["OUTBOX_DISPATCH_ON_COMMIT"]:
            return
        try:
            enqueue_each(DELIVER_JOB, [(outbox_id,) for outbox_id in ids], queue="notify",
                         job_ids=[f"outbox-{outbox_id}" for outbox_id in ids])
        except Exception:  # Redis down: the rows stay pending and the sweeper enqueues them later
            log.warning("outbox: could not enqueue %s now; left pending for the sweeper", ids, exc_info=True)

    @event.listens_for(Session, "after_rollback")
    def _forget(session):
        session.info.pop(_NEW_KEY, None)
