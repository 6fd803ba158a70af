"""Figures for the leader dashboard, and the lists behind each of them.

Every query here is bounded by what is *current*, never by the size of the history, so the
summary costs about the same with ten thousand tickets or a million (bench/dashboard):

- "today", "the last N days" and "payments today" are index range scans on a timestamp
  (``ticket.created_at``, ``accepted_at``, ``closed_at``, ``rated_at``, ``payment.paid_at``);
- open, overdue and each crew's load read the open backlog through ``(state, finish_by)``;
- the change stamp is ``max()`` over indexed columns (one index probe each).

Indexes not in the domain migration are added by ``migrations/versions/0006_web.py``.
The summary is a plain dict (JSON for the live page), cached in Redis under its change
stamp so every open dashboard and every web process shares one computation.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from flask import current_app, has_app_context
from sqlalchemy import Integer, and_, case, func, literal_column, or_, select

from app.clock import local_now, local_tz
from app.extensions import db
from app.models import (
    Bill, BillStatus, CallLog, CallStatus, Conversation, ConversationStatus, Crew, District, HeatingSeason, Household, Outage, OutageCluster,
    OutageStatus, Payment, PaymentItem, PaymentState, Priority, ReconciliationMismatch, ReconciliationRun, Role,
    Staff, Ticket, TicketCategory, TicketSource, TicketState, TicketType, utcnow,
)
from app.phones import masked
from app.services import chat as chat_service
from app.services import clusters as cluster_service
from app.services import sla
from app.services.outages import LIVE, count_affected
from app.services.reconciliation import open_mismatch_count

log = logging.getLogger(__name__)

WINDOW_DAYS = 7              # response/repair times, satisfaction and the charts: the last 7 days
LIST_PAGE_SIZE = 50
SUMMARY_CACHE_TTL = 120      # seconds; the stamp changes at least every minute anyway
OPEN = TicketState.OPEN


# --- time helpers ---------------------------------------------------------------------------

def local_day_start(now: datetime) -> datetime:
    """Midnight of ``now``'s local (Beijing) day, as an aware datetime."""
    local = now.astimezone(local_tz())
    return datetime.combine(local.date(), time(0), tzinfo=local_tz())


def _seconds_between(later, earlier):
    """SQL expression: seconds from ``earlier`` to ``later`` (PostgreSQL or SQLite)."""
    if db.engine.dialect.name == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _repair_end():
    """A repair ends with the crew's answer; tickets closed directly end when closed."""
    return func.coalesce(Ticket.replied_at, Ticket.closed_at)


def local_offset_hours() -> int:
    """The app time zone's offset from UTC in whole hours (Asia/Shanghai: +8, no DST)."""
    offset = local_now().utcoffset() or timedelta(0)
    return int(offset.total_seconds() // 3600)


def _local_hour(column):
    """SQL: the local hour (0–23) of a stored UTC timestamp (fixed-offset time zone)."""
    hours = local_offset_hours()
    if db.engine.dialect.name == "postgresql":
        return func.extract("hour", column + literal_column(f"interval '{hours} hours'"))
    return func.cast(func.strftime("%H", column, f"{hours:+d} hours"), Integer)


def repeat_complaint_days() -> int:
    return int(current_app.config["REPEAT_COMPLAINT_DAYS"]) if has_app_context() else 30


# --- the summary ----------------------------------------------------------------------------

def current_season(today: date) -> HeatingSeason | None:
    """The season running today, else the latest one that has started, else the latest."""
    seasons = list(db.session.scalars(select(HeatingSeason).order_by(HeatingSeason.starts_on.desc())))
    for season in seasons:
        if season.starts_on <= today <= season.ends_on:
            return season
    started = [s for s in seasons if s.starts_on <= today]
    return started[0] if started else (seasons[0] if seasons else None)


def _ticket_counts(now: datetime, day_start: datetime) -> dict:
    today = db.session.scalar(select(func.count(Ticket.id)).where(Ticket.created_at >= day_start)) or 0
    # One pass over the open backlog (ix_ticket_backlog leads with state). 待派单: open, no crew,
    # not waiting on an outage (those are held on purpose, not forgotten).
    open_, overdue, overdue_unfinished, emergency, unassigned, response_late = db.session.execute(
        select(
            func.count(Ticket.id),
            _count_if(sla.finish_overdue(now)),
            _count_if(and_(sla.finish_overdue(now), Ticket.state != TicketState.REPLIED)),
            _count_if(Ticket.priority == Priority.EMERGENCY),
            _count_if(and_(Ticket.crew_id.is_(None), Ticket.outage_id.is_(None))),
            _count_if(sla.response_overdue(now)),
        ).where(_open_backlog())
    ).one()
    # Filtered by state in the CASE, not the WHERE: a WHERE on state would tempt the planner
    # into the state index, where "closed" is nearly the whole history.
    closed_today = db.session.scalar(
        select(_count_if(Ticket.state == TicketState.CLOSED)).where(Ticket.closed_at >= day_start)
    ) or 0
    return {"today": today, "open": open_, "overdue": int(overdue), "emergency_open": int(emergency),
            "unassigned": int(unassigned), "response_late": int(response_late), "closed_today": int(closed_today),
            "overdue_unfinished": int(overdue_unfinished)}


def _finished_since(since: datetime):
    """SQL: finished since ``since`` — answered by a crew, or closed directly by an agent."""
    return or_(Ticket.replied_at >= since, and_(Ticket.replied_at.is_(None), Ticket.closed_at >= since))


def _rare(condition):
    """SQL: ``condition``, on SQLite marked as rarely true (``likelihood``). Without a histogram
    its planner takes each state for a seventh of the table and, as soon as a column outside
    ix_ticket_backlog is read (or another index gives the order), scans the whole history
    (300-900 ms at a million tickets) instead of the few rows asked for (1 ms)."""
    if db.engine.dialect.name == "sqlite":
        return func.likelihood(condition, literal_column("0.001"))
    return condition


def _open_backlog():
    """SQL: the ticket is open (the backlog, read through ix_ticket_backlog)."""
    return _rare(Ticket.state.in_(OPEN))


def _count_if(condition):
    """SQL: how many rows meet ``condition`` (0, never NULL)."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _rate(part: int | None, whole: int | None) -> float | None:
    return round(int(part or 0) / int(whole), 4) if whole else None


def _times(now: datetime, since: datetime, late: dict) -> dict:
    """Mean response and repair times over the window, and how many were on time.

    响应及时率: tickets first responded to in the window, on time when accepted by
    ``respond_by``; tickets still waiting for a response past it count as late.
    办结及时率: tickets finished in the window (crew's answer, or closed directly; cancelled
    ones left out), on time when finished by ``finish_by``; tickets still unfinished past it
    (open, not yet answered by the crew) count as late.
    A ticket without a deadline (clock held on an outage) is on time.
    """
    response = _seconds_between(Ticket.accepted_at, Ticket.created_at)
    avg_response, n_response, response_on_time = db.session.execute(
        select(func.avg(response), func.count(Ticket.id),
               _count_if(sla.responded_on_time()))
        .where(Ticket.accepted_at >= since)
    ).one()
    end = _repair_end()
    repair = _seconds_between(end, Ticket.created_at)
    # Tickets finished in the window: answered by a crew, or closed directly by an agent.
    finished = _finished_since(since)
    done = Ticket.state != TicketState.CANCELLED
    avg_repair, n_repair, n_done, finish_on_time = db.session.execute(
        select(func.avg(repair), func.count(Ticket.id), _count_if(done),
               _count_if(and_(done, sla.finished_on_time(end))))
        .where(finished)
    ).one()
    response_whole = n_response + late["response_late"]
    finish_whole = int(n_done) + late["overdue_unfinished"]  # replied ones are among the finished
    return {
        "first_response_minutes": round(float(avg_response) / 60, 1) if avg_response is not None else None,
        "response_count": n_response,
        "repair_hours": round(float(avg_repair) / 3600, 1) if avg_repair is not None else None,
        "repair_count": n_repair,
        "response_on_time": int(response_on_time), "response_judged": response_whole,
        "response_on_time_rate": _rate(int(response_on_time), response_whole),
        "finish_on_time": int(finish_on_time), "finish_judged": finish_whole,
        "finish_on_time_rate": _rate(int(finish_on_time), finish_whole),
    }


IVR_RATING_LAG = timedelta(days=1)   # an IVR rating comes right after its call


def _satisfaction(since: datetime) -> dict:
    """Ratings given in the window: residents' ticket ratings, the phone system's post-call
    IVR ratings (a call rating that also became its ticket's rating counts once) and the
    ratings of live-chat conversations (会话)."""
    avg, n, good = db.session.execute(
        select(func.avg(Ticket.rating), func.count(Ticket.id), _count_if(Ticket.rating >= 4))
        .where(Ticket.rated_at >= since, Ticket.rating.is_not(None))
    ).one()
    # Bounded by the started_at index: ratings arrive within a day of the call.
    call_sum, call_n, call_good = db.session.execute(
        select(func.coalesce(func.sum(CallLog.rating), 0), func.count(CallLog.id), _count_if(CallLog.rating >= 4))
        .where(CallLog.started_at >= since - IVR_RATING_LAG, CallLog.rated_at >= since,
               CallLog.rating.is_not(None), CallLog.rating_on_ticket.is_(False))
    ).one()
    chat_sum, chat_n, chat_good = db.session.execute(
        select(func.coalesce(func.sum(Conversation.rating), 0), func.count(Conversation.id),
               _count_if(Conversation.rating >= 4))
        .where(Conversation.rated_at >= since, Conversation.rating.is_not(None))
    ).one()
    total = n + call_n + chat_n
    ticket_sum = float(avg) * n if avg is not None else 0.0
    return {
        "average": round((ticket_sum + int(call_sum) + int(chat_sum)) / total, 2) if total else None,
        "count": total, "ticket_ratings": n, "call_ratings": call_n, "chat_ratings": chat_n,
        "satisfied_rate": round((int(good) + int(call_good) + int(chat_good)) / total, 3) if total else None,
    }


def _unindexed(column):
    """The column as an expression, so GROUP BY cannot walk the column's own index.

    Grouping by a plain indexed column lets SQLite prefer that index (sorted groups, but a
    scan of the whole history) over the selective time-range index of the WHERE clause.
    """
    return func.coalesce(column, "")


def _by_type(since: datetime) -> list[dict]:
    kind = _unindexed(Ticket.type)
    rows = db.session.execute(
        select(kind, func.count(Ticket.id)).where(Ticket.created_at >= since).group_by(kind)
    ).all()
    counts = dict(rows)
    return [{"key": t, "label": TicketType.LABELS[t], "count": counts.get(t, 0)} for t in TicketType.ALL]


def _by_district(since: datetime) -> list[dict]:
    rows = db.session.execute(
        select(Household.district_id, func.count(Ticket.id))
        .select_from(Ticket).outerjoin(Household, Household.id == Ticket.household_id)
        .where(Ticket.created_at >= since).group_by(Household.district_id)
    ).all()
    names = dict(db.session.execute(select(District.id, District.name)).all())
    result = [{"key": str(d), "label": names.get(d, "未知"), "count": n} for d, n in rows if d is not None]
    result.sort(key=lambda r: (-r["count"], r["label"]))
    unknown = sum(n for d, n in rows if d is None)
    if unknown:
        result.append({"key": "none", "label": "未关联住户", "count": unknown})
    return result


def _outages() -> list[dict]:
    outages = db.session.scalars(
        select(Outage).where(Outage.status.in_(LIVE)).order_by(Outage.starts_at)
    ).all()
    linked, waiting = {}, {}
    ids = [o.id for o in outages]
    if ids:
        # Reports linked to each outage (all of them) and those still waiting on it (clock held).
        for outage_id, total, held in db.session.execute(
            select(Ticket.outage_id, func.count(Ticket.id),
                   func.count(Ticket.id).filter(Ticket.sla_held_at.isnot(None)))
            .where(Ticket.outage_id.in_(ids)).group_by(Ticket.outage_id)
        ).all():
            linked[outage_id], waiting[outage_id] = total, held
    return [{
        "id": o.id, "title": o.title, "status": o.status, "status_label": OutageStatus.LABELS[o.status],
        "households": count_affected(o.areas), "starts_at": _iso(o.starts_at),
        "expected_end_at": _iso(o.expected_end_at),
        "linked_reports": linked.get(o.id, 0), "waiting_reports": waiting.get(o.id, 0),
    } for o in outages]


BILL_TOTALS_TTL = 300   # seconds; a safety net — the stamp moves with each new bill and payment


def bill_totals(today: date, payments_today: int, *, cached: bool = True) -> dict:
    """The current season's billed and paid principal, and each district's arrears
    (outstanding principal of open bills whose season's due date has passed).

    These read every bill of the season and every open bill — households × seasons, never the
    ticket history, but the largest reads of the summary — and change only when bills are
    issued or a payment is credited. So they are kept in Redis under a stamp of exactly that:
    the local date (a due date passes), the newest bill id, the newest payment time and how
    many payments were credited today (one index probe each). A payment WeChat reports late
    with a time before midnight shows within ``BILL_TOTALS_TTL``. Without Redis (or with
    ``cached=False``) they are computed."""
    redis = current_app.extensions.get("redis") if cached and has_app_context() else None
    key = None
    if redis is not None:
        stamp = "|".join(str(p) for p in (
            today, db.session.scalar(select(func.max(Bill.id))), db.session.scalar(select(func.max(Payment.paid_at))),
            payments_today))
        key = "dashboard:bills:" + hashlib.sha1(stamp.encode()).hexdigest()[:16]
        try:
            hit = redis.get(key)
        except Exception:  # Redis down: computed, uncached
            hit, redis = None, None
        if hit:
            return json.loads(hit)
    season = current_season(today)
    totals: dict = {"season": None, "due_fen": 0, "paid_fen": 0, "arrears": []}
    if season is not None:
        due, paid = db.session.execute(
            select(func.coalesce(func.sum(Bill.amount_fen), 0),
                   func.coalesce(func.sum(func.min(Bill.paid_fen, Bill.amount_fen)
                                          if db.engine.dialect.name == "sqlite"
                                          else func.least(Bill.paid_fen, Bill.amount_fen)), 0))
            .where(Bill.season_id == season.id, Bill.status != BillStatus.WAIVED)
        ).one()
        totals.update(season=season.code, due_fen=int(due), paid_fen=int(paid))
    totals["arrears"] = [[d, int(fen), n] for d, fen, n in db.session.execute(
        select(Household.district_id, func.sum(Bill.amount_fen - Bill.paid_fen), func.count(func.distinct(Bill.household_id)))
        .select_from(Bill).join(HeatingSeason, HeatingSeason.id == Bill.season_id)
        .join(Household, Household.id == Bill.household_id)
        .where(Bill.status.in_(BillStatus.OPEN), HeatingSeason.due_on < today)
        .group_by(Household.district_id)
    ).all()]
    if redis is not None:
        try:
            redis.set(key, json.dumps(totals), ex=BILL_TOTALS_TTL)
        except Exception:
            pass
    return totals


def _payments_today(day_start: datetime) -> tuple[int, int]:
    """(count, amount in fen) of WeChat Pay payments credited since local midnight."""
    count, total = db.session.execute(
        select(func.count(Payment.id), func.coalesce(func.sum(Payment.amount_fen), 0))
        .where(Payment.paid_at >= day_start, Payment.state == PaymentState.PAID)
    ).one()
    return int(count), int(total)


def _fees(now: datetime, day_start: datetime, totals: dict) -> dict:
    count, total = _payments_today(day_start)
    due, paid = totals["due_fen"], totals["paid_fen"]
    return {"season": totals["season"], "due_fen": due, "paid_fen": paid,
            "rate": round(paid / due, 4) if due else None, "payments_today": count, "payments_today_fen": total}


QUEUE_LOOKBACK = timedelta(hours=1)   # a call still "ringing" after this lost its hangup event


def _calls(now: datetime, day_start: datetime) -> dict:
    """Today's calls from the bridge's call events, and the queue right now.

    接通: answered (``answered_at`` set); 未接: missed, or hung up before anyone answered;
    排队: ringing now (started in the last hour); 接通率 = 接通 ÷ (接通 + 未接).
    """
    answered = CallLog.answered_at.is_not(None)
    lost = and_(CallLog.answered_at.is_(None), CallLog.status.in_((CallStatus.MISSED, CallStatus.HANGUP)))
    total, n_answered, n_lost, ringing, avg_wait = db.session.execute(
        select(func.count(CallLog.id), _count_if(answered), _count_if(lost),
               _count_if(CallLog.status == CallStatus.RINGING),
               func.avg(case((answered, _seconds_between(CallLog.answered_at, CallLog.started_at)))))
        .where(CallLog.started_at >= day_start)
    ).one()
    queue, oldest = db.session.execute(
        select(func.count(CallLog.id), func.min(CallLog.started_at))
        .where(CallLog.status == CallStatus.RINGING, CallLog.started_at >= now - QUEUE_LOOKBACK)
    ).one()
    return {
        "total": total, "answered": int(n_answered), "missed": int(n_lost), "ringing_today": int(ringing),
        "answer_rate": _rate(int(n_answered), int(n_answered) + int(n_lost)),
        "avg_wait_seconds": round(float(avg_wait)) if avg_wait is not None else None,
        "queue": queue, "longest_wait_seconds": int((now - oldest).total_seconds()) if oldest else None,
    }


def _money_by_district(now: datetime, day_start: datetime, totals: dict | None = None) -> list[dict]:
    """Arrears (outstanding principal of bills past their season's due date, from
    ``bill_totals``) and today's collection (principal and late fees of payments credited
    today) for each district."""
    if totals is None:
        totals = bill_totals(now.astimezone(local_tz()).date(), _payments_today(day_start)[0])
    arrears = {d: (fen, n) for d, fen, n in totals["arrears"]}
    collected = {d: (int(fen), n) for d, fen, n in db.session.execute(
        select(Household.district_id, func.sum(PaymentItem.principal_fen + PaymentItem.late_fee_fen),
               func.count(func.distinct(Payment.id)))
        .select_from(Payment).join(PaymentItem, PaymentItem.payment_id == Payment.id)
        .join(Bill, Bill.id == PaymentItem.bill_id).join(Household, Household.id == Bill.household_id)
        .where(Payment.paid_at >= day_start, Payment.state == PaymentState.PAID)
        .group_by(Household.district_id)
    ).all()}
    names = dict(db.session.execute(select(District.id, District.name)).all())
    rows = []
    for district_id, name in sorted(names.items(), key=lambda kv: kv[1]):
        owed, owing = arrears.get(district_id, (0, 0))
        paid, payments = collected.get(district_id, (0, 0))
        rows.append({"key": str(district_id), "label": name, "arrears_fen": owed, "arrears_households": owing,
                     "collected_fen": paid, "payments": payments})
    rows.sort(key=lambda r: (-r["arrears_fen"], r["label"]))
    return rows


def previous_season(season: HeatingSeason) -> HeatingSeason | None:
    return db.session.scalar(select(HeatingSeason).where(HeatingSeason.starts_on < season.starts_on)
                             .order_by(HeatingSeason.starts_on.desc()).limit(1))


def same_day_last_season(today: date) -> date:
    """The same day of the previous heating season (as many days after its start as today is
    after this season's start); without two seasons, the same date a year earlier."""
    season = current_season(today)
    before = previous_season(season) if season is not None else None
    if season is not None and before is not None:
        return before.starts_on + (today - season.starts_on)
    try:
        return today.replace(year=today.year - 1)
    except ValueError:  # 29 February
        return today.replace(year=today.year - 1, day=28)


def _so_far(now: datetime, day_start: datetime, day: date) -> tuple[datetime, datetime]:
    """``day`` from its midnight up to the time of day ``now`` is at (to compare like with like)."""
    start = datetime.combine(day, time(0), tzinfo=local_tz())
    return start, start + (now - day_start)


def _trend(now: datetime, day_start: datetime) -> dict:
    """Today so far against yesterday and the same day last season up to the same time."""
    today = day_start.date()
    days = {"today": today, "yesterday": today - timedelta(days=1), "last_season": same_day_last_season(today)}
    result: dict = {"last_season_date": days["last_season"].isoformat(), "tickets": {}, "calls": {},
                    "collected_fen": {}}
    for name, day in days.items():
        start, end = _so_far(now, day_start, day)
        result["tickets"][name] = db.session.scalar(
            select(func.count(Ticket.id)).where(Ticket.created_at >= start, Ticket.created_at < end)) or 0
        result["calls"][name] = db.session.scalar(
            select(func.count(CallLog.id)).where(CallLog.started_at >= start, CallLog.started_at < end)) or 0
        result["collected_fen"][name] = int(db.session.scalar(
            select(func.coalesce(func.sum(Payment.amount_fen), 0))
            .where(Payment.paid_at >= start, Payment.paid_at < end, Payment.state == PaymentState.PAID)) or 0)
    return result


def _intake_by_hour(day_start: datetime) -> dict:
    """Tickets created in each local hour of today and of yesterday."""
    hour = _local_hour(Ticket.created_at)
    is_today = case((Ticket.created_at >= day_start, 1), else_=0)
    today, yesterday = [0] * 24, [0] * 24
    for today_row, h, n in db.session.execute(
        select(is_today, hour, func.count(Ticket.id))
        .where(Ticket.created_at >= day_start - timedelta(days=1)).group_by(is_today, hour)
    ).all():
        (today if today_row else yesterday)[int(h)] += n
    return {"today": today, "yesterday": yesterday}


def _complaints(now: datetime, day_start: datetime, since: datetime) -> dict:
    """Complaints in the window and today; 重复投诉: a complaint from a household that had
    another complaint in the ``REPEAT_COMPLAINT_DAYS`` before it."""
    recent, repeat_ids, days = _complaints_since(since)
    return {"window": len(recent), "today": sum(1 for _, _, at in recent if at >= day_start),
            "repeat": len(repeat_ids), "repeat_days": days}


def repeat_complaint_ids(since: datetime) -> list[int]:
    return _complaints_since(since)[1]


def _complaints_since(since: datetime) -> tuple[list, list[int], int]:
    """(complaints since ``since`` as (id, household, created_at), ids of the repeats, N days)."""
    days = repeat_complaint_days()
    complaint = _unindexed(Ticket.type) == TicketType.COMPLAINT  # see _unindexed: keep the time index
    recent = db.session.execute(
        select(Ticket.id, Ticket.household_id, Ticket.created_at).where(Ticket.created_at >= since, complaint)
    ).all()
    households = {h for _, h, _ in recent if h is not None}
    earlier: dict[int, list[tuple[datetime, int]]] = {}
    if households:
        for tid, h, at in db.session.execute(
            select(Ticket.id, Ticket.household_id, Ticket.created_at)
            .where(Ticket.household_id.in_(households), complaint,
                   Ticket.created_at >= since - timedelta(days=days))
        ).all():
            earlier.setdefault(h, []).append((at, tid))
    repeat_ids = [tid for tid, h, at in recent if h is not None and any(
        other != tid and at - timedelta(days=days) <= when <= at for when, other in earlier.get(h, []))]
    return recent, repeat_ids, days


def _visits(since: datetime) -> dict:
    """回访率: tickets closed in the window that customer service has called back (回访)."""
    closed, visited = db.session.execute(
        select(_count_if(Ticket.state == TicketState.CLOSED),
               _count_if(and_(Ticket.state == TicketState.CLOSED, Ticket.visited_at.is_not(None))))
        .where(Ticket.closed_at >= since)
    ).one()
    return {"closed": int(closed), "visited": int(visited), "rate": _rate(int(visited), int(closed))}


def _chat(now: datetime, day_start: datetime) -> dict:
    """Live chat (会话): open conversations now and today's waiting times (``chat.chat_metrics``)."""
    today = chat_service.chat_metrics(day_start, now + timedelta(seconds=1))
    active = db.session.scalar(
        select(func.count(Conversation.id)).where(Conversation.status == ConversationStatus.ACTIVE)) or 0
    oldest_waiting = db.session.scalar(
        select(func.min(Conversation.opened_at)).where(Conversation.status == ConversationStatus.WAITING))
    return {
        "open": int(active) + today.waiting_now, "waiting": today.waiting_now, "active": int(active),
        "opened_today": today.opened, "answered_today": today.answered,
        "avg_wait_seconds": round(today.avg_wait_s) if today.avg_wait_s is not None else None,
        "avg_first_response_seconds": round(today.avg_first_response_s)
        if today.avg_first_response_s is not None else None,
        "longest_wait_seconds": int((now - oldest_waiting).total_seconds()) if oldest_waiting else None,
    }


def _suspected_outages() -> list[dict]:
    """Open clusters of no-heat reports with no outage recorded (疑似停热), for the alert."""
    return [{"id": c.id, "place": cluster_service.place_name(c), "reports": c.report_count,
             "first_report_at": _iso(c.first_report_at), "last_report_at": _iso(c.last_report_at)}
            for c in cluster_service.open_clusters()]


def _crews(now: datetime) -> list[dict]:
    crew = func.coalesce(Ticket.crew_id, 0)  # an expression: see _unindexed
    load = {crew_id: (n, int(late)) for crew_id, n, late in db.session.execute(
        select(crew, func.count(Ticket.id),
               _count_if(sla.finish_overdue(now)))
        .where(Ticket.state.in_(OPEN)).group_by(crew)
    ).all()}
    members: dict[int, list[dict]] = {}
    for s in db.session.scalars(
        select(Staff).where(Staff.crew_id.is_not(None), Staff.active.is_(True)).order_by(Staff.id)
    ):
        members.setdefault(s.crew_id, []).append({
            "id": s.id, "name": s.name, "lead": s.role == Role.CREW_LEAD,
            "latitude": s.last_latitude, "longitude": s.last_longitude,
            "location": s.last_location_label, "located_at": _iso(s.last_located_at),
        })
    crews = []
    for crew in db.session.scalars(select(Crew).order_by(Crew.id)):
        n, late = load.get(crew.id, (0, 0))
        people = members.get(crew.id, [])
        located = [m for m in people if m["located_at"]]
        last = max(located, key=lambda m: m["located_at"]) if located else None
        crews.append({"id": crew.id, "name": crew.name, "open": n, "overdue": late,
                      "members": len(people), "last_location": last, "people": people})
    return crews


def ticket_deadlines(t: Ticket, now: datetime | None = None) -> dict:
    """Whether the ticket met (or is missing) its response and finish deadlines."""
    now = now or utcnow()
    end = t.replied_at or (t.closed_at if t.state == TicketState.CLOSED else None)

    def judged(by: datetime | None, done: datetime | None) -> str | None:
        if by is None:
            return None
        if done is not None:
            return "on_time" if done <= by else "late"
        return "late" if by < now and t.state in OPEN else "pending"

    return {"response": judged(t.respond_by, t.accepted_at), "finish": judged(t.finish_by, end)}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def dashboard_summary(now: datetime | None = None) -> dict:
    """Every figure of the leader dashboard, as JSON-ready values."""
    now = now or utcnow()
    day_start = local_day_start(now)
    since = now - timedelta(days=WINDOW_DAYS)
    tickets = _ticket_counts(now, day_start)
    totals = bill_totals(now.astimezone(local_tz()).date(), _payments_today(day_start)[0])
    return {
        "generated_at": now.isoformat(),
        "window_days": WINDOW_DAYS,
        "calls_today": _calls(now, day_start),
        "tickets": tickets,
        "times": _times(now, since, tickets),
        "satisfaction": _satisfaction(since),
        "by_type": _by_type(since),
        "by_district": _by_district(since),
        "today_by_type": _by_type(day_start),
        "today_by_district": _by_district(day_start),
        "intake_by_hour": _intake_by_hour(day_start),
        "trend": _trend(now, day_start),
        "complaints": _complaints(now, day_start, since),
        "visits": _visits(since),
        "outages": _outages(),
        "suspected_outages": _suspected_outages(),
        "chat": _chat(now, day_start),
        "fees": _fees(now, day_start, totals),
        "money_by_district": _money_by_district(now, day_start, totals),
        "reconciliation": _reconciliation(),
        "crews": _crews(now),
    }


def _reconciliation() -> dict:
    """Open differences between WeChat Pay's trade bills and our records (console 对账)."""
    last = db.session.scalar(select(func.max(ReconciliationRun.bill_date)))
    return {"open_mismatches": open_mismatch_count(), "last_date": last.isoformat() if last else None}


def summary_stamp(now: datetime | None = None) -> str:
    """A cheap fingerprint that changes whenever a figure may have changed.

    ``max()`` over indexed timestamps (one index probe each) plus the current minute, so
    time-driven figures (overdue) refresh at least once a minute.
    """
    now = now or utcnow()
    parts = [
        db.session.scalar(select(func.max(Ticket.updated_at))),
        db.session.scalar(select(func.max(Ticket.id))),
        db.session.scalar(select(func.max(Outage.updated_at))),
        db.session.scalar(select(func.max(Payment.paid_at))),
        db.session.scalar(select(func.max(Staff.last_located_at))),
        db.session.scalar(select(func.max(ReconciliationRun.ran_at))),
        db.session.scalar(select(func.max(ReconciliationMismatch.resolved_at))),
        # Calls: a new call moves the max; answering or missing one empties the queue (both
        # read through the (status, started_at) and started_at indexes).
        db.session.scalar(select(func.max(CallLog.id))),
        db.session.scalar(select(func.max(CallLog.started_at))),
        db.session.scalar(select(func.count(CallLog.id)).where(
            CallLog.status == CallStatus.RINGING, CallLog.started_at >= now - QUEUE_LOOKBACK)),
        db.session.scalar(select(func.max(OutageCluster.last_report_at))),
        db.session.scalar(select(func.max(Conversation.id))),
        *db.session.execute(select(Conversation.status, func.count(Conversation.id))
                            .where(Conversation.status.in_(ConversationStatus.OPEN))
                            .group_by(Conversation.status).order_by(Conversation.status)).all(),
        int(now.timestamp() // 60),
    ]
    raw = "|".join(str(p) for p in parts)
    return hashlib.sha1(raw.encode()).hexdigest()[:16]


def cached_summary(redis, stamp: str | None = None) -> tuple[str, dict]:
    """(stamp, summary), computed once per stamp across every process (Redis cache)."""
    stamp = stamp or summary_stamp()
    key = f"dashboard:summary:{stamp}"
    try:
        hit = redis.get(key)
    except Exception:  # Redis down: the dashboard still works, uncached
        log.warning("dashboard: Redis unavailable, summary computed without cache")
        hit = None
    if hit:
        return stamp, json.loads(hit)
    summary = dashboard_summary()
    try:
        redis.set(key, json.dumps(summary, ensure_ascii=False), ex=SUMMARY_CACHE_TTL)
    except Exception:
        pass
    return stamp, summary


# --- the lists behind the figures ---------------------------------------------------------

@dataclass
class DrillList:
    title: str
    kind: str                       # tickets | outages | payments | crew
    rows: list = field(default_factory=list)
    total: int = 0
    page: int = 1
    pages: int = 1
    note: str | None = None


TICKET_FIGURES = {
    "today": "今日新增工单",
    "open": "未办结工单",
    "overdue": "超时工单",
    "emergency": "特急未办结工单",
    "closed_today": "今日办结工单",
    "responded": f"近{WINDOW_DAYS}天已接单工单（首次响应）",
    "repaired": f"近{WINDOW_DAYS}天已处理完成工单",
    "rated": f"近{WINDOW_DAYS}天评价",
    "unassigned": "待派单工单（未派给班组）",
    "response_late": "响应超时工单（过响应时限未接单）",
    "complaints": f"近{WINDOW_DAYS}天投诉",
    "repeat_complaints": "重复投诉",
    "visited": f"近{WINDOW_DAYS}天办结工单的回访",
}


def _ticket_condition(figure: str, key: str | None, now: datetime):
    day_start = local_day_start(now)
    since = now - timedelta(days=WINDOW_DAYS)
    if figure == "today":
        return Ticket.created_at >= day_start, TICKET_FIGURES[figure], Ticket.created_at.desc()
    if figure == "open":
        return _open_backlog(), TICKET_FIGURES[figure], Ticket.finish_by.asc()
    if figure == "overdue":
        return sla.finish_overdue(now), TICKET_FIGURES[figure], Ticket.finish_by.asc()
    if figure == "emergency":
        return (and_(_open_backlog(), Ticket.priority == Priority.EMERGENCY), TICKET_FIGURES[figure],
                Ticket.created_at.desc())
    if figure == "closed_today":
        return (and_(Ticket.closed_at >= day_start, Ticket.state == TicketState.CLOSED), TICKET_FIGURES[figure],
                Ticket.closed_at.desc())
    if figure == "responded":
        return Ticket.accepted_at >= since, TICKET_FIGURES[figure], Ticket.accepted_at.desc()
    if figure == "repaired":
        return _finished_since(since), TICKET_FIGURES[figure], Ticket.created_at.desc()
    if figure == "rated":
        return (and_(Ticket.rated_at >= since, Ticket.rating.is_not(None)), TICKET_FIGURES[figure],
                Ticket.rated_at.desc())
    if figure == "type" and key in TicketType.LABELS:
        return (and_(Ticket.created_at >= since, Ticket.type == key),
                f"近{WINDOW_DAYS}天{TicketType.LABELS[key]}工单", Ticket.created_at.desc())
    if figure == "district" and key:
        if key == "none":
            cond = Ticket.household_id.is_(None)
            label = "未关联住户"
        else:
            district = db.session.get(District, _int(key))
            if district is None:
                return None
            cond = Ticket.household_id.in_(select(Household.id).where(Household.district_id == district.id))
            label = district.name
        return and_(Ticket.created_at >= since, cond), f"近{WINDOW_DAYS}天{label}工单", Ticket.created_at.desc()
    if figure == "unassigned":
        return (and_(_open_backlog(), Ticket.crew_id.is_(None), Ticket.outage_id.is_(None)),
                TICKET_FIGURES[figure], Ticket.created_at.asc())
    if figure == "response_late":
        return sla.response_overdue(now), TICKET_FIGURES[figure], Ticket.respond_by.asc()
    if figure == "complaints":
        return (and_(Ticket.created_at >= since, _unindexed(Ticket.type) == TicketType.COMPLAINT),
                TICKET_FIGURES[figure], Ticket.created_at.desc())
    if figure == "repeat_complaints":
        return (_rare(Ticket.id.in_(repeat_complaint_ids(since))), TICKET_FIGURES[figure], Ticket.created_at.desc())
    if figure == "visited":
        return (and_(Ticket.closed_at >= since, Ticket.state == TicketState.CLOSED), TICKET_FIGURES[figure],
                Ticket.closed_at.desc())
    if figure in ("today_type", "today_district"):
        found = _ticket_condition(figure.removeprefix("today_"), key, now)
        if found is None:
            return None
        cond, title, order = found
        return and_(cond, Ticket.created_at >= day_start), title.replace(f"近{WINDOW_DAYS}天", "今日"), order
    if figure == "suspected" and key:
        cluster = db.session.get(OutageCluster, _int(key))
        if cluster is None:
            return None
        ids = [t.id for t in cluster_service.cluster_reports(cluster, open_only=False)]
        return (Ticket.id.in_(ids), f"疑似停热：{cluster_service.place_name(cluster)}的不热报修",
                Ticket.created_at.desc())
    if figure == "crew" and key:
        crew = db.session.get(Crew, _int(key))
        if crew is None:
            return None
        return (and_(_open_backlog(), Ticket.crew_id == crew.id), f"{crew.name}未办结工单",
                Ticket.finish_by.asc())
    return None


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def ticket_row(t: Ticket, now: datetime) -> dict:
    return {
        "id": t.id, "number": t.number, "type": TicketType.LABELS.get(t.type, t.type),
        "category": TicketCategory.LABELS.get(t.category, t.category),
        "priority": t.priority, "priority_label": Priority.LABELS.get(t.priority, t.priority),
        "state": t.state, "state_label": TicketState.LABELS.get(t.state, t.state),
        "source": TicketSource.LABELS.get(t.source, t.source),
        "address": t.address or "", "description": t.description,
        "crew": t.crew.name if t.crew else None, "assignee": t.assignee.name if t.assignee else None,
        "created_at": t.created_at, "finish_by": t.finish_by, "rating": t.rating,
        "overdue": sla.is_finish_overdue(t, now),
    }


def drill(figure: str, key: str | None = None, page: int = 1, now: datetime | None = None) -> DrillList | None:
    """The list behind one figure of the summary; None for an unknown figure."""
    now = now or utcnow()
    page = max(page, 1)
    if figure == "outages":
        rows = _outages()
        return DrillList("停热中及计划停热", "outages", rows, len(rows))
    if figure == "payments":
        day_start = local_day_start(now)
        cond = and_(Payment.paid_at >= day_start, Payment.state == PaymentState.PAID)
        total = db.session.scalar(select(func.count(Payment.id)).where(cond)) or 0
        payments = db.session.scalars(
            select(Payment).where(cond).order_by(Payment.paid_at.desc())
            .limit(LIST_PAGE_SIZE).offset((page - 1) * LIST_PAGE_SIZE)
        ).all()
        rows = [{"out_trade_no": p.out_trade_no, "amount_fen": p.amount_fen, "paid_at": p.paid_at,
                 "description": p.description or ""} for p in payments]
        return DrillList("今日缴费", "payments", rows, total, page, _pages(total))
    if figure == "suspected" and key is None:
        rows = _suspected_outages()
        return DrillList("疑似停热（集中报不热、尚未登记停热）", "suspected", rows, len(rows))
    if figure == "arrears":
        rows = _money_by_district(now, local_day_start(now))
        return DrillList("各区欠费与今日收费", "money", rows, len(rows),
                         note="欠费：已过缴费截止日仍未缴清的本金；今日收费：今日到账的本金与滞纳金")
    if figure == "queue":
        calls = db.session.scalars(
            select(CallLog).where(CallLog.status == CallStatus.RINGING, CallLog.started_at >= now - QUEUE_LOOKBACK)
            .order_by(CallLog.started_at)).all()
        rows = [{"caller_phone": masked(c.caller_phone), "status": c.status, "agent": c.agent, "started_at": c.started_at,
                 "duration_s": int((now - c.started_at).total_seconds()), "recording_url": None,
                 "ticket_id": c.ticket_id} for c in calls]
        return DrillList("排队中的来电", "calls", rows, len(rows), note="时长为已等待时间")
    if figure == "conversations":
        convs = db.session.scalars(
            select(Conversation).where(Conversation.status.in_(ConversationStatus.OPEN))
            .order_by(Conversation.opened_at)).all()
        rows = [{"status": c.status, "status_label": ConversationStatus.LABELS.get(c.status, c.status),
                 "opened_at": c.opened_at, "agent": c.agent.name if c.agent else None,
                 "household": c.household.account_no if c.household else None,
                 "wait_seconds": int(((c.claimed_at or now) - c.opened_at).total_seconds()),
                 "last_activity_at": c.last_activity_at} for c in convs]
        return DrillList("在线会话（排队与接待中）", "conversations", rows, len(rows),
                         note="等待：从发起到客服接入；排队中的按至今计")
    if figure == "crews":
        rows = _crews(now)
        return DrillList("班组负荷与位置", "crew", rows, len(rows))
    if figure == "calls":
        model = CallLog
        cond = model.started_at >= local_day_start(now)
        total = db.session.scalar(select(func.count(model.id)).where(cond)) or 0
        calls = db.session.scalars(select(model).where(cond).order_by(model.started_at.desc())
                                   .limit(LIST_PAGE_SIZE).offset((page - 1) * LIST_PAGE_SIZE)).all()
        rows = [{"caller_phone": masked(c.caller_phone), "status": c.status, "agent": c.agent, "started_at": c.started_at,
                 "duration_s": c.duration_s, "recording_url": c.recording_url, "ticket_id": c.ticket_id}
                for c in calls]
        return DrillList("今日来电", "calls", rows, total, page, _pages(total))
    found = _ticket_condition(figure, key, now)
    if found is None:
        return None
    cond, title, order = found
    total = db.session.scalar(select(func.count(Ticket.id)).where(cond)) or 0
    tickets = db.session.scalars(
        select(Ticket).where(cond).order_by(order, Ticket.id.desc())
        .limit(LIST_PAGE_SIZE).offset((page - 1) * LIST_PAGE_SIZE)
    ).all()
    return DrillList(title, "tickets", [ticket_row(t, now) for t in tickets], total, page, _pages(total))


def _pages(total: int) -> int:
    return max((total + LIST_PAGE_SIZE - 1) // LIST_PAGE_SIZE, 1)
