"""Staff administration: accounts, roles, crews, deactivation, passwords and sign-in locks.

Only an active admin may do any of this (``can_manage_staff``; the console and the CLI ask
the same question). Every function validates all of its input before it changes a row, so
a refused request changes nothing; like every service it never commits.

Deactivation is a flag, not a deletion: tickets and history keep their staff member, the
WeChat binding is kept, and every channel reads ``Staff.active`` on each request (console
session, mini-program token, official-account roles), so it takes effect at once. It also
ends the person's console sessions and the mini-program logins of their WeChat
(``app.services.sessions``); a reactivation gives the rights back at the next sign-in
(except the duty-leader flag, which deactivation clears). A password reset ends the console
sessions; unbinding a WeChat ends its mini-program logins.
"""
from __future__ import annotations

import re

from sqlalchemy import func, select

from app import phones
from app.errors import PermissionDeniedError, ValidationError
from app.extensions import db
from app.models import Crew, Role, Staff, WechatUser, utcnow
from app.services import sessions, staff_auth
from app.services.actors import Actor
from app.text import clean_text

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,39}$")
NAME_MAX = 40
PASSWORD_MIN = 8
PASSWORD_MAX = 128
CREW_ROLES = (Role.CREW_MEMBER, Role.CREW_LEAD)  # these roles work in a crew: one is required


def can_manage_staff(staff: Staff | None) -> bool:
    return staff is not None and staff.active and staff.role == Role.ADMIN


def _require_admin(actor: Actor) -> None:
    if not actor.has_role(Role.ADMIN):
        raise PermissionDeniedError("仅管理员可以管理员工账号")


def _fail(errors: dict[str, str]) -> None:
    if errors:
        raise ValidationError("；".join(errors.values()), fields={k: [v] for k, v in errors.items()})


def _profile(errors: dict, *, name: str | None, phone: str | None, role: str | None,
             crew_id: int | str | None) -> dict:
    """Checked name, phone, role and crew (errors go into ``errors``)."""
    name = clean_text(name)
    if not name:
        errors["name"] = "请填写姓名"
    elif len(name) > NAME_MAX:
        errors["name"] = f"姓名最多{NAME_MAX}个字"
    phone, phone_ext = clean_text(phone) or None, None
    if phone:
        try:
            parsed = phones.parse(phone)
        except phones.PhoneError:
            errors["phone"] = "手机号格式不正确" + phones.HINT
        else:
            phone, phone_ext = parsed.e164, parsed.extension
    if role not in Role.ALL:
        errors["role"] = "请选择角色"
    crew = None
    if crew_id not in (None, ""):
        try:
            crew = db.session.get(Crew, int(crew_id))
        except (TypeError, ValueError):
            crew = None
        if crew is None:
            errors["crew_id"] = "班组不存在"
    elif role in CREW_ROLES:
        errors["crew_id"] = f"{Role.LABELS[role]}须选择所属班组"
    return {"name": name, "phone": phone, "phone_ext": phone_ext, "role": role,
            "crew_id": crew.id if crew else None}


def _password_error(password: str | None) -> str | None:
    password = password or ""
    if len(password) < PASSWORD_MIN:
        return f"密码至少{PASSWORD_MIN}位"
    if len(password) > PASSWORD_MAX:
        return f"密码最多{PASSWORD_MAX}位"
    if password.strip() != password:
        return "密码首尾不能有空格"
    if not (re.search(r"[A-Za-z]", password) and re.search(r"\d", password)):
        return "密码须同时包含字母和数字"
    return None


def create_staff(actor: Actor, *, username: str | None, name: str | None, phone: str | None = None,
                 role: str | None, crew_id: int | str | None = None, password: str | None) -> Staff:
    _require_admin(actor)
    errors: dict[str, str] = {}
    username = clean_text(username)
    if not USERNAME_RE.match(username):
        errors["username"] = "用户名为3–40位字母、数字或 . _ -，以字母或数字开头"
    elif db.session.scalar(select(Staff.id).where(func.lower(Staff.username) == username.lower())):
        errors["username"] = "该用户名已被使用"
    fields = _profile(errors, name=name, phone=phone, role=role, crew_id=crew_id)
    if problem := _password_error(password):
        errors["password"] = problem
    _fail(errors)
    staff = Staff(username=username, active=True, **fields)
    staff.set_password(password)
    db.session.add(staff)
    db.session.flush()
    return staff


def update_staff(actor: Actor, staff: Staff, *, name: str | None, phone: str | None, role: str | None,
                 crew_id: int | str | None) -> Staff:
    _require_admin(actor)
    errors: dict[str, str] = {}
    fields = _profile(errors, name=name, phone=phone, role=role, crew_id=crew_id)
    if staff.id == actor.staff_id and fields["role"] != Role.ADMIN and "role" not in errors:
        errors["role"] = "不能取消自己的管理员角色"
    _fail(errors)
    for key, value in fields.items():
        setattr(staff, key, value)
    db.session.flush()
    return staff


def set_active(actor: Actor, staff: Staff, active: bool) -> Staff:
    """Deactivate (or reactivate) an account; it takes effect on the person's next request."""
    _require_admin(actor)
    if not active and staff.id == actor.staff_id:
        raise ValidationError("不能停用自己的账号", fields={"active": ["不能停用自己的账号"]})
    staff.active = active
    if not active:
        staff.on_duty = False  # an inactive leader is nobody's duty leader
        sessions.end_all_sessions_of_staff(staff, "staff_deactivated")
    db.session.flush()
    return staff


def reset_password(actor: Actor, staff: Staff, password: str | None, *, redis) -> None:
    """Set a new password (told to the person by the admin) and lift any sign-in lock."""
    _require_admin(actor)
    if problem := _password_error(password):
        raise ValidationError(problem, fields={"password": [problem]})
    staff.set_password(password)
    sessions.end_staff_sessions(staff, "password_reset")
    db.session.flush()
    staff_auth.clear_failed_logins(staff.username, redis=redis)


def unlock(actor: Actor, staff: Staff, *, redis) -> None:
    """Lift the lock that too many failed sign-ins put on this username."""
    _require_admin(actor)
    staff_auth.clear_failed_logins(staff.username, redis=redis)


def unbind_wechat(actor: Actor, staff: Staff) -> bool:
    """Take the staff role off the WeChat bound to ``staff`` (a lost phone, a person who left):
    that WeChat becomes a plain resident again and can be bound to someone else. False when
    nothing was bound."""
    _require_admin(actor)
    user = db.session.scalar(select(WechatUser).where(WechatUser.staff_id == staff.id))
    if user is None:
        return False
    sessions.end_wechat_sessions_of_staff(staff, "wechat_unbound")
    user.staff_id = None
    db.session.flush()
    return True


def locked_ids(staff: list[Staff], *, redis) -> set[int]:
    """Ids of those of ``staff`` whose sign-in is locked now."""
    locked = staff_auth.locked_usernames([s.username for s in staff], redis=redis)
    return {s.id for s in staff if s.username in locked}


def record_location(staff: Staff, latitude: float, longitude: float, label: str | None = None) -> Staff:
    """Where a crew member is now (the dashboard's crew map): from the mini-program, the crew
    pages (browser geolocation or typed in) or a location sent in chat. The caller commits."""
    staff.last_latitude, staff.last_longitude = float(latitude), float(longitude)
    staff.last_location_label = (label or "").strip()[:200] or None
    staff.last_located_at = utcnow()
    return staff
