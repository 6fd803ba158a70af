"""Who may use the staff console and the leader dashboard (plain Python, no request objects).

- Password sign-in for staff (``Staff.check_password``; hashes from werkzeug), with attempt
  limits kept in Redis (``app.services.attempts``): per client address, and a per-username
  slow-down that strangers cannot turn into a lock-out.
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

from app.errors import PermissionDeniedError, UnauthorizedError
from app.extensions import db
from app.models import Role, Staff, WechatUser
from app.services.attempts import Attempts, AttemptPolicy

CONSOLE_ROLES = (Role.AGENT, Role.ADMIN, Role.LEADER)   # who may open the console at all
CONSOLE_WRITE_ROLES = (Role.AGENT, Role.ADMIN)          # who may change anything there
DASHBOARD_ROLES = (Role.LEADER, Role.ADMIN)

MAX_FAILED_LOGINS = 8          # per client address ...
FAILED_LOGIN_WINDOW = 15 * 60  # ... in this many seconds

# Sign-in attempts (app/services/attempts.py): per client address a hard limit; per username
# a slow-down that holds back only addresses that failed — a stranger's wrong passwords
# never stop the staff member signing in from their own computer.
LOGIN_ATTEMPTS = AttemptPolicy(
    name="console-login", limit=MAX_FAILED_LOGINS, window=FAILED_LOGIN_WINDOW,
    target_free=MAX_FAILED_LOGINS, target_delay=30, target_delay_max=FAILED_LOGIN_WINDOW,
    target_window=FAILED_LOGIN_WINDOW,
    requester_message="登录失败次数过多，请15分钟后再试",
    target_message="该账号近期登录失败次数过多，请{wait}后再试",
)


class LoginFailedError(UnauthorizedError):
    code = "login_failed"


def login_attempts(redis) -> Attempts:
    return Attempts(redis, LOGIN_ATTEMPTS)


def _target(username: str) -> str:
    return (username or "").strip().lower()


def locked_usernames(usernames, *, redis) -> set[str]:
    """Which of these usernames had so many failed sign-ins lately that they are slowed down
    (for those who failed; an admin may lift it with ``clear_failed_logins``)."""
    names = [u for u in usernames if u]
    failures = login_attempts(redis).failures_on([_target(u) for u in names])
    return {u for u in names if failures.get(_target(u), 0) >= MAX_FAILED_LOGINS}


def clear_failed_logins(username: str, *, redis) -> None:
    """Forget the failed sign-ins on a username (an admin unlocking it, or a new password):
    its slow-down ends and the addresses that failed on it get those attempts back."""
    login_attempts(redis).clear_target(_target(username))


def authenticate(username: str, password: str, *, redis, requester: str | None, roles=CONSOLE_ROLES) -> Staff:
    """The active staff member with this username and password, allowed one of ``roles``.

    ``requester`` is the client's address. Wrong credentials raise ``LoginFailedError`` with
    one message whatever was wrong (no hint whether the username exists); too many failures
    from one address stop that address for a while (429), and a username with many failures
    makes the addresses that failed on it wait.
    """
    username = (username or "").strip()
    with login_attempts(redis).attempt(requester=requester or "unknown", target=_target(username)) as attempt:
        staff = db.session.scalar(select(Staff).where(func.lower(Staff.username) == username.lower())) \
            if username else None
        if staff is None or not staff.active or not staff.check_password(password or ""):
            attempt.failed()
            raise LoginFailedError("用户名或密码不正确")
        attempt.succeeded()
    if staff.role not in roles:
        raise PermissionDeniedError(f"{Role.LABELS.get(staff.role, staff.role)}账号不能登录此系统",
                                    code="role_not_allowed")
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
