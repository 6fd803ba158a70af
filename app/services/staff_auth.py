"""Who may use the staff console and the leader dashboard (plain Python, no request objects).

- Password sign-in for staff (``Staff.check_password``; hashes from werkzeug), with a
  per-username limit on failed attempts kept in Redis (shared by every process).
- WeChat sign-in for leaders: the official-account openid a web-OAuth exchange returned,
  mapped to the staff member bound to that WeChat user.
- Roles: the console is for customer service (agents) and admins; leaders may read it;
  the dashboard is for leaders and admins.
- CSRF tokens: one random token per session, compared in constant time.
"""
from __future__ import annotations

import hmac
import secrets

from sqlalchemy import func, select

from app.errors import PermissionDeniedError, TooManyAttemptsError, UnauthorizedError
from app.extensions import db
from app.models import Role, Staff, WechatUser

CONSOLE_ROLES = (Role.AGENT, Role.ADMIN, Role.LEADER)   # who may open the console at all
CONSOLE_WRITE_ROLES = (Role.AGENT, Role.ADMIN)          # who may change anything there
DASHBOARD_ROLES = (Role.LEADER, Role.ADMIN)

MAX_FAILED_LOGINS = 8          # per username ...
FAILED_LOGIN_WINDOW = 15 * 60  # ... in this many seconds


class LoginFailedError(UnauthorizedError):
    code = "login_failed"


def _attempts_key(username: str) -> str:
    return f"staff:login-failures:{username.lower()}"


def locked_usernames(usernames, *, redis) -> set[str]:
    """Which of these usernames are locked out by too many failed sign-ins right now."""
    names = [u for u in usernames if u]
    if not names:
        return set()
    counts = redis.mget([_attempts_key(u) for u in names])
    return {u for u, n in zip(names, counts) if int(n or 0) >= MAX_FAILED_LOGINS}


def clear_failed_logins(username: str, *, redis) -> None:
    """Forget the failed sign-ins of a username (an admin unlocking it, or a new password)."""
    redis.delete(_attempts_key(username))


def authenticate(username: str, password: str, *, redis, roles=CONSOLE_ROLES) -> Staff:
    """The active staff member with this username and password, allowed one of ``roles``.

    Wrong credentials raise ``LoginFailedError`` with one message whatever was wrong (no
    hint whether the username exists); too many failures lock the username for a while.
    """
    username = (username or "").strip()
    key = _attempts_key(username)
    if int(redis.get(key) or 0) >= MAX_FAILED_LOGINS:
        raise TooManyAttemptsError("登录失败次数过多，请15分钟后再试")
    staff = db.session.scalar(select(Staff).where(func.lower(Staff.username) == username.lower())) \
        if username else None
    if staff is None or not staff.active or not staff.check_password(password or ""):
        pipe = redis.pipeline()
        pipe.set(key, 0, ex=FAILED_LOGIN_WINDOW, nx=True)
        pipe.incr(key)
        pipe.execute()
        raise LoginFailedError("用户名或密码不正确")
    if staff.role not in roles:
        raise PermissionDeniedError(f"{Role.LABELS.get(staff.role, staff.role)}账号不能登录此系统",
                                    code="role_not_allowed")
    redis.delete(key)
    return staff


def staff_for_openid(openid: str) -> Staff | None:
    """The active staff member bound to this official-account openid, if any."""
    if not openid:
        return None
    return db.session.scalar(
        select(Staff).join(WechatUser, WechatUser.staff_id == Staff.id)
        .where(WechatUser.oa_openid == openid, Staff.active.is_(True))
    )


def can_use_console(staff: Staff | None) -> bool:
    return staff is not None and staff.role in CONSOLE_ROLES


def can_change_console(staff: Staff | None) -> bool:
    return staff is not None and staff.role in CONSOLE_WRITE_ROLES


def can_see_dashboard(staff: Staff | None) -> bool:
    return staff is not None and staff.role in DASHBOARD_ROLES


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))
