"""A heated household (户), identified by its account number (户号)."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.area import Community, District, Station
from app.models.types import UTCDateTime, utcnow


class HouseholdStatus:
    ACTIVE = "active"          # heated
    SUSPENDED = "suspended"    # 报停: heating stopped at the owner's request this season
    CLOSED = "closed"          # account closed
    ALL = (ACTIVE, SUSPENDED, CLOSED)


class Household(db.Model):
    __tablename__ = "household"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_no: Mapped[str] = mapped_column(String(20), unique=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("district.id"), index=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    building: Mapped[str] = mapped_column(String(20))   # 楼号, e.g. "3"
    unit: Mapped[str] = mapped_column(String(10))       # 单元
    room: Mapped[str] = mapped_column(String(10))       # 室
    station_id: Mapped[int | None] = mapped_column(ForeignKey("station.id"), index=True)
    area_m2: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    owner_name: Mapped[str] = mapped_column(String(40))
    owner_phone: Mapped[str | None] = mapped_column(String(20), index=True)  # E.164 (app.phones)
    owner_phone_ext: Mapped[str | None] = mapped_column(String(10))          # 分机 of owner_phone
    status: Mapped[str] = mapped_column(String(16), default=HouseholdStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    district: Mapped[District] = relationship()
    community: Mapped[Community] = relationship()
    station: Mapped[Station | None] = relationship()

    @property
    def address(self) -> str:
        return f"{self.district.name}{self.community.name}{self.building}号楼{self.unit}单元{self.room}室"
