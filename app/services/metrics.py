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
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context
from sqlalchemy import and_, case, func, or_, select

from app.extensions import db
from app.models import (
    Bill, BillStatus, Crew, District, HeatingSeason, Household, Outage, OutageStatus, Payment, PaymentState,
    Priority, ReconciliationMismatch, ReconciliationRun, Role, Staff, Ticket, TicketCategory, TicketSource,
    TicketState, TicketType, utcnow,
)
from app.services.outages import LIVE, count_affected

log = logging.getLogger(__name__)

WINDOW_DAYS = 7              # response/repair times, satisfaction and the charts: the last 7 days
LIST_PAGE_SIZE = 50
SUMMARY_CACHE_TTL = 120      # seconds; the stamp changes at least every minute anyway
OPEN = TicketState.OPEN


# --- time helpers ---------------------------------------------------------------------------

def _tz() -> ZoneInfo:
    name = current_app.config.get("TIMEZONE", "Asia/Shanghai") if has_app_context() else "Asia/Shanghai"
    return ZoneInfo(name)


def local_day_start(now: datetime) -> datetime:
    """Midnight of ``now``'s local (Beijing) day, as an aware datetime."""
    local = now.astimezone(_tz())
    return datetime.combine(local.date(), time(0), tzinfo=_tz())


def _seconds_between(later, earlier):
    """SQL expression: seconds from ``earlier`` to ``later`` (PostgreSQL or SQLite)."""
    if db.engine.dialect.name == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _repair_end():
    """A repair ends with the crew's answer; tickets closed directly end when closed."""
    return func.coalesce(Ticket.replied_at, Ticket.closed_at)


# --- the bridge's call log ------------------------------------------------------------------

def _call_log_model():
    """The phone bridge's call log model (app.models.CallLog), None before the bridge has one."""
    import app.models as models

    return getattr(models, "CallLog", None)


def calls_today(now: datetime) -> dict | None:
    """Today's calls by status plus ``total``, from the bridge's service; None without a call log."""
    try:
        from app.services.bridge import calls_today as bridge_calls_today
    except ImportError:
        return None
    return bridge_calls_today(now)


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
    open_, overdue, emergency = db.session.execute(
        select(
            func.count(Ticket.id),
            func.coalesce(func.sum(case((Ticket.finish_by < now, 1), else_=0)), 0),
            func.coalesce(func.sum(case((Ticket.priority == Priority.EMERGENCY, 1), else_=0)), 0),
        ).where(Ticket.state.in_(OPEN))
    ).one()
    # Filtered by state in the CASE, not the WHERE: a WHERE on state would tempt the planner
    # into the state index, where "closed" is nearly the whole history.
    closed_today = db.session.scalar(
        select(func.coalesce(func.sum(case((Ticket.state == TicketState.CLOSED, 1), else_=0)), 0))
        .where(Ticket.closed_at >= day_start)
    ) or 0
    return {"today": today, "open": open_, "overdue": int(overdue), "emergency_open": int(emergency),
            "closed_today": closed_today}


def _times(since: datetime) -> dict:
    response = _seconds_between(Ticket.accepted_at, Ticket.created_at)
    avg_response, n_response = db.session.execute(
        select(func.avg(response), func.count(Ticket.id)).where(Ticket.accepted_at >= since)
    ).one()
    end = _repair_end()
    repair = _seconds_between(end, Ticket.created_at)
    # Tickets finished in the window: answered by a crew, or closed directly by an agent.
    finished = or_(Ticket.replied_at >= since, and_(Ticket.replied_at.is_(None), Ticket.closed_at >= since))
    avg_repair, n_repair = db.session.execute(
        select(func.avg(repair), func.count(Ticket.id)).where(finished)
    ).one()
    return {
        "first_response_minutes": round(float(avg_response) / 60, 1) if avg_response is not None else None,
        "response_count": n_response,
        "repair_hours": round(float(avg_repair) / 3600, 1) if avg_repair is not None else None,
        "repair_count": n_repair,
    }


def _satisfaction(since: datetime) -> dict:
    avg, n, good = db.session.execute(
        select(func.avg(Ticket.rating), func.count(Ticket.id),
               func.coalesce(func.sum(case((Ticket.rating >= 4, 1), else_=0)), 0))
        .where(Ticket.rated_at >= since, Ticket.rating.is_not(None))
    ).one()
    return {
        "average": round(float(avg), 2) if avg is not None else None,
        "count": n,
        "satisfied_rate": round(int(good) / n, 3) if n else None,
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


def _fees(now: datetime, day_start: datetime) -> dict:
    today = now.astimezone(_tz()).date()
    season = current_season(today)
    result: dict = {"season": None, "rate": None, "due_fen": 0, "paid_fen": 0}
    if season is not None:
        due, paid = db.session.execute(
            select(func.coalesce(func.sum(Bill.amount_fen), 0),
                   func.coalesce(func.sum(func.min(Bill.paid_fen, Bill.amount_fen)
                                          if db.engine.dialect.name == "sqlite"
                                          else func.least(Bill.paid_fen, Bill.amount_fen)), 0))
            .where(Bill.season_id == season.id, Bill.status != BillStatus.WAIVED)
        ).one()
        result.update(season=season.code, due_fen=int(due), paid_fen=int(paid),
                      rate=round(int(paid) / int(due), 4) if due else None)
    count, total = db.session.execute(
        select(func.count(Payment.id), func.coalesce(func.sum(Payment.amount_fen), 0))
        .where(Payment.paid_at >= day_start, Payment.state == PaymentState.PAID)
    ).one()
    result.update(payments_today=count, payments_today_fen=int(total))
    return result


def _crews(now: datetime) -> list[dict]:
    crew = func.coalesce(Ticket.crew_id, 0)  # an expression: see _unindexed
    load = {crew_id: (n, int(late)) for crew_id, n, late in db.session.execute(
        select(crew, func.count(Ticket.id),
               func.coalesce(func.sum(case((Ticket.finish_by < now, 1), else_=0)), 0))
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


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def dashboard_summary(now: datetime | None = None) -> dict:
    """Every figure of the leader dashboard, as JSON-ready values."""
    now = now or utcnow()
    day_start = local_day_start(now)
    since = now - timedelta(days=WINDOW_DAYS)
    return {
        "generated_at": now.isoformat(),
        "window_days": WINDOW_DAYS,
        "calls_today": calls_today(now),
        "tickets": _ticket_counts(now, day_start),
        "times": _times(since),
        "satisfaction": _satisfaction(since),
        "by_type": _by_type(since),
        "by_district": _by_district(since),
        "outages": _outages(),
        "fees": _fees(now, day_start),
        "reconciliation": _reconciliation(),
        "crews": _crews(now),
    }


def _reconciliation() -> dict:
    """Open differences between WeChat Pay's trade bills and our records (console 对账)."""
    from app.services.reconciliation import open_mismatch_count

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
        int(now.timestamp() // 60),
    ]
    model = _call_log_model()
    if model is not None:
        parts.append(db.session.scalar(select(func.max(model.id))))
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
}


def _ticket_condition(figure: str, key: str | None, now: datetime):
    day_start = local_day_start(now)
    since = now - timedelta(days=WINDOW_DAYS)
    if figure == "today":
        return Ticket.created_at >= day_start, TICKET_FIGURES[figure], Ticket.created_at.desc()
    if figure == "open":
        return Ticket.state.in_(OPEN), TICKET_FIGURES[figure], Ticket.finish_by.asc()
    if figure == "overdue":
        return and_(Ticket.state.in_(OPEN), Ticket.finish_by < now), TICKET_FIGURES[figure], Ticket.finish_by.asc()
    if figure == "emergency":
        return (and_(Ticket.state.in_(OPEN), Ticket.priority == Priority.EMERGENCY), TICKET_FIGURES[figure],
                Ticket.created_at.desc())
    if figure == "closed_today":
        return (and_(Ticket.closed_at >= day_start, Ticket.state == TicketState.CLOSED), TICKET_FIGURES[figure],
                Ticket.closed_at.desc())
    if figure == "responded":
        return Ticket.accepted_at >= since, TICKET_FIGURES[figure], Ticket.accepted_at.desc()
    if figure == "repaired":
        finished = or_(Ticket.replied_at >= since, and_(Ticket.replied_at.is_(None), Ticket.closed_at >= since))
        return finished, TICKET_FIGURES[figure], Ticket.created_at.desc()
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
    if figure == "crew" and key:
        crew = db.session.get(Crew, _int(key))
        if crew is None:
            return None
        return (and_(Ticket.state.in_(OPEN), Ticket.crew_id == crew.id), f"{crew.name}未办结工单",
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
        "overdue": bool(t.state in OPEN and t.finish_by is not None and t.finish_by < now),
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
    if figure == "crews":
        rows = _crews(now)
        return DrillList("班组负荷与位置", "crew", rows, len(rows))
    if figure == "calls":
        model = _call_log_model()
        if model is None:
            return DrillList("今日来电", "calls", [], 0, note="话务系统尚未接入通话记录")
        cond = model.started_at >= local_day_start(now)
        total = db.session.scalar(select(func.count(model.id)).where(cond)) or 0
        calls = db.session.scalars(select(model).where(cond).order_by(model.started_at.desc())
                                   .limit(LIST_PAGE_SIZE).offset((page - 1) * LIST_PAGE_SIZE)).all()
        rows = [{"caller_phone": c.caller_phone, "status": c.status, "agent": c.agent, "started_at": c.started_at,
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
