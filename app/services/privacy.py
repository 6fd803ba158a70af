"""Personal data looked at on purpose (个人信息保护).

- Lists show residents' names and phone numbers masked (``mask_name`` 张*, phone numbers with
  ``app.phones.masked`` 139****2234); the customer page shows them in full, and opening it is recorded.
- ``record_access`` writes one ``PersonalDataAccess`` row per opening of a customer page or
  export (who, when, what, from where) in the caller's transaction; the caller commits.
- ``access_log`` is the admins' view of those rows, filtered and paged.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from app.errors import ValidationError
from app.extensions import db
from app.models import AccessAction, Household, PersonalDataAccess, Staff, utcnow

MASK = "*"


def mask_name(name: str | None) -> str:
    """张伟 → 张*, 欧阳娜娜 → 欧***: the first character kept, one star per character hidden."""
    name = (name or "").strip()
    if not name:
        return ""
    return name[:1] + MASK * max(len(name) - 1, 1)


def record_access(staff: Staff, action: str, *, subject: str, household: Household | None = None,
                  detail: dict | None = None, rows: int | None = None, client_ip: str | None = None,
                  now: datetime | None = None) -> PersonalDataAccess:
    """Note that ``staff`` looked at personal data (added to the session, not committed)."""
    if action not in AccessAction.ALL:
        raise ValueError(f"unknown access action {action!r}")
    row = PersonalDataAccess(
        at=now or utcnow(), staff_id=staff.id, staff_username=staff.username, staff_name=staff.name,
        action=action, household_id=household.id if household is not None else None, subject=subject[:200],
        detail=detail or None, rows=rows, client_ip=(client_ip or None) and client_ip[:64])
    db.session.add(row)
    db.session.flush()
    return row


@dataclass(frozen=True)
class AccessFilter:
    staff: str = ""          # username or name, contains
    action: str = ""
    account_no: str = ""     # the household looked at
    date_from: date | None = None
    date_to: date | None = None   # inclusive


def parse_filter(args) -> AccessFilter:
    """The log page's query string as a filter; a bad date is a ``ValidationError`` naming
    the field."""
    errors = {}
    days = {}
    for name, label in (("date_from", "开始日期"), ("date_to", "结束日期")):
        raw = (args.get(name) or "").strip()
        days[name] = None
        if raw:
            try:
                days[name] = date.fromisoformat(raw)
            except ValueError:
                errors[name] = [f"{label}格式应为 年-月-日"]
    action = (args.get("action") or "").strip()
    if action and action not in AccessAction.ALL:
        errors["action"] = ["操作类型不正确"]
    if not errors and days["date_from"] and days["date_to"] and days["date_from"] > days["date_to"]:
        errors["date_to"] = ["结束日期不能早于开始日期"]
    if errors:
        raise ValidationError("筛选条件有误", fields=errors)
    return AccessFilter(staff=(args.get("staff") or "").strip(), action=action,
                        account_no=(args.get("account_no") or "").strip(), **days)


def access_log(f: AccessFilter, *, tz: ZoneInfo, page: int = 1, per_page: int = 50) -> tuple[list, int]:
    """(rows of (PersonalDataAccess, account_no), total) newest first."""
    conds = []
    if f.staff:
        like = f"%{f.staff}%"
        conds.append(PersonalDataAccess.staff_username.ilike(like) | PersonalDataAccess.staff_name.ilike(like))
    if f.action:
        conds.append(PersonalDataAccess.action == f.action)
    if f.account_no:
        conds.append(PersonalDataAccess.household_id.in_(
            select(Household.id).where(Household.account_no == f.account_no)))
    if f.date_from:
        conds.append(PersonalDataAccess.at >= datetime.combine(f.date_from, time(0), tzinfo=tz))
    if f.date_to:
        conds.append(PersonalDataAccess.at < datetime.combine(f.date_to + timedelta(days=1), time(0), tzinfo=tz))
    total = db.session.scalar(select(func.count(PersonalDataAccess.id)).where(*conds)) or 0
    rows = db.session.execute(
        select(PersonalDataAccess, Household.account_no)
        .outerjoin(Household, Household.id == PersonalDataAccess.household_id)
        .where(*conds).order_by(PersonalDataAccess.at.desc(), PersonalDataAccess.id.desc())
        .limit(per_page).offset((max(page, 1) - 1) * per_page)).all()
    return rows, total
