"""Announcements (公告) and one delivery row per recipient, so progress is visible."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.types import UTCDateTime, utcnow


class Audience:
    ALL = "all"          # every bound resident / follower
    AREA = "area"        # stations, communities, buildings (filter JSON)
    ARREARS = "arrears"  # residents with unpaid bills past due
    KINDS = (ALL, AREA, ARREARS)
    LABELS = {ALL: "全部用户", AREA: "指定区域", ARREARS: "欠费用户"}


class AnnouncementStatus:
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    HALTED = "halted"        # e.g. the day's WeChat quota is spent; resumes after reset
    DONE = "done"
    CANCELLED = "cancelled"
    ALL = (DRAFT, SCHEDULED, SENDING, PAUSED, HALTED, DONE, CANCELLED)


class Announcement(db.Model):
    __tablename__ = "announcement"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(20), default="notice")  # notice | outage | arrears
    audience: Mapped[str] = mapped_column(String(12), default=Audience.ALL)
    audience_filter: Mapped[dict | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(12), default=AnnouncementStatus.DRAFT, index=True)
    status_reason: Mapped[str | None] = mapped_column(String(200))
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outage_id: Mapped[int | None] = mapped_column(ForeignKey("outage.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    deliveries: Mapped[list["Delivery"]] = relationship(back_populates="announcement", lazy="dynamic")


class DeliveryStatus:
    PENDING = "pending"
    SENDING = "sending"      # its chunk is at WeChat now (or its worker died there)
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNKNOWN = "unknown"      # sent over a channel WeChat does not dedupe, answer lost: staff decide
    ALL = (PENDING, SENDING, SENT, FAILED, SKIPPED, UNKNOWN)
    OPEN = (PENDING, SENDING)  # the broadcast still has work for these


class Delivery(db.Model):
    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("announcement_id", "wechat_user_id"),
        Index("ix_delivery_announcement_status", "announcement_id", "status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    announcement_id: Mapped[int] = mapped_column(ForeignKey("announcement.id"))
    wechat_user_id: Mapped[int] = mapped_column(ForeignKey("wechat_user.id"), index=True)
    status: Mapped[str] = mapped_column(String(10), default=DeliveryStatus.PENDING)
    channel: Mapped[str | None] = mapped_column(String(20))   # subscribe | template | custom
    errcode: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(200))
    wechat_msgid: Mapped[str | None] = mapped_column(String(40), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Times staff resent it after an unknown outcome; part of the notice key, so a resend
    # is a new notification, sent once.
    resends: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    announcement: Mapped[Announcement] = relationship(back_populates="deliveries")
