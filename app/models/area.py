"""Where households are: districts, communities (小区) and heat-exchange stations (换热站)."""
from __future__ import annotations

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db


class District(db.Model):
    __tablename__ = "district"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)

    communities: Mapped[list["Community"]] = relationship(back_populates="district")


class Station(db.Model):
    __tablename__ = "station"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    address: Mapped[str | None] = mapped_column(String(200))


class Community(db.Model):
    __tablename__ = "community"
    __table_args__ = (UniqueConstraint("district_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("district.id"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    # The station that serves most of the community; single households may differ.
    station_id: Mapped[int | None] = mapped_column(ForeignKey("station.id"), index=True)

    district: Mapped[District] = relationship(back_populates="communities")
    station: Mapped[Station | None] = relationship()
