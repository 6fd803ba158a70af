"""Live chat (会话): one conversation per resident with an agent, and its messages.

A resident has at most one open conversation (waiting or active) at a time: a partial unique
index on ``wechat_user_id`` where the status is not closed, on SQLite and PostgreSQL alike,
so two 人工 arriving at once cannot open two.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.household import Household
from app.models.staff import Staff
from app.models.types import UTCDateTime, utcnow
from app.models.wechat_user import WechatUser


class ConversationStatus:
    WAITING = "waiting"   # in the queue, no agent yet
    ACTIVE = "active"     # an agent took it
    CLOSED = "closed"
    ALL = (WAITING, ACTIVE, CLOSED)
    OPEN = (WAITING, ACTIVE)
    LABELS = {WAITING: "排队中", ACTIVE: "会话中", CLOSED: "已结束"}


OPEN_WHERE = text("status != 'closed'")


class Conversation(db.Model):
    __tablename__ = "conversation"
    __table_args__ = (
        # One open conversation per person (partial unique index, SQLite and PostgreSQL).
        Index("uq_conversation_open_user", "wechat_user_id", unique=True,
              sqlite_where=OPEN_WHERE, postgresql_where=OPEN_WHERE),
        Index("ix_conversation_status_opened_at", "status", "opened_at"),
        Index("ix_conversation_agent_status", "agent_id", "status"),
        CheckConstraint("rating IS NULL OR (rating BETWEEN 1 AND 5)", name="rating_range"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    wechat_user_id: Mapped[int] = mapped_column(ForeignKey("wechat_user.id"), index=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id"), index=True)
    status: Mapped[str] = mapped_column(String(10), default=ConversationStatus.WAITING)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)          # taken from the queue
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)   # first agent message
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(10))                # resident | staff
    # The resident's last message: WeChat's 48-hour customer-service window runs from here.
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Opened outside SERVICE_HOURS: staff call the resident back (cleared when done).
    callback_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    callback_done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    callback_done_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    rating: Mapped[int | None] = mapped_column(Integer)
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"))    # 转为工单

    user: Mapped[WechatUser] = relationship()
    household: Mapped[Household | None] = relationship()
    agent: Mapped[Staff | None] = relationship(foreign_keys=[agent_id])
    messages: Mapped[list["ConversationMessage"]] = relationship(
        back_populates="conversation", order_by="ConversationMessage.id", cascade="all, delete-orphan")

    @property
    def is_open(self) -> bool:
        return self.status in ConversationStatus.OPEN


class MessageDirection:
    IN = "in"     # from the resident
    OUT = "out"   # to the resident (an agent, or the system's automatic words)


class ChatSendStatus:
    """An outbound message: pending → sending → sent | failed | unknown. Inbound: received."""

    RECEIVED = "received"
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"    # the call was made, its answer lost: it may have arrived
    LABELS = {RECEIVED: "已收到", PENDING: "待发送", SENDING: "发送中", SENT: "已发送", FAILED: "发送失败",
              UNKNOWN: "结果未知"}
    RETRYABLE = (FAILED, UNKNOWN)


class ConversationMessage(db.Model):
    __tablename__ = "conversation_message"
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"), index=True)
    direction: Mapped[str] = mapped_column(String(4))
    text: Mapped[str | None] = mapped_column(Text)
    # An image: WeChat's media id (inbound: until fetched; outbound: once uploaded) and the
    # stored file under UPLOAD_DIR (app/services/uploads.py).
    media_id: Mapped[str | None] = mapped_column(String(128))
    image_path: Mapped[str | None] = mapped_column(String(300))
    content_type: Mapped[str | None] = mapped_column(String(40))
    sender_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    # The resident's MsgId: a WeChat retry of the same message has one effect.
    wechat_msgid: Mapped[str | None] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(10), default=ChatSendStatus.RECEIVED)
    channel: Mapped[str | None] = mapped_column(String(10))   # passive | custom
    errcode: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(300))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")
    sender: Mapped[Staff | None] = relationship()
