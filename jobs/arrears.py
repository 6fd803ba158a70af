"""The arrears campaign (催缴): residents with bills past due get a reminder with a link to
pay, at most once a week per person.

``run_arrears_campaign`` (cron, hourly; it only sends between ``ARREARS_SEND_HOURS``, 9–20
Beijing time by default) creates one announcement of category ``arrears`` and, in the same
transaction, one ``arrears_reminder`` row per person for this ISO week (unique, ``INSERT …
SELECT … ON CONFLICT DO NOTHING``) and a delivery row for exactly those who got a new row.
Whoever was reminded earlier this week gets no row, so a person hears from the campaign at
most once a week however often it runs; someone whose bill falls due mid-week is reminded at
the next run. The broadcast jobs send it (batches, rate limit, 45009 halt and resume).
"""
from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app
from sqlalchemy import func, literal, select

from app.clock import local_day, local_now
from app.dbutil import insert_or_skip
from app.extensions import db
from app.models import Announcement, AnnouncementStatus, ArrearsReminder, Audience, utcnow
from app.services import announcements as svc
from jobs import broadcast

log = logging.getLogger(__name__)

TITLE = "供热费缴费提醒"
BODY = ("您绑定的房屋有供热费已过缴费期限尚未缴清，逾期将按日加收滞纳金。"
        "请点击进入在线缴费，如已缴纳请忽略本消息。")


def iso_week(now: datetime) -> str:
    year, week, _ = local_now(now).isocalendar()
    return f"{year}-W{week:02d}"


def _in_hours(now: datetime) -> bool:
    first, last = current_app.config["ARREARS_SEND_HOURS"]
    return first <= local_now(now).hour <= last


def run_arrears_campaign(now: datetime | None = None, *, force_hours: bool = False) -> int | None:
    """Remind this week's not-yet-reminded residents in arrears; returns the announcement id."""
    now = now or utcnow()
    if not force_hours and not _in_hours(now):
        return None
    week = iso_week(now)
    today = local_day(now)
    ann = Announcement(title=TITLE, body=BODY, category="arrears", audience=Audience.ARREARS,
                       status=AnnouncementStatus.SENDING, started_at=now)
    db.session.add(ann)
    db.session.flush()
    users = svc.audience_user_ids(Audience.ARREARS, today=today).subquery()
    rows = select(users.c[0], literal(week), literal(ann.id), literal(now, ArrearsReminder.created_at.type)) \
        .where(users.c[0].isnot(None))
    db.session.execute(insert_or_skip(ArrearsReminder.__table__, conflict=["wechat_user_id", "iso_week"])
                       .from_select(["wechat_user_id", "iso_week", "announcement_id", "created_at"], rows))
    fresh = select(ArrearsReminder.wechat_user_id).where(ArrearsReminder.announcement_id == ann.id)
    count = svc.insert_deliveries(ann.id, fresh)
    if not count:
        db.session.rollback()  # everyone in arrears was reminded this week already
        return None
    db.session.commit()
    log.info("arrears campaign %s: %d resident(s) (announcement %s)", week, count, ann.id)
    broadcast.dispatch(ann.id)
    return ann.id


def reminded_this_week(now: datetime | None = None) -> int:
    week = iso_week(now or utcnow())
    return db.session.scalar(select(func.count()).where(ArrearsReminder.iso_week == week)) or 0
