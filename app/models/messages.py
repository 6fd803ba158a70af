"""WeChat message log: inbound messages (deduplicated) and outbound sends with results."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import UTCDateTime, utcnow


class InboundMessage(db.Model):
    __tablename__ = "inbound_message"
    id: Mapped[int] = mapped_column(primary_key=True)
    # MsgId for messages, "<FromUserName>:<CreateTime>" for events: WeChat's retries collide here.
    dedupe_key: Mapped[str] = mapped_column(String(100), unique=True)
    openid: Mapped[str] = mapped_column(String(64), index=True)
    msg_type: Mapped[str] = mapped_column(String(20))
    event: Mapped[str | None] = mapped_column(String(40))
    content: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class OutboundStatus:
    """Life of one notification (its ``dedupe_key``).

    pending → sending (committed, with the channel, right before WeChat is called) → sent |
    failed | skipped | unknown. ``unknown``: the call was made but its answer never came back
    (the process died, or WeChat timed out) on a channel WeChat does not deduplicate
    (customer-service or subscribe message), so sending it again could make it arrive twice;
    staff see it and may resend it, which turns it into ``resent``.
    """

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNKNOWN = "unknown"
    RESENT = "resent"
    FINAL = (SENT, FAILED, SKIPPED, UNKNOWN, RESENT)


class OutboundMessage(db.Model):
    __tablename__ = "outbound_message"
    id: Mapped[int] = mapped_column(primary_key=True)
    # One notification is sent at most once: the sender claims this key first.
    dedupe_key: Mapped[str] = mapped_column(String(120), unique=True)
    wechat_user_id: Mapped[int | None] = mapped_column(ForeignKey("wechat_user.id"), index=True)
    openid: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(20))  # subscribe | template | custom
    payload: Mapped[dict | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(12), default="pending", index=True)  # OutboundStatus
    errcode: Mapped[int | None] = mapped_column(Integer)
    errmsg: Mapped[str | None] = mapped_column(String(300))
    # Template msgid, matched by the TEMPLATESENDJOBFINISH event WeChat posts back.
    wechat_msgid: Mapped[str | None] = mapped_column(String(40), index=True)
    delivered: Mapped[str | None] = mapped_column(String(40))  # the event's Status
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the call whose answer we may not have started (set with status "sending"); a
    # template message is re-sent with its client_msg_id only while WeChat still dedupes it.
    sending_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
