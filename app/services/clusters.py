"""Spotting an unknown outage (疑似停热): many no-heat reports from one place, no outage recorded.

``note_heat_report`` runs inside ``tickets.create_ticket`` for every no-heat/low-temperature
report that no active outage explains. It counts such reports of the last
``CLUSTER_WINDOW_MINUTES`` from the household's station (and, if the household has none or
the station has not reached it, its community); at ``CLUSTER_THRESHOLD`` reports it opens an
``outage_cluster`` row and alerts the responsible crew lead(s) and the leaders on duty.

Once per cluster: the row's ``open_key`` ("station:<id>" / "community:<id>") is unique, so
only the report that inserts it sends the alert (INSERT ... ON CONFLICT DO NOTHING — a
concurrent report simply counts). Later reports update the count. A cluster ends when staff
turn it into an outage (``outage_linking.convert_cluster``) or when no report came for a whole window
(expired lazily, at the next report there); only then can a new cluster start.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app, has_app_context
from sqlalchemy import func, select

from app.dbutil import insert_or_skip
from app.extensions import db
from app.models import (
    ClusterStatus, Community, Crew, CrewArea, Household, OutageCluster, Role, Staff, Station, Ticket,
    TicketCategory, TicketState, utcnow,
)
from app.services import outbox
from app.services.routing import responsible_crew

HEAT = (TicketCategory.NO_HEAT, TicketCategory.LOW_TEMPERATURE)


def _setting(name: str, default: int) -> int:
    return int(current_app.config.get(name, default)) if has_app_context() else default


def threshold() -> int:
    return _setting("CLUSTER_THRESHOLD", 10)


def window() -> timedelta:
    return timedelta(minutes=_setting("CLUSTER_WINDOW_MINUTES", 30))


def _scopes(household: Household) -> list[tuple[str, dict]]:
    """(key, columns of the cluster row), the station first."""
    scopes = []
    if household.station_id is not None:
        scopes.append((f"station:{household.station_id}", {"station_id": household.station_id}))
    scopes.append((f"community:{household.community_id}", {"community_id": household.community_id}))
    return scopes


def _recent_reports(since: datetime) -> list:
    """(station_id, community_id, created_at) of every heat report of the window, all places.

    Driven by the index on ``ticket.created_at`` with the household joined by its key, so the
    cost follows the window's intake — never the size of the ticket table or of a station
    (a join that starts from the station's households reads all of their tickets' index).
    """
    return db.session.execute(
        select(Household.station_id, Household.community_id, Ticket.created_at)
        .select_from(Ticket).join(Household, Household.id == Ticket.household_id)
        .where(Ticket.category.in_(HEAT), Ticket.created_at >= since, Ticket.outage_id.is_(None),
               Ticket.state != TicketState.CANCELLED)).all()


def note_heat_report(ticket: Ticket, *, now: datetime | None = None) -> OutageCluster | None:
    """Count this report towards its place's cluster; open one (and alert) at the threshold."""
    household = ticket.household
    if household is None:
        return None
    now = now or utcnow()
    since = now - window()
    recent = None
    scopes = _scopes(household)
    open_now = {c.open_key: c for c in db.session.scalars(
        select(OutageCluster).where(OutageCluster.open_key.in_([key for key, _ in scopes])))}
    for key, columns in scopes:
        cluster = open_now.get(key)
        if cluster is not None and cluster.last_report_at < since:
            resolve(cluster, ClusterStatus.EXPIRED, now)  # quiet for a whole window: that one is over
            cluster = None
        if cluster is not None:
            # Already alerted (once per cluster): a counter, incremented in SQL so concurrent
            # reports all count, instead of recounting the window.
            cluster.report_count = OutageCluster.report_count + 1
            cluster.last_report_at = max(cluster.last_report_at, now)
            db.session.flush()
            return cluster
        if recent is None:
            recent = _recent_reports(since)
        (column, value), = columns.items()
        times = [row.created_at for row in recent if getattr(row, column) == value]
        if len(times) < threshold():
            continue
        inserted = db.session.execute(
            insert_or_skip(OutageCluster.__table__, conflict=["open_key"]).values(
                scope=key, open_key=key, status=ClusterStatus.OPEN, report_count=len(times),
                first_report_at=min(times), last_report_at=now, created_at=now, **columns)
            .returning(OutageCluster.__table__.c.id)).first()
        if inserted is None:
            return None  # a concurrent report opened it (and alerted) first
        cluster = db.session.get(OutageCluster, inserted[0])
        _alert(cluster, household)
        return cluster
    return None


def resolve(cluster: OutageCluster, status: str, now: datetime) -> None:
    """The cluster is over (expired, or converted by ``outage_linking.convert_cluster``)."""
    cluster.status, cluster.open_key, cluster.resolved_at = status, None, now
    db.session.flush()


def _crew_for_scope(cluster: OutageCluster, household: Household | None) -> Crew | None:
    if cluster.station_id is not None:
        crew = db.session.scalar(select(Crew).join(CrewArea, CrewArea.crew_id == Crew.id)
                                 .where(CrewArea.station_id == cluster.station_id).order_by(Crew.id).limit(1))
        if crew is not None:
            return crew
    return responsible_crew(household) if household is not None else None


def recipients(cluster: OutageCluster, household: Household | None = None) -> list[int]:
    """The responsible crew's lead(s), then the leaders on duty."""
    crew = _crew_for_scope(cluster, household)
    ids = []
    if crew is not None:
        ids += db.session.scalars(select(Staff.id).where(Staff.crew_id == crew.id, Staff.role == Role.CREW_LEAD,
                                                         Staff.active.is_(True)).order_by(Staff.id))
    ids += db.session.scalars(select(Staff.id).where(Staff.role == Role.LEADER, Staff.on_duty.is_(True),
                                                     Staff.active.is_(True)).order_by(Staff.id))
    return list(dict.fromkeys(ids))


def _alert(cluster: OutageCluster, household: Household) -> None:
    for staff_id in recipients(cluster, household):
        outbox.record("notify.cluster_alert", {"cluster_id": cluster.id, "staff_id": staff_id},
                      dedupe_key=f"cluster_alert:{cluster.id}:{staff_id}")


def place_name(cluster: OutageCluster) -> str:
    if cluster.station_id is not None:
        station = db.session.get(Station, cluster.station_id)
        return station.name if station else f"换热站{cluster.station_id}"
    community = db.session.get(Community, cluster.community_id)
    return community.name if community else f"小区{cluster.community_id}"


def cluster_reports(cluster: OutageCluster, *, open_only: bool = True) -> list[Ticket]:
    """The no-heat reports of the cluster's place since its first report, oldest first."""
    condition = (Household.station_id == cluster.station_id if cluster.station_id is not None
                 else Household.community_id == cluster.community_id)
    query = (select(Ticket).join(Household, Household.id == Ticket.household_id)
             .where(condition, Ticket.category.in_(HEAT), Ticket.created_at >= cluster.first_report_at)
             .order_by(Ticket.created_at, Ticket.id))
    if open_only:
        query = query.where(Ticket.state.in_(TicketState.OPEN))
    return list(db.session.scalars(query))


def open_cluster_count() -> int:
    """How many suspected outages wait for staff (the console menu's badge)."""
    return db.session.scalar(select(func.count(OutageCluster.id))
                             .where(OutageCluster.status == ClusterStatus.OPEN)) or 0


def open_clusters() -> list[OutageCluster]:
    return list(db.session.scalars(select(OutageCluster).where(OutageCluster.status == ClusterStatus.OPEN)
                                   .order_by(OutageCluster.created_at.desc())))


