"""Transactional outbox: side effects recorded with the state change, dispatched after commit."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import UTCDateTime, utcnow


class OutboxStatus:
    PENDING = "pending"        # written with the change; not yet handed to the queue
    ENQUEUED = "enqueued"      # a job holds it
    DONE = "done"
    FAILED = "failed"          # given up; kept for a person to see
    ALL = (PENDING, ENQUEUED, DONE, FAILED)


class OutboxMessage(db.Model):
    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_status_available", "status", "available_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    topic: Mapped[str] = mapped_column(String(40))      # e.g. "notify.ticket_assigned", "bridge.status"
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    # Messages with the same ordering key are delivered in id order (e.g. per ticket).
    ordering_key: Mapped[str | None] = mapped_column(String(60), index=True)
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
