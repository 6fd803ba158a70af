"""Sessions that can be ended (plain Python: rows and rules, no request objects, no commits).

Mini-program logins (``ApiSession``): a login opens a family. Its short-lived access tokens
and its refresh token name the family (``mobile_api.auth`` signs them); every request checks
that the family is neither revoked nor past its absolute end. A refresh moves the family to
the next generation — the refresh token presented is retired — and presenting a retired one
again revokes the whole family (OAuth 2.0 refresh-token rotation with reuse detection,
RFC 9700 §4.14.2): whoever holds a copy, thief or owner, must log in again.

Console and dashboard sessions (``StaffSession``): a sign-in stores the hash of a random key
that the signed session cookie carries; signing out, deactivation and a password reset revoke
the rows, a session ends by itself after ``STAFF_SESSION_LIFETIME``, and every request checks
its row.

Both end together when staff are deactivated; a WeChat that loses its staff binding loses its
mini-program sessions (its next login gets resident rights only).
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, or_, select, update

from app.errors import UnauthorizedError
from app.extensions import db
from app.models import ApiSession, Staff, StaffSession, WechatUser
from app.models.types import utcnow

API_FAMILY_LIFETIME = timedelta(days=30)   # a login's absolute end, however often refreshed
STAFF_SESSION_LIFETIME = timedelta(days=7)  # a console/dashboard sign-in never signed out
PURGE_AFTER = timedelta(days=30)           # ended sessions are kept this long (for inquiries)


class SessionEndedError(UnauthorizedError):
    """The login was ended (signed out, revoked) or reached its absolute end: log in again."""

    code = "session_ended"


class RefreshReusedError(UnauthorizedError):
    """A retired refresh token came back: the family is revoked (the caller must commit that)."""

    code = "refresh_token_reused"


# --- the mini-program ---------------------------------------------------------------------------

def open_api_session(user: WechatUser) -> ApiSession:
    """A new login family for ``user``, ending ``API_FAMILY_LIFETIME`` from now."""
    now = utcnow()
    family = ApiSession(wechat_user_id=user.id, generation=0, created_at=now, expires_at=now + API_FAMILY_LIFETIME)
    db.session.add(family)
    db.session.flush()
    return family


def api_session_user(session_id: int) -> tuple[ApiSession, WechatUser]:
    """The live family ``session_id`` and the person it belongs to (after a merge: the survivor)."""
    row = db.session.execute(
        select(ApiSession, WechatUser).join(WechatUser, WechatUser.id == ApiSession.wechat_user_id)
        .where(ApiSession.id == session_id)
    ).first()
    if row is None:
        raise UnauthorizedError("登录凭证无效，请重新登录", code="token_invalid")
    family, user = row
    _require_live(family)
    return family, user


def _require_live(family: ApiSession) -> None:
    if family.revoked_at is not None:
        raise SessionEndedError("登录已失效，请重新登录")
    if family.expires_at <= utcnow():
        raise SessionEndedError("登录已超过有效期，请重新登录", code="session_expired")


def rotate_api_session(session_id: int, generation: int) -> ApiSession:
    """Trade the refresh token of ``generation`` for the next one; the presented one retires.

    One conditional UPDATE, so two refreshes with one token cannot both win. A token of an
    older generation is a reuse: the family is revoked and ``RefreshReusedError`` raised —
    the caller commits before answering, so the revocation stays."""
    now = utcnow()
    moved = db.session.execute(
        update(ApiSession)
        .where(ApiSession.id == session_id, ApiSession.generation == generation,
               ApiSession.revoked_at.is_(None), ApiSession.expires_at > now)
        .values(generation=ApiSession.generation + 1, refreshed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    family = db.session.get(ApiSession, session_id, populate_existing=True)
    if family is None:
        raise UnauthorizedError("登录凭证无效，请重新登录", code="token_invalid")
    if moved == 1:
        return family
    _require_live(family)
    # Live, yet the generation moved on: this token was already traded once.
    revoke_api_session(family, "refresh_reused")
    raise RefreshReusedError("登录凭证已被使用过，为安全起见请重新登录")


def revoke_api_session(family: ApiSession, reason: str) -> None:
    if family.revoked_at is None:
        family.revoked_at, family.revoked_reason = utcnow(), reason
        db.session.flush()


def revoke_api_sessions_of(user_ids: list[int], reason: str) -> int:
    """End every live login family of these WeChat users; how many were ended."""
    if not user_ids:
        return 0
    result = db.session.execute(
        update(ApiSession).where(ApiSession.wechat_user_id.in_(user_ids), ApiSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason).execution_options(synchronize_session="fetch"))
    return result.rowcount


# --- the console and the dashboard -------------------------------------------------------------

def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def open_staff_session(staff: Staff) -> str:
    """A new browser session for ``staff``; returns the key the session cookie carries."""
    key = secrets.token_urlsafe(32)
    now = utcnow()
    db.session.add(StaffSession(key_hash=_key_hash(key), staff_id=staff.id, created_at=now,
                                expires_at=now + STAFF_SESSION_LIFETIME))
    db.session.flush()
    return key


def staff_for_session(key: str | None) -> Staff | None:
    """The active staff member whose live session has this key; None when it was ended."""
    if not key or not isinstance(key, str):
        return None
    return db.session.scalar(
        select(Staff).join(StaffSession, StaffSession.staff_id == Staff.id)
        .where(StaffSession.key_hash == _key_hash(key), StaffSession.revoked_at.is_(None),
               StaffSession.expires_at > utcnow(), Staff.active.is_(True))
    )


def end_staff_session(key: str | None, reason: str = "logout") -> None:
    if not key or not isinstance(key, str):
        return
    db.session.execute(
        update(StaffSession).where(StaffSession.key_hash == _key_hash(key), StaffSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason).execution_options(synchronize_session=False))


def end_staff_sessions(staff: Staff, reason: str) -> int:
    """End every browser session of ``staff`` (a password reset)."""
    result = db.session.execute(
        update(StaffSession).where(StaffSession.staff_id == staff.id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason).execution_options(synchronize_session=False))
    return result.rowcount


# --- what ends them all --------------------------------------------------------------------------

def end_all_sessions_of_staff(staff: Staff, reason: str) -> None:
    """Deactivation: the console, the dashboard and the mini-program on their bound WeChat."""
    end_staff_sessions(staff, reason)
    end_wechat_sessions_of_staff(staff, reason)


def end_wechat_sessions_of_staff(staff: Staff, reason: str) -> int:
    """The mini-program logins of the WeChat bound to ``staff`` (call before unbinding it)."""
    user_ids = list(db.session.scalars(select(WechatUser.id).where(WechatUser.staff_id == staff.id)))
    return revoke_api_sessions_of(user_ids, reason)


def purge_ended_sessions() -> dict[str, int]:
    """Delete sessions ended or expired more than ``PURGE_AFTER`` ago (periodic job)."""
    cutoff = utcnow() - PURGE_AFTER
    api = db.session.execute(delete(ApiSession).where(
        or_(ApiSession.expires_at < cutoff, ApiSession.revoked_at < cutoff))).rowcount
    staff = db.session.execute(delete(StaffSession).where(
        or_(StaffSession.expires_at < cutoff, StaffSession.revoked_at < cutoff))).rowcount
    return {"api_sessions": api, "staff_sessions": staff}
