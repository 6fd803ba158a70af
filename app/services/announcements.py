"""Announcements (公告): compose, schedule, start, pause, resume, cancel, progress.

The staff console calls these; the broadcast jobs (jobs/broadcast.py) do the sending. An
announcement's audience is resolved when it starts sending, by one ``INSERT … SELECT``
into ``delivery`` (one row per recipient, unique per announcement and person), so memory
does not grow with the audience. Delivery rows are the durable state of a broadcast:
pending → sending (its chunk is at WeChat) → sent | failed (WeChat's errcode) | skipped
(reason) | unknown (the answer was lost on a channel WeChat does not deduplicate: staff see
these people and may resend to them, ``resend_unknown``).

Starting or resuming records an outbox row ("broadcast.start") in the caller's transaction,
so a start never gets lost when Redis is down; the job picks it up after the commit. Like
every service here, these functions flush but never commit: the caller commits once.

Audience filters:
- ``all``: every WeChat user bound to at least one household;
- ``area``: ``{"station_ids": [..], "community_ids": [..], "buildings": [{"community_id", "building"}]}``
  — residents bound to a household in any of these;
- ``arrears``: residents bound to a household with an open bill past its season's due date.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import func, literal, select, update

from app.dbutil import insert_or_skip
from app.errors import InvalidTransitionError, NotFoundError, ValidationError
from app.extensions import db
from app.models import (
    Announcement, AnnouncementStatus, Audience, Bill, BillStatus, Delivery, DeliveryStatus, HeatingSeason,
    Household, HouseholdBinding, OutageArea, OutboundMessage, WechatUser, utcnow,
)
from app.models.messages import OutboundStatus
from app.services import outbox
from app.services.billing import local_today
from app.services.notices import BROADCAST_KEY_PREFIX
from app.services.outages import area_condition

S = AnnouncementStatus
START_TOPIC = "broadcast.start"
CATEGORIES = ("notice", "outage", "arrears")
CANCELLED_REASON = "公告已撤回，未发送"
CANCELLED_IN_FLIGHT_REASON = "撤回时正在发送，无法确认对方是否收到"


def delivery_key(announcement_id: int, user_id: int, resends: int = 0) -> str:
    """The notice key of one delivery (unique in ``outbound_message``): a resend by staff is
    a new notification, sent once."""
    key = f"{BROADCAST_KEY_PREFIX}{announcement_id}:user:{user_id}"
    return f"{key}:resend:{resends}" if resends else key


# --- audience ---------------------------------------------------------------------------------

def _area_parts(audience_filter: dict | None) -> list[OutageArea]:
    f = audience_filter or {}
    parts = [OutageArea(station_id=int(s)) for s in f.get("station_ids") or []]
    parts += [OutageArea(community_id=int(c)) for c in f.get("community_ids") or []]
    parts += [OutageArea(community_id=int(b["community_id"]), building=str(b["building"]))
              for b in f.get("buildings") or []]
    return parts


def _check_audience(audience: str, audience_filter: dict | None) -> None:
    if audience not in Audience.KINDS:
        raise ValidationError("发送对象有误", fields={"audience": [f"可选：{'、'.join(Audience.LABELS.values())}"]})
    if audience == Audience.AREA:
        try:
            parts = _area_parts(audience_filter)
        except (KeyError, TypeError, ValueError):
            parts = None
        if not parts:
            raise ValidationError("请选择发送区域", fields={"audience_filter": ["至少选择一个换热站、小区或楼栋"]})


def arrears_household_ids(today: date):
    """A SELECT of households with an open bill whose season's due date has passed."""
    return (select(Bill.household_id).join(HeatingSeason, Bill.season_id == HeatingSeason.id)
            .where(Bill.status.in_(BillStatus.OPEN), HeatingSeason.due_on < today,
                   Bill.amount_fen > Bill.paid_fen))


def audience_user_ids(audience: str, audience_filter: dict | None = None, *, today: date | None = None):
    """A SELECT of the distinct wechat_user ids an audience stands for (use as a subquery)."""
    q = select(HouseholdBinding.wechat_user_id).distinct()
    if audience == Audience.ALL:
        return q
    if audience == Audience.AREA:
        households = select(Household.id).where(area_condition(_area_parts(audience_filter)))
        return q.where(HouseholdBinding.household_id.in_(households))
    if audience == Audience.ARREARS:
        return q.where(HouseholdBinding.household_id.in_(arrears_household_ids(today or local_today())))
    raise ValueError(f"unknown audience {audience!r}")


def count_audience(audience: str, audience_filter: dict | None = None) -> int:
    """How many people an audience reaches now (for the console's preview)."""
    _check_audience(audience, audience_filter)
    sub = audience_user_ids(audience, audience_filter).subquery()
    return db.session.scalar(select(func.count()).select_from(sub)) or 0


def insert_deliveries(announcement_id: int, user_ids) -> int:
    """``INSERT INTO delivery … SELECT`` the given user-id query, skipping existing rows;
    returns how many recipients the announcement has now."""
    users = user_ids.subquery()
    rows = select(literal(announcement_id), users.c[0], literal(DeliveryStatus.PENDING), literal(0)) \
        .where(users.c[0].isnot(None))  # a WHERE keeps SQLite's INSERT … SELECT … ON CONFLICT unambiguous
    stmt = insert_or_skip(Delivery.__table__, conflict=["announcement_id", "wechat_user_id"]).from_select(
        ["announcement_id", "wechat_user_id", "status", "attempts"], rows)
    db.session.execute(stmt)
    # Counted afterwards (indexed): drivers disagree on rowcount for INSERT … SELECT.
    return db.session.scalar(select(func.count()).select_from(Delivery)
                             .where(Delivery.announcement_id == announcement_id)) or 0


def resolve_audience(announcement: Announcement, *, now: datetime | None = None) -> int:
    """Create the delivery rows of an announcement once (the audience as of its start)."""
    if announcement.started_at is not None:
        return 0
    created = insert_deliveries(announcement.id, audience_user_ids(announcement.audience, announcement.audience_filter))
    announcement.started_at = now or utcnow()
    db.session.flush()
    return created


# --- lifecycle --------------------------------------------------------------------------------

def get_announcement(announcement_id: int) -> Announcement:
    ann = db.session.get(Announcement, announcement_id)
    if ann is None:
        raise NotFoundError("公告不存在")
    return ann


def compose_announcement(*, title: str, body: str, audience: str = Audience.ALL,
                         audience_filter: dict | None = None, scheduled_at: datetime | None = None,
                         category: str = "notice", created_by_id: int | None = None,
                         outage_id: int | None = None, now: datetime | None = None) -> Announcement:
    """A draft, or a scheduled announcement when ``scheduled_at`` is given."""
    errors = {}
    if not (title or "").strip():
        errors["title"] = ["请填写标题"]
    elif len(title.strip()) > 100:
        errors["title"] = ["标题不能超过100字"]
    if not (body or "").strip():
        errors["body"] = ["请填写内容"]
    if category not in CATEGORIES:
        errors["category"] = ["公告类别有误"]
    if scheduled_at is not None and scheduled_at <= (now or utcnow()):
        errors["scheduled_at"] = ["定时发送时间须晚于当前时间"]
    if errors:
        raise ValidationError("公告信息有误", fields=errors)
    _check_audience(audience, audience_filter)
    ann = Announcement(title=title.strip(), body=body.strip(), category=category, audience=audience,
                       audience_filter=audience_filter, outage_id=outage_id, created_by_id=created_by_id,
                       scheduled_at=scheduled_at, status=S.SCHEDULED if scheduled_at else S.DRAFT)
    db.session.add(ann)
    db.session.flush()
    return ann


def schedule_announcement(announcement_id: int, at: datetime, *, now: datetime | None = None) -> Announcement:
    ann = get_announcement(announcement_id)
    if ann.status not in (S.DRAFT, S.SCHEDULED):
        raise InvalidTransitionError("公告已开始发送，不能再定时")
    if at <= (now or utcnow()):
        raise ValidationError("定时发送时间须晚于当前时间", fields={"scheduled_at": ["须晚于当前时间"]})
    ann.scheduled_at, ann.status = at, S.SCHEDULED
    db.session.flush()
    return ann


def _request_dispatch(ann: Announcement) -> None:
    outbox.record(START_TOPIC, {"announcement_id": ann.id},
                  dedupe_key=f"{START_TOPIC}:{ann.id}:{uuid.uuid4().hex}", ordering_key=f"announcement:{ann.id}")


def start_announcement(announcement_id: int) -> Announcement:
    """Send now (a draft, or a scheduled one whose time has come or is brought forward)."""
    ann = get_announcement(announcement_id)
    if ann.status not in (S.DRAFT, S.SCHEDULED):
        raise InvalidTransitionError("公告已发送或已撤回")
    ann.status, ann.status_reason = S.SENDING, None
    db.session.flush()
    _request_dispatch(ann)
    return ann


def pause_announcement(announcement_id: int) -> Announcement:
    """Stop between batches; what was sent stays sent, the rest waits for ``resume``."""
    ann = get_announcement(announcement_id)
    if ann.status not in (S.SENDING, S.HALTED):
        raise InvalidTransitionError("只有发送中的公告可以暂停")
    ann.status, ann.status_reason = S.PAUSED, "已由客服暂停"
    db.session.flush()
    return ann


def resume_announcement(announcement_id: int) -> Announcement:
    ann = get_announcement(announcement_id)
    if ann.status not in (S.PAUSED, S.HALTED):
        raise InvalidTransitionError("只有已暂停或已中止的公告可以继续发送")
    ann.status, ann.status_reason = S.SENDING, None
    db.session.flush()
    _request_dispatch(ann)
    return ann


def cancel_announcement(announcement_id: int, *, now: datetime | None = None) -> Announcement:
    """Withdraw: nothing more is sent; recipients not reached yet are marked skipped."""
    ann = get_announcement(announcement_id)
    if ann.status in (S.DONE, S.CANCELLED):
        raise InvalidTransitionError("公告已发送完毕或已撤回")
    ann.status, ann.status_reason, ann.finished_at = S.CANCELLED, "已由客服撤回", now or utcnow()
    db.session.execute(update(Delivery).where(Delivery.announcement_id == ann.id,
                                              Delivery.status == DeliveryStatus.PENDING)
                       .values(status=DeliveryStatus.SKIPPED, reason=CANCELLED_REASON))
    # A chunk at WeChat right now: a live worker records what came of it (overwriting this);
    # one whose worker died is never resumed, so it stays unknown for staff.
    db.session.execute(update(Delivery).where(Delivery.announcement_id == ann.id,
                                              Delivery.status == DeliveryStatus.SENDING)
                       .values(status=DeliveryStatus.UNKNOWN, reason=CANCELLED_IN_FLIGHT_REASON))
    db.session.flush()
    return ann


def halt_announcement(announcement_id: int, reason: str) -> bool:
    """WeChat's daily quota is spent: stop, keep the cursor (pending rows), tell staff why."""
    res = db.session.execute(update(Announcement).where(Announcement.id == announcement_id,
                                                        Announcement.status == S.SENDING)
                             .values(status=S.HALTED, status_reason=reason[:200]))
    return res.rowcount == 1


def stop_for_error(announcement_id: int, reason: str) -> bool:
    """WeChat refused the message itself (template configuration): pause with the reason."""
    res = db.session.execute(update(Announcement).where(Announcement.id == announcement_id,
                                                        Announcement.status == S.SENDING)
                             .values(status=S.PAUSED, status_reason=reason[:200]))
    return res.rowcount == 1


def finish_if_done(announcement_id: int, *, now: datetime | None = None) -> bool:
    """Mark a sending announcement done when no delivery is pending (or at WeChat) any more."""
    pending = db.session.scalar(select(Delivery.id).where(Delivery.announcement_id == announcement_id,
                                                          Delivery.status.in_(DeliveryStatus.OPEN)).limit(1))
    if pending is not None:
        return False
    res = db.session.execute(update(Announcement).where(Announcement.id == announcement_id,
                                                        Announcement.status == S.SENDING,
                                                        Announcement.started_at.isnot(None))
                             .values(status=S.DONE, status_reason=None, finished_at=now or utcnow()))
    return res.rowcount == 1


def progress(announcement_id: int) -> dict:
    """Counts by delivery status (one indexed GROUP BY), with the announcement's status.
    ``unknown`` people may or may not have the message: a broadcast with some is done, but
    not everyone is known to be reached."""
    ann = get_announcement(announcement_id)
    counts = dict.fromkeys(DeliveryStatus.ALL, 0)
    counts.update(db.session.execute(
        select(Delivery.status, func.count()).where(Delivery.announcement_id == announcement_id)
        .group_by(Delivery.status)).all())
    return {"announcement_id": ann.id, "status": ann.status, "status_reason": ann.status_reason,
            "total": sum(counts.values()), **counts}


# --- outcomes unknown: shown to staff, resent on request ---------------------------------------

def unknown_deliveries(announcement_id: int, *, limit: int = 200) -> list[dict]:
    """The people whose message may or may not have arrived (oldest first), with their
    households, for the console."""
    return deliveries_with_status(announcement_id, DeliveryStatus.UNKNOWN, limit=limit)


def outcome_summary(announcement_id: int) -> list[dict]:
    """The recipients not reached, grouped by outcome and WeChat's answer (most first):
    ``{"status", "errcode", "reason", "count"}`` — the reason as stored for one of them."""
    rows = db.session.execute(
        select(Delivery.status, Delivery.errcode, func.min(Delivery.reason), func.count())
        .where(Delivery.announcement_id == announcement_id,
               Delivery.status.in_((DeliveryStatus.FAILED, DeliveryStatus.SKIPPED, DeliveryStatus.UNKNOWN)))
        .group_by(Delivery.status, Delivery.errcode)).all()
    return sorted(({"status": st, "errcode": code, "reason": reason, "count": n} for st, code, reason, n in rows),
                  key=lambda r: (-r["count"], r["status"], r["errcode"] or 0))


def deliveries_with_status(announcement_id: int, status: str, *, limit: int = 200) -> list[dict]:
    """Recipients of one outcome (oldest first) with WeChat's answer and their households."""
    rows = db.session.execute(
        select(Delivery.id, Delivery.wechat_user_id, Delivery.channel, Delivery.reason, Delivery.resends,
               Delivery.errcode, WechatUser.nickname)
        .join(WechatUser, WechatUser.id == Delivery.wechat_user_id)
        .where(Delivery.announcement_id == announcement_id, Delivery.status == status)
        .order_by(Delivery.id).limit(limit)).all()
    homes: dict[int, list[Household]] = {}
    if rows:
        for user_id, home in db.session.execute(
                select(HouseholdBinding.wechat_user_id, Household)
                .join(Household, Household.id == HouseholdBinding.household_id)
                .where(HouseholdBinding.wechat_user_id.in_([r.wechat_user_id for r in rows]))
                .order_by(Household.account_no)).all():
            homes.setdefault(user_id, []).append(home)
    return [{"delivery_id": r.id, "wechat_user_id": r.wechat_user_id, "channel": r.channel, "reason": r.reason,
             "errcode": r.errcode, "resends": r.resends, "nickname": r.nickname,
             "households": homes.get(r.wechat_user_id, [])}
            for r in rows]


def resend_unknown(announcement_id: int, delivery_ids: list[int] | None = None) -> int:
    """Staff decided to send once more to people whose outcome is unknown (all of them, or
    these): each gets a new notice key, so the broadcast sends it exactly once more; the
    announcement goes back to sending if it was done. Returns how many were queued (0 when
    someone else resent them first)."""
    ann = get_announcement(announcement_id)
    if ann.status == S.CANCELLED:
        raise InvalidTransitionError("公告已撤回，不能重新发送")
    query = select(Delivery.id, Delivery.wechat_user_id, Delivery.resends).where(
        Delivery.announcement_id == ann.id, Delivery.status == DeliveryStatus.UNKNOWN)
    if delivery_ids is not None:
        query = query.where(Delivery.id.in_(delivery_ids))
    rows = db.session.execute(query).all()
    queued = _send_again(ann, DeliveryStatus.UNKNOWN, [r.id for r in rows])
    if queued:
        db.session.execute(
            update(OutboundMessage).where(
                OutboundMessage.dedupe_key.in_([delivery_key(ann.id, r.wechat_user_id, r.resends) for r in rows]),
                OutboundMessage.status == OutboundStatus.UNKNOWN)
            .values(status=OutboundStatus.RESENT).execution_options(synchronize_session=False))
    return queued


def _send_again(ann: Announcement, status: str, ids: list[int]) -> int:
    """These deliveries (still in ``status``) back to pending under a new notice key; the
    broadcast is dispatched again. Returns how many moved (0 if someone moved them first)."""
    if not ids:
        return 0
    res = db.session.execute(
        update(Delivery).where(Delivery.id.in_(ids), Delivery.status == status)
        .values(status=DeliveryStatus.PENDING, resends=Delivery.resends + 1, attempts=0, channel=None,
                errcode=None, reason=None, wechat_msgid=None, sent_at=None)
        .execution_options(synchronize_session=False))
    if not res.rowcount:
        return 0
    if ann.status == S.DONE:
        ann.status, ann.status_reason, ann.finished_at = S.SENDING, None, None
    if ann.status == S.SENDING:
        _request_dispatch(ann)
    db.session.flush()
    return res.rowcount

def retry_failed(announcement_id: int) -> int:
    """重试失败: send once more to exactly the recipients whose send failed — each with a new
    notice key, so each gets at most one more message, and a second click (or a retry of the
    request) finds none left to retry. The announcement goes back to sending if it was done.
    Returns how many were queued."""
    ann = get_announcement(announcement_id)
    if ann.status == S.CANCELLED:
        raise InvalidTransitionError("公告已撤回，不能重试")
    if ann.status in (S.DRAFT, S.SCHEDULED):
        raise InvalidTransitionError("公告尚未发送")
    ids = list(db.session.scalars(select(Delivery.id).where(Delivery.announcement_id == ann.id,
                                                             Delivery.status == DeliveryStatus.FAILED)))
    return _send_again(ann, DeliveryStatus.FAILED, ids)
