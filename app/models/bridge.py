"""Phone-system bridge: processed events (idempotency) and dead letters (kept for replay)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import UTCDateTime, utcnow


class BridgeEvent(db.Model):
    __tablename__ = "bridge_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(12))  # ticket | call
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"))
    # The answer given the first time; a repeat gets exactly this again.
    response_status: Mapped[int] = mapped_column(Integer, default=200)
    response: Mapped[dict | None] = mapped_column(JSON)
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BridgeDeadLetter(db.Model):
    __tablename__ = "bridge_dead_letter"
    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(40))
    raw_body: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    replayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replay_result: Mapped[str | None] = mapped_column(Text)
