"""Binding a WeChat user to households (with proof) and staff to their WeChat (one-time code).

Proof (DESIGN §3): the account number plus the owner's name or the last 4 digits of the
registered phone. Wrong guesses are limited per user (hard) and slowed per household (for
those who guessed wrong) in Redis (``attempts``, app/services/attempts.py), so nobody can
walk through account numbers and nobody can lock an owner out.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from app.errors import ConflictError, NotFoundError, ValidationError
from app.extensions import db
from app.models import Household, HouseholdBinding, HouseholdStatus, Staff, StaffBindCode, WechatUser, utcnow
from app.services import sessions
from app.services.attempts import AttemptPolicy, Attempts
from app.text import clean_text

MAX_FAILURES = 5              # per WeChat user within the window (then 429)
FAILURE_WINDOW = 3600         # seconds
MAX_HOUSEHOLDS_PER_USER = 10
STAFF_CODE_TTL = timedelta(hours=24)

# Proof attempts (app/services/attempts.py): per WeChat user a hard limit; per account number
# a slow-down that holds back only users who failed — a stranger's wrong guesses never stop
# the owner binding with the right proof.
BIND_ATTEMPTS = AttemptPolicy(
    name="bind", limit=MAX_FAILURES, window=FAILURE_WINDOW,
    target_free=MAX_FAILURES, target_delay=60, target_delay_max=15 * 60, target_window=FAILURE_WINDOW,
    requester_message="验证失败次数过多，请一小时后再试或致电客服热线",
    target_message="该户号近期验证失败次数过多，请{wait}后再试或致电客服热线",
)


def bind_attempts(redis) -> Attempts:
    return Attempts(redis, BIND_ATTEMPTS)


def _normalise_name(name: str) -> str:
    return "".join(name.split())


def _proof_matches(household: Household, owner_name: str | None, phone_last4: str | None) -> str | None:
    if owner_name and _normalise_name(owner_name) == _normalise_name(household.owner_name):
        return "owner_name"
    if phone_last4 and household.owner_phone and household.owner_phone[-4:] == phone_last4:
        return "phone_last4"
    return None


def bind_household(user: WechatUser, account_no: str, *, owner_name: str | None = None,
                   phone_last4: str | None = None, attempts: Attempts) -> HouseholdBinding:
    # Typed in chat or the mini-program: full-width ３９４０ and stray spaces are folded (NFKC).
    account_no = clean_text(account_no).upper()
    owner_name, phone_last4 = clean_text(owner_name) or None, clean_text(phone_last4) or None
    if not account_no:
        raise ValidationError("请输入户号", fields={"account_no": ["必填"]})
    if not owner_name and not phone_last4:
        raise ValidationError("请输入户主姓名或预留手机号后四位",
                              fields={"owner_name": ["户主姓名与手机号后四位至少填一项"]})
    if phone_last4 and not (len(phone_last4) == 4 and phone_last4.isascii() and phone_last4.isdigit()):
        raise ValidationError("手机号后四位应为4位数字", fields={"phone_last4": ["应为4位数字"]})

    with attempts.attempt(requester=f"user:{user.id}", target=account_no) as attempt:
        household = db.session.scalar(select(Household).where(Household.account_no == account_no))
        proof = _proof_matches(household, owner_name, phone_last4) if household else None
        if proof is None or household.status == HouseholdStatus.CLOSED:
            attempt.failed()
            # One message for both cases: do not reveal which account numbers exist.
            raise ValidationError("户号与户主信息不匹配，请核对后重试", code="proof_mismatch")
        attempt.succeeded()

    existing = db.session.scalar(select(HouseholdBinding).where(
        HouseholdBinding.wechat_user_id == user.id, HouseholdBinding.household_id == household.id))
    if existing:
        return existing
    if len(user.bindings) >= MAX_HOUSEHOLDS_PER_USER:
        raise ConflictError(f"每个微信号最多绑定{MAX_HOUSEHOLDS_PER_USER}户")
    binding = HouseholdBinding(wechat_user_id=user.id, household_id=household.id, proof=proof)
    db.session.add(binding)
    db.session.flush()
    return binding


def unbind_household(user: WechatUser, household_id: int) -> None:
    binding = db.session.scalar(select(HouseholdBinding).where(
        HouseholdBinding.wechat_user_id == user.id, HouseholdBinding.household_id == household_id))
    if binding is None:
        raise NotFoundError("您未绑定该户")
    db.session.delete(binding)
    db.session.flush()


def bound_households(user: WechatUser) -> list[Household]:
    return list(db.session.scalars(
        select(Household).join(HouseholdBinding, HouseholdBinding.household_id == Household.id)
        .where(HouseholdBinding.wechat_user_id == user.id).order_by(HouseholdBinding.id)))


@dataclass
class StaffCode:
    code: str
    expires_at: datetime


def issue_staff_bind_code(staff: Staff, now: datetime | None = None) -> StaffCode:
    """A one-time code for the staff-binding QR (the QR's scene string carries it).

    Only the newest code of a staff member works: issuing one retires that person's older
    unused codes (they read as expired), so a QR left on a desk or in a chat is dead once
    the admin makes a new one. Inactive staff get no code.
    """
    if staff.active is False:
        raise ConflictError(STAFF_INACTIVE, code="staff_inactive")
    now = now or utcnow()
    for older in db.session.scalars(select(StaffBindCode).where(
            StaffBindCode.staff_id == staff.id, StaffBindCode.used_at.is_(None), StaffBindCode.expires_at > now)):
        older.expires_at = now
    row = StaffBindCode(code=secrets.token_urlsafe(18), staff_id=staff.id, expires_at=now + STAFF_CODE_TTL)
    db.session.add(row)
    db.session.flush()
    return StaffCode(row.code, row.expires_at)


STAFF_CODE_UNKNOWN = "绑定二维码无效，请联系管理员在后台重新生成"
STAFF_CODE_EXPIRED = "绑定二维码已过期，请联系管理员在后台重新生成"
STAFF_CODE_USED = "该绑定二维码已被使用，请联系管理员重新生成"
STAFF_INACTIVE = "该员工账号已停用，无法绑定"


def bind_staff(user: WechatUser, code: str, now: datetime | None = None) -> Staff:
    """Bind this WeChat user to the staff member a one-time code names.

    Every refusal changes nothing. The same person scanning again (WeChat retries, or a fresh
    code for the staff member they already are) gets the same answer. A staff member has one
    WeChat: binding a new one releases the old. A WeChat already bound to someone else is
    refused — an admin must sort that out, nobody takes over a colleague's account by a scan.
    """
    now = now or utcnow()
    row = db.session.scalar(select(StaffBindCode).where(StaffBindCode.code == code).with_for_update()) \
        if code else None
    if row is None:
        raise ValidationError(STAFF_CODE_UNKNOWN, code="bind_code_invalid")
    staff = db.session.get(Staff, row.staff_id)
    if row.used_at is not None:
        if row.used_by_id == user.id and user.staff_id == row.staff_id:
            if not staff.active:
                raise ConflictError(STAFF_INACTIVE, code="staff_inactive")
            return staff  # WeChat retried the scan: same answer
        raise ConflictError(STAFF_CODE_USED, code="bind_code_used")
    if row.expires_at <= now:
        raise ValidationError(STAFF_CODE_EXPIRED, code="bind_code_expired")
    if not staff.active:
        raise ConflictError(STAFF_INACTIVE, code="staff_inactive")
    if user.staff_id is not None and user.staff_id != staff.id:
        current = db.session.get(Staff, user.staff_id)
        raise ConflictError(f"您的微信已绑定员工账号 {current.username}（{current.name}），如需更换请联系管理员",
                            code="wechat_bound_to_other_staff")
    other = db.session.scalar(select(WechatUser).where(WechatUser.staff_id == staff.id))
    if other is not None and other.id != user.id:
        sessions.end_wechat_sessions_of_staff(staff, "wechat_unbound")  # the old phone's logins end
        other.staff_id = None  # a staff member has one WeChat: the new phone replaces the old
        db.session.flush()
    row.used_at, row.used_by_id = now, user.id
    user.staff_id = staff.id
    db.session.flush()
    return staff
