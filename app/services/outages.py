"""Outages (停热): the households they touch, and their lifecycle with notifications.

Each change that residents must hear about records one outbox row ("notify.outage"), in the
same transaction; the jobs fan it out to the bound residents of the affected households.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from flask import current_app, has_app_context
from sqlalchemy import and_, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from app.clock import local_now
from app.errors import InvalidTransitionError, NotFoundError, ValidationError
from app.extensions import db
from app.models import (
    Community, Household, Outage, OutageArea, OutageKind, OutageStatus, Station, Ticket, TicketState, utcnow,
)
from app.services import outbox

LIVE = (OutageStatus.SCHEDULED, OutageStatus.ACTIVE)
DEFAULT_STILL_COLD_HOURS = 6


def area_condition(areas: list[OutageArea]) -> ColumnElement[bool]:
    """SQL condition selecting the households inside any of these areas."""
    parts = []
    for a in areas:
        if a.station_id is not None:
            parts.append(Household.station_id == a.station_id)
        elif a.community_id is not None and a.building:
            parts.append(and_(Household.community_id == a.community_id, Household.building == a.building))
        elif a.community_id is not None:
            parts.append(Household.community_id == a.community_id)
    return or_(*parts) if parts else Household.id.is_(None)


def affected_household_ids(outage: Outage):
    """A SELECT of the ids of the households an outage touches (use as a subquery)."""
    return select(Household.id).where(area_condition(outage.areas))


def count_affected(areas: list[OutageArea]) -> int:
    return db.session.scalar(select(func.count(Household.id)).where(area_condition(areas))) or 0


def _touches(household: Household) -> ColumnElement[bool]:
    """SQL condition: an ``OutageArea`` row containing this household."""
    return or_(
        OutageArea.station_id == household.station_id,
        and_(OutageArea.community_id == household.community_id, OutageArea.building.is_(None)),
        and_(OutageArea.community_id == household.community_id, OutageArea.building == household.building),
    )


def outages_touching(household: Household, statuses=LIVE) -> list[Outage]:
    """Live outages whose area contains this household, soonest first."""
    return list(db.session.scalars(
        select(Outage).join(OutageArea).where(Outage.status.in_(statuses), _touches(household))
        .distinct().order_by(Outage.starts_at)
    ))


def _build_areas(areas: list[dict]) -> list[OutageArea]:
    if not areas:
        raise ValidationError("请选择停热范围", fields={"areas": ["至少选择一个换热站、小区或楼栋"]})
    built = []
    for i, a in enumerate(areas):
        station_id, community_id, building = a.get("station_id"), a.get("community_id"), a.get("building")
        if bool(station_id) == bool(community_id):
            raise ValidationError("停热范围有误", fields={f"areas.{i}": ["每项须指定一个换热站或一个小区"]})
        if station_id and db.session.get(Station, station_id) is None:
            raise NotFoundError(f"换热站 {station_id} 不存在")
        if community_id and db.session.get(Community, community_id) is None:
            raise NotFoundError(f"小区 {community_id} 不存在")
        built.append(OutageArea(station_id=station_id, community_id=community_id,
                                building=str(building) if building else None))
    return built


def _notify(outage: Outage, change: str) -> None:
    # Each change is its own notice; a rolled-back change takes its row with it.
    outbox.record("notify.outage", {"outage_id": outage.id, "change": change},
                  dedupe_key=f"outage:{outage.id}:{change}:{uuid.uuid4().hex}", ordering_key=f"outage:{outage.id}")


def create_outage(*, title: str, kind: str, reason: str, starts_at: datetime,
                  expected_end_at: datetime | None, areas: list[dict], created_by_id: int | None = None,
                  now: datetime | None = None) -> Outage:
    now = now or utcnow()
    if kind not in OutageKind.ALL:
        raise ValidationError("停热类型有误", fields={"kind": [f"可选：{'、'.join(OutageKind.LABELS.values())}"]})
    missing = {field: [message] for field, value, message in (("title", title, "请填写标题"), ("reason", reason, "请填写原因"))
               if not value.strip()}
    if missing:
        raise ValidationError("请填写标题和原因", fields=missing)
    if expected_end_at is not None and expected_end_at <= starts_at:
        raise ValidationError("预计恢复时间须晚于开始时间", fields={"expected_end_at": ["须晚于开始时间"]})
    outage = Outage(title=title.strip(), kind=kind, reason=reason.strip(), starts_at=starts_at,
                    expected_end_at=expected_end_at, created_by_id=created_by_id,
                    status=OutageStatus.ACTIVE if starts_at <= now else OutageStatus.SCHEDULED)
    outage.areas = _build_areas(areas)
    db.session.add(outage)
    db.session.flush()
    _notify(outage, "created")
    return outage


def _get_live(outage_id: int) -> Outage:
    outage = db.session.get(Outage, outage_id)
    if outage is None:
        raise NotFoundError("停热信息不存在")
    if outage.status not in LIVE:
        raise InvalidTransitionError(f"该停热已{OutageStatus.LABELS[outage.status]}，不能再修改")
    return outage


def update_outage(outage_id: int, *, expected_end_at: datetime | None = None, reason: str | None = None,
                  areas: list[dict] | None = None) -> Outage:
    outage = _get_live(outage_id)
    if expected_end_at is not None:
        if expected_end_at <= outage.starts_at:
            raise ValidationError("预计恢复时间须晚于开始时间", fields={"expected_end_at": ["须晚于开始时间"]})
        outage.expected_end_at = expected_end_at
    if reason:
        outage.reason = reason.strip()
    if areas is not None:
        outage.areas = _build_areas(areas)
    db.session.flush()
    _notify(outage, "updated")
    return outage


def start_due_outages(now: datetime | None = None) -> list[Outage]:
    """Scheduled outages whose start has come become active (run by cron)."""
    now = now or utcnow()
    due = list(db.session.scalars(select(Outage).where(Outage.status == OutageStatus.SCHEDULED,
                                                       Outage.starts_at <= now)))
    for outage in due:
        outage.status = OutageStatus.ACTIVE
        _notify(outage, "started")
    db.session.flush()
    return due


def mark_restored(outage_id: int, *, at: datetime | None = None) -> Outage:
    """The outage's own side of "heat is back": restored, and the area told (outbox row).
    ``outage_linking.restore_outage`` is the use case: it also tells each linked report."""
    outage = _get_live(outage_id)
    outage.status = OutageStatus.RESTORED
    outage.actual_end_at = at or utcnow()
    db.session.flush()
    _notify(outage, "restored")
    return outage


def cancel_outage(outage_id: int) -> Outage:
    outage = _get_live(outage_id)
    if outage.status != OutageStatus.SCHEDULED:
        raise InvalidTransitionError("停热已开始，只能标记为已恢复")
    outage.status = OutageStatus.CANCELLED
    db.session.flush()
    _notify(outage, "cancelled")
    return outage


# --- reports linked to outages (see docs/outage_linking.md) ----------------------------------

def local_time(dt: datetime | None) -> str:
    """Beijing (configured) local time as residents read it, e.g. 11月23日 18:00; 待定 when unknown."""
    if dt is None:
        return "待定"
    return local_now(dt).strftime("%m月%d日 %H:%M")


def area_text(outage: Outage) -> str:
    """The places an outage touches, as residents read them: 和平小区3号楼、一号站供热范围."""
    names = []
    for a in outage.areas:
        if a.station_id:
            st = db.session.get(Station, a.station_id)
            names.append(f"{st.name}供热范围" if st else "换热站供热范围")
        elif a.community_id:
            c = db.session.get(Community, a.community_id)
            name = c.name if c else "小区"
            names.append(f"{name}{a.building}号楼" if a.building else name)
    return "、".join(names)[:80] or "相关区域"


def active_outage_for(household: Household) -> Outage | None:
    """The active outage covering this household (the earliest started, ties: the lowest id), if any.

    One row (no DISTINCT over all of them): this runs for every new ticket."""
    return db.session.scalars(
        select(Outage).join(OutageArea).where(Outage.status == OutageStatus.ACTIVE, _touches(household))
        .order_by(Outage.starts_at, Outage.id).limit(1)).first()


def linked_message(outage: Outage) -> str:
    """What the reporter is told at once, in the channel they used."""
    end = (f"预计{local_time(outage.expected_end_at)}恢复供热" if outage.expected_end_at
           else "恢复时间待定，我们会及时通知")
    return (f"您所在区域正在停热：{outage.title}（原因：{outage.reason}），{end}。"
            "您的报修已登记并关联到该停热，无需重复报修，维修人员正在全力抢修；恢复供热后我们会通知您。")


def still_cold_hours() -> int:
    if has_app_context():
        return int(current_app.config.get("OUTAGE_STILL_COLD_HOURS", DEFAULT_STILL_COLD_HOURS))
    return DEFAULT_STILL_COLD_HOURS


def still_cold_until(outage: Outage) -> datetime:
    return (outage.actual_end_at or utcnow()) + timedelta(hours=still_cold_hours())


def waiting_on_outage():
    """SQL condition: an open report linked to an outage and still waiting on it (clock held)."""
    return and_(Ticket.outage_id.isnot(None), Ticket.sla_held_at.isnot(None), Ticket.state.in_(TicketState.OPEN))


def waiting_tickets(outage_id: int | None = None) -> list[Ticket]:
    """Open reports linked to an outage and still waiting on it (clock held)."""
    query = select(Ticket).where(waiting_on_outage())
    if outage_id is not None:
        query = query.where(Ticket.outage_id == outage_id)
    return list(db.session.scalars(query.order_by(Ticket.id)))


def held_report_of(household: Household, outage: Outage) -> Ticket | None:
    """The household's report already waiting on ``outage``: one outage, many messages, one
    ticket per home."""
    return db.session.scalar(select(Ticket).where(
        Ticket.household_id == household.id, Ticket.outage_id == outage.id, waiting_on_outage()).limit(1))
