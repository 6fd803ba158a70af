"""Company staff, their crews (班组) and each crew's area of responsibility."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import db
from app.models.types import UTCDateTime, utcnow


class Role:
    AGENT = "agent"            # 客服
    CREW_MEMBER = "crew_member"  # 维修/运行人员
    CREW_LEAD = "crew_lead"    # 班组长
    LEADER = "leader"          # 公司领导
    ADMIN = "admin"
    ALL = (AGENT, CREW_MEMBER, CREW_LEAD, LEADER, ADMIN)
    LABELS = {AGENT: "客服", CREW_MEMBER: "维修人员", CREW_LEAD: "班组长", LEADER: "公司领导", ADMIN: "管理员"}


class Crew(db.Model):
    __tablename__ = "crew"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    phone: Mapped[str | None] = mapped_column(String(20))

    members: Mapped[list["Staff"]] = relationship(back_populates="crew")
    areas: Mapped[list["CrewArea"]] = relationship(back_populates="crew", cascade="all, delete-orphan")


class CrewArea(db.Model):
    """One station or one community a crew answers for (used to route tickets)."""

    __tablename__ = "crew_area"
    __table_args__ = (UniqueConstraint("crew_id", "station_id", "community_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    crew_id: Mapped[int] = mapped_column(ForeignKey("crew.id"), index=True)
    station_id: Mapped[int | None] = mapped_column(ForeignKey("station.id"), index=True)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("community.id"), index=True)

    crew: Mapped[Crew] = relationship(back_populates="areas")


class Staff(db.Model):
    __tablename__ = "staff"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(40))
    phone: Mapped[str | None] = mapped_column(String(20), index=True)  # E.164 (app.phones)
    phone_ext: Mapped[str | None] = mapped_column(String(10))          # 分机
    role: Mapped[str] = mapped_column(String(20), index=True)
    crew_id: Mapped[int | None] = mapped_column(ForeignKey("crew.id"), index=True)
    password_hash: Mapped[str | None] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    on_duty: Mapped[bool] = mapped_column(Boolean, default=False)  # leader on duty (值班领导)
    # Last known position, from a location the crew member sent in WeChat.
    last_latitude: Mapped[float | None] = mapped_column(Float)
    last_longitude: Mapped[float | None] = mapped_column(Float)
    last_location_label: Mapped[str | None] = mapped_column(String(200))
    last_located_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    crew: Mapped[Crew | None] = relationship(back_populates="members")

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)
