"""Server-side sessions, so that a sign-in can be ended: the mini-program's login families
and the staff console's browser sessions (app/services/sessions.py)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import UTCDateTime, utcnow


class ApiSession(db.Model):
    """One mini-program login and every token refreshed from it (a refresh-token family).

    ``generation`` counts refreshes: only the refresh token of the current generation may be
    traded for the next; presenting an older one again means it was copied, and the whole
    family is revoked. ``expires_at`` is the family's absolute end, however often it is
    refreshed. A merge of two WeChat users moves the row to the survivor with every other
    reference (``app.services.identity``), so its tokens keep working for the same person.
    """

    __tablename__ = "api_session"
    id: Mapped[int] = mapped_column(primary_key=True)
    wechat_user_id: Mapped[int] = mapped_column(ForeignKey("wechat_user.id"), index=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # logout | refresh_reused | staff_deactivated | wechat_unbound | linked
    revoked_reason: Mapped[str | None] = mapped_column(String(30))


class StaffSession(db.Model):
    """One signed-in browser of a staff member (console or dashboard).

    The session cookie carries a random key; only its SHA-256 is stored. Signing out, a
    deactivation or a password reset sets ``revoked_at``; ``expires_at`` bounds a session
    that is never signed out. Every request checks both.
    """

    __tablename__ = "staff_session"
    id: Mapped[int] = mapped_column(primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # logout | replaced (signed in again) | staff_deactivated | password_reset
    revoked_reason: Mapped[str | None] = mapped_column(String(30))
