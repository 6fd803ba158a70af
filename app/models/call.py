"""Phone calls seen by the call center (来电记录) and call-back tasks for missed calls."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.household import Household
from app.models.staff import Staff
from app.models.types import UTCDateTime, utcnow


class CallStatus:
    RINGING = "ringing"
    ANSWERED = "answered"
    HANGUP = "hangup"
    MISSED = "missed"
    ALL = (RINGING, ANSWERED, HANGUP, MISSED)
    LABELS = {RINGING: "振铃", ANSWERED: "已接听", HANGUP: "已挂断", MISSED: "未接"}


class CallLog(db.Model):
    """One phone call, identified by the phone system's call id; its events update it.

    ``started_at`` is indexed for the dashboard's "calls today" counts.
    """

    __tablename__ = "call_log"
    __table_args__ = (
        Index("ix_call_log_status_started_at", "status", "started_at"),
        CheckConstraint("rating IS NULL OR (rating BETWEEN 1 AND 5)", name="call_rating_range"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64), unique=True)
    caller_phone: Mapped[str] = mapped_column(String(20), index=True)
    agent: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(12), default=CallStatus.RINGING)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_s: Mapped[int | None] = mapped_column(Integer)
    recording_url: Mapped[str | None] = mapped_column(String(500))
    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"), index=True)
    # Time of the newest event applied to ``status`` (events may arrive out of order).
    last_event_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The caller's post-call IVR rating (1–5, POST /bridge/v1/ratings); once per call.
    rating: Mapped[int | None] = mapped_column(Integer)
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # True when that rating also became the (closed, unrated) ticket's rating: reports count it once.
    rating_on_ticket: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    household: Mapped[Household | None] = relationship()


class CallbackState:
    OPEN = "open"
    DONE = "done"
    ALL = (OPEN, DONE)
    LABELS = {OPEN: "待回拨", DONE: "已回拨"}


class CallbackTask(db.Model):
    """A missed call outside working hours: customer service calls the person back."""

    __tablename__ = "callback_task"
    __table_args__ = (Index("ix_callback_task_state_missed_at", "state", "missed_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    call_log_id: Mapped[int] = mapped_column(ForeignKey("call_log.id"), unique=True)
    caller_phone: Mapped[str] = mapped_column(String(20), index=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id"), index=True)
    missed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(8), default=CallbackState.OPEN)
    done_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    call: Mapped[CallLog] = relationship()
    done_by: Mapped[Staff | None] = relationship()
