"""Heating outages (停热) and the stations, communities or buildings they touch."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.types import UTCDateTime, utcnow


class OutageKind:
    PLANNED = "planned"
    UNPLANNED = "unplanned"
    ALL = (PLANNED, UNPLANNED)
    LABELS = {PLANNED: "计划停热", UNPLANNED: "临时停热"}


class OutageStatus:
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    RESTORED = "restored"
    CANCELLED = "cancelled"
    ALL = (SCHEDULED, ACTIVE, RESTORED, CANCELLED)
    LABELS = {SCHEDULED: "计划中", ACTIVE: "停热中", RESTORED: "已恢复", CANCELLED: "已取消"}


class Outage(db.Model):
    __tablename__ = "outage"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default=OutageStatus.SCHEDULED, index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expected_end_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    actual_end_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    areas: Mapped[list["OutageArea"]] = relationship(back_populates="outage", cascade="all, delete-orphan")


class OutageArea(db.Model):
    """One affected area: a whole station, a whole community, or one building of a community."""

    __tablename__ = "outage_area"
    id: Mapped[int] = mapped_column(primary_key=True)
    outage_id: Mapped[int] = mapped_column(ForeignKey("outage.id"), index=True)
    station_id: Mapped[int | None] = mapped_column(ForeignKey("station.id"), index=True)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("community.id"), index=True)
    building: Mapped[str | None] = mapped_column(String(20))  # with community_id: one building

    outage: Mapped[Outage] = relationship(back_populates="areas")


class ClusterStatus:
    OPEN = "open"            # alerted, waiting for staff
    CONVERTED = "converted"  # turned into an outage
    EXPIRED = "expired"      # no new report within the window
    ALL = (OPEN, CONVERTED, EXPIRED)
    LABELS = {OPEN: "待处理", CONVERTED: "已转为停热", EXPIRED: "已过期"}


class OutageCluster(db.Model):
    """A burst of no-heat reports from one station or community with no outage recorded there
    (疑似停热). ``open_key`` is the scope ("station:<id>" / "community:<id>") while the cluster is
    open and NULL after: the unique constraint allows one open cluster per place, so its alert
    goes out once; a new cluster can start only after the previous one is resolved or expired."""

    __tablename__ = "outage_cluster"
    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(30), index=True)            # station:<id> | community:<id>
    open_key: Mapped[str | None] = mapped_column(String(30), unique=True)
    station_id: Mapped[int | None] = mapped_column(ForeignKey("station.id"))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("community.id"))
    status: Mapped[str] = mapped_column(String(12), default=ClusterStatus.OPEN)
    report_count: Mapped[int] = mapped_column(Integer, default=0)
    first_report_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_report_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outage_id: Mapped[int | None] = mapped_column(ForeignKey("outage.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
