"""Outages (停热): the households they touch, and their lifecycle with notifications.

Each change that residents must hear about records one outbox row ("notify.outage"), in the
same transaction; the jobs fan it out to the bound residents of the affected households.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from app.errors import InvalidTransitionError, NotFoundError, ValidationError
from app.extensions import db
from app.models import Community, Household, Outage, OutageArea, OutageKind, OutageStatus, Station, utcnow
from app.services import outbox

LIVE = (OutageStatus.SCHEDULED, OutageStatus.ACTIVE)


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


def outages_touching(household: Household, statuses=LIVE) -> list[Outage]:
    """Live outages whose area contains this household, soonest first."""
    touches = or_(
        OutageArea.station_id == household.station_id,
        and_(OutageArea.community_id == household.community_id, OutageArea.building.is_(None)),
        and_(OutageArea.community_id == household.community_id, OutageArea.building == household.building),
    )
    return list(db.session.scalars(
        select(Outage).join(OutageArea).where(Outage.status.in_(statuses), touches)
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
    if not title.strip() or not reason.strip():
        raise ValidationError("请填写标题和原因", fields={"title": ["必填"], "reason": ["必填"]})
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


def restore_outage(outage_id: int, *, at: datetime | None = None) -> Outage:
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
