"""Bookkeeping of the background jobs: what was already sent, so nothing goes out twice.

- ``ReminderSent``: one row per (ticket, deadline, level) of the reminder ladder
  (限时提醒及催办), inserted in the same transaction as the outbox rows that send it.
- ``ArrearsReminder``: one row per (person, ISO week) of the arrears campaign (催缴).
- ``OutageNotice``: one row per outage change ("notify.outage" outbox row); it points at the
  announcement (category ``outage``) whose delivery rows carry the fan-out, so an outage
  notice is a broadcast like any other (same batching, rate limit, progress and halt).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import UTCDateTime, utcnow


class ReminderLevel:
    BEFORE = "before"      # lead time before the deadline: the assignee
    DUE = "due"            # at the deadline: the assignee and the crew lead
    OVERDUE = "overdue"    # past it by the escalation margin: the leader on duty
    ALL = (BEFORE, DUE, OVERDUE)


class ReminderSent(db.Model):
    __tablename__ = "reminder_sent"
    __table_args__ = (UniqueConstraint("ticket_id", "deadline", "level"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    deadline: Mapped[str] = mapped_column(String(12))        # respond_by | finish_by
    level: Mapped[str] = mapped_column(String(10))           # before | due | overdue
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ArrearsReminder(db.Model):
    __tablename__ = "arrears_reminder"
    __table_args__ = (UniqueConstraint("wechat_user_id", "iso_week"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    wechat_user_id: Mapped[int] = mapped_column(ForeignKey("wechat_user.id"))
    iso_week: Mapped[str] = mapped_column(String(8))          # "2026-W48", Beijing calendar
    announcement_id: Mapped[int] = mapped_column(ForeignKey("announcement.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutageNotice(db.Model):
    __tablename__ = "outage_notice"
    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int] = mapped_column(Integer, unique=True)   # the "notify.outage" row
    outage_id: Mapped[int] = mapped_column(ForeignKey("outage.id"), index=True)
    change: Mapped[str] = mapped_column(String(12))   # created | updated | started | restored | cancelled
    announcement_id: Mapped[int] = mapped_column(ForeignKey("announcement.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
