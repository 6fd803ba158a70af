"""回访任务: a follow-up call customer service owes a resident (e.g. after a rating of 2 or less)
of a ticket or of a live-chat conversation."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.chat import Conversation
from app.models.staff import Staff
from app.models.ticket import Ticket
from app.models.types import UTCDateTime, utcnow


class FollowUpState:
    OPEN = "open"
    DONE = "done"
    ALL = (OPEN, DONE)
    LABELS = {OPEN: "待回访", DONE: "已回访"}


class FollowUpReason:
    LOW_RATING = "low_rating"
    ALL = (LOW_RATING,)
    LABELS = {LOW_RATING: "低分评价"}


class FollowUpTask(db.Model):
    """One follow-up call on one ticket — or one conversation — for one reason; done when the
    visit is recorded."""

    __tablename__ = "follow_up_task"
    __table_args__ = (
        UniqueConstraint("ticket_id", "reason"),
        UniqueConstraint("conversation_id", "reason"),
        CheckConstraint("(ticket_id IS NULL) <> (conversation_id IS NULL)", name="ticket_or_conversation"),
        Index("ix_follow_up_task_state_created_at", "state", "created_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id"), index=True)
    reason: Mapped[str] = mapped_column(String(20), default=FollowUpReason.LOW_RATING)
    rating: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(8), default=FollowUpState.OPEN)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[str | None] = mapped_column(Text)

    ticket: Mapped[Ticket | None] = relationship()
    conversation: Mapped[Conversation | None] = relationship()
    done_by: Mapped[Staff | None] = relationship()
