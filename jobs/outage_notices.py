"""Outage notices (停热通知): each change of an outage reaches the bound residents of the
affected households, once per person per change.

The "notify.outage" outbox row (written by app.services.outages with the change) is turned
into an announcement of category ``outage`` whose delivery rows are every bound resident of
the households the outage touches now; the broadcast jobs send it (batches, rate limit,
45009 halt and resume, progress for staff). An ``outage_notice`` row, unique per outbox row,
is inserted in the same transaction, so a re-delivered outbox row never creates a second
announcement: it only re-dispatches the first.
"""
from __future__ import annotations

import logging

from sqlalchemy import select

from app.clock import local_now
from app.dbutil import insert_or_skip
from app.extensions import db
from app.models import (
    Announcement, AnnouncementStatus, Audience, HouseholdBinding, Outage, OutageKind, OutageNotice, utcnow,
)
from app.services import announcements as svc
from app.services import outage_linking
from app.services import outages as outage_service
from app.services.outages import affected_household_ids
from jobs import broadcast

log = logging.getLogger(__name__)

HEADLINES = {
    "created": "停热通知",
    "updated": "停热信息变更",
    "started": "停热开始",
    "restored": "恢复供热通知",
    "cancelled": "停热取消通知",
}


def _local(dt) -> str:
    return local_now(dt).strftime("%m月%d日 %H:%M") if dt else "待定"


def _text(outage: Outage, change: str) -> tuple[str, str]:
    kind = OutageKind.LABELS.get(outage.kind, "停热")
    head = HEADLINES.get(change, "停热通知")
    title = f"{head}：{outage.title}"[:100]
    scope = outage_service.area_text(outage)
    if change == "restored":
        body = f"{scope}已于{_local(outage.actual_end_at)}恢复供热。如家中仍不热，请报修。"
    elif change == "cancelled":
        body = f"原定{_local(outage.starts_at)}开始的{kind}（{scope}）已取消，供热照常。"
    elif change == "started":
        body = (f"{scope}{kind}已开始，原因：{outage.reason}；预计{_local(outage.expected_end_at)}恢复供热。")
    else:
        body = (f"{kind}（{scope}）：{_local(outage.starts_at)}开始，预计{_local(outage.expected_end_at)}恢复。"
                f"原因：{outage.reason}")
    return title, body


def notify_outage(payload: dict, outbox_id: int) -> None:
    """Outbox handler of "notify.outage" (payload: outage_id, change)."""
    existing = db.session.scalar(select(OutageNotice).where(OutageNotice.outbox_id == outbox_id))
    if existing is None:
        outage = db.session.get(Outage, payload["outage_id"])
        if outage is None:
            return
        change = payload.get("change", "updated")
        title, body = _text(outage, change)
        now = utcnow()
        ann = Announcement(title=title, body=body, category="outage", audience=Audience.AREA,
                           audience_filter=_filter(outage), outage_id=outage.id,
                           status=AnnouncementStatus.SENDING, started_at=now)
        db.session.add(ann)
        db.session.flush()
        inserted = db.session.execute(
            insert_or_skip(OutageNotice.__table__, conflict=["outbox_id"]).values(
                outbox_id=outbox_id, outage_id=outage.id, change=change, announcement_id=ann.id,
                created_at=now).returning(OutageNotice.__table__.c.id)).first()
        if inserted is None:  # a concurrent run got here first
            db.session.rollback()
            existing = db.session.scalar(select(OutageNotice).where(OutageNotice.outbox_id == outbox_id))
        else:
            count = svc.insert_deliveries(ann.id, _bound_users(outage))
            db.session.commit()
            log.info("outage %s %s: %d resident(s) to notify (announcement %s)", outage.id, change, count, ann.id)
            ann_id = ann.id
    if existing is not None:
        ann_id = existing.announcement_id
    if svc.finish_if_done(ann_id):
        db.session.commit()
        return
    broadcast.dispatch(ann_id)


def _filter(outage: Outage) -> dict:
    return {
        "station_ids": [a.station_id for a in outage.areas if a.station_id],
        "community_ids": [a.community_id for a in outage.areas if a.community_id and not a.building],
        "buildings": [{"community_id": a.community_id, "building": a.building}
                      for a in outage.areas if a.community_id and a.building],
    }


def _bound_users(outage: Outage):
    return (select(HouseholdBinding.wechat_user_id).distinct()
            .where(HouseholdBinding.household_id.in_(affected_household_ids(outage))))


def start_due_outages() -> int:
    """Cron: scheduled outages whose start has come become active (and notify "started")."""
    started = outage_service.start_due_outages()
    db.session.commit()
    return len(started)


def close_unconfirmed_reports(now=None) -> int:
    """Cron: after the "still cold" window of a restored outage, close its remaining linked
    reports (the phone system is told through the ticket service's bridge.status rows)."""
    closed = outage_linking.close_unconfirmed(now=now)
    db.session.commit()
    if closed:
        log.info("closed %d report(s) linked to restored outages", closed)
    return closed
