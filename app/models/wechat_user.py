"""A person on WeChat, the households they bound, and one-time staff-binding codes."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.household import Household
from app.models.staff import Staff
from app.models.types import UTCDateTime, utcnow


class WechatUser(db.Model):
    __tablename__ = "wechat_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    oa_openid: Mapped[str | None] = mapped_column(String(64), unique=True)   # official account
    mp_openid: Mapped[str | None] = mapped_column(String(64), unique=True)   # mini-program
    unionid: Mapped[str | None] = mapped_column(String(64), unique=True)
    nickname: Mapped[str | None] = mapped_column(String(64))
    subscribed: Mapped[bool] = mapped_column(Boolean, default=False)
    subscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Last time the user wrote to the official account: opens the 48-hour window.
    last_interaction_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    staff: Mapped[Staff | None] = relationship()
    bindings: Mapped[list["HouseholdBinding"]] = relationship(
        back_populates="wechat_user", cascade="all, delete-orphan"
    )


class HouseholdBinding(db.Model):
    __tablename__ = "household_binding"
    __table_args__ = (UniqueConstraint("wechat_user_id", "household_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    wechat_user_id: Mapped[int] = mapped_column(ForeignKey("wechat_user.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    proof: Mapped[str] = mapped_column(String(20))  # owner_name | phone_last4 | qr | staff
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    wechat_user: Mapped[WechatUser] = relationship(back_populates="bindings")
    household: Mapped[Household] = relationship()


class StaffBindCode(db.Model):
    """One-time code behind a staff-binding QR code."""

    __tablename__ = "staff_bind_code"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_by_id: Mapped[int | None] = mapped_column(ForeignKey("wechat_user.id"))


class SubscribeConsent(db.Model):
    """Mini-program subscribe-message consent: each 'accept' buys one send of a template."""

    __tablename__ = "subscribe_consent"
    __table_args__ = (UniqueConstraint("wechat_user_id", "template_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    wechat_user_id: Mapped[int] = mapped_column(ForeignKey("wechat_user.id"), index=True)
    template_id: Mapped[str] = mapped_column(String(64))
    remaining: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
