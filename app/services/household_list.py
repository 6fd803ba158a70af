"""The household list of the console (住户): search and filters, one page at a time, and the
same filters handed to the import template's exporter (``app.imports.households``).

- Search is ``customers.search_condition``: the same as 新建工单's household search (户号,
  phone or its last digits, owner's name, address).
- 欠费 is the announcements' "欠费用户": an open bill whose season's due date has passed
  (``announcements.arrears_household_ids``), so the list and a 催缴 broadcast agree.
- 已绑定微信: at least one WeChat user bound to the household.

Filters come from a query string; a value that is not one of the choices is a
``ValidationError`` naming the field (the page shows it next to the field).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from app.errors import ValidationError
from app.extensions import db
from app.models import (
    Bill, BillStatus, Community, District, HeatingSeason, Household, HouseholdBinding, HouseholdStatus, Station,
)
from app.services import customers
from app.services.announcements import arrears_household_ids
from app.text import clean_text

STATUS_LABELS = {HouseholdStatus.ACTIVE: "正常", HouseholdStatus.SUSPENDED: "报停", HouseholdStatus.CLOSED: "销户"}
YES_NO = {"yes": "是", "no": "否"}
# Field → label, for the access log's description of an export.
FILTER_LABELS = {"q": "搜索", "district_id": "区域", "community_id": "小区", "station_id": "换热站",
                 "status": "状态", "arrears": "欠费", "bound": "已绑定微信"}


@dataclass(frozen=True)
class HouseholdFilter:
    q: str = ""
    district_id: int | None = None
    community_id: int | None = None
    station_id: int | None = None
    status: str = ""
    arrears: str = ""      # "yes" | "no" | ""
    bound: str = ""        # "yes" | "no" | ""

    def args(self) -> dict[str, str]:
        """The filter as query-string arguments (empty ones left out): for links and the pager."""
        return {k: str(v) for k, v in self.__dict__.items() if v not in (None, "")}

    def is_empty(self) -> bool:
        return not self.args()

    def describe(self) -> str:
        """In words, for the access log: 区域：和平区；欠费：是."""
        parts = []
        for key, value in self.args().items():
            if key == "district_id":
                value = _name(District, self.district_id)
            elif key == "community_id":
                value = _name(Community, self.community_id)
            elif key == "station_id":
                value = _name(Station, self.station_id)
            elif key == "status":
                value = STATUS_LABELS.get(value, value)
            elif key in ("arrears", "bound"):
                value = YES_NO.get(value, value)
            parts.append(f"{FILTER_LABELS[key]}：{value}")
        return "；".join(parts) or "全部住户"


def _name(model, row_id: int | None) -> str:
    row = db.session.get(model, row_id or 0)
    return row.name if row is not None else str(row_id)


def parse_filter(args) -> HouseholdFilter:
    """The page's query string as a filter; a value outside the choices → ValidationError."""
    errors: dict[str, list[str]] = {}
    ids: dict[str, int | None] = {}
    for name, label in (("district_id", "区域"), ("community_id", "小区"), ("station_id", "换热站")):
        raw = (args.get(name) or "").strip()
        ids[name] = None
        if raw:
            try:
                ids[name] = int(raw)
            except ValueError:
                errors[name] = [f"请从列表中选择{label}"]
    status = (args.get("status") or "").strip()
    if status and status not in STATUS_LABELS:
        errors["status"] = ["状态只能是 正常、报停 或 销户"]
    flags = {}
    for name, label in (("arrears", "欠费"), ("bound", "已绑定微信")):
        flags[name] = (args.get(name) or "").strip()
        if flags[name] and flags[name] not in YES_NO:
            errors[name] = [f"“{label}”只能选 是 或 否"]
    if errors:
        raise ValidationError("筛选条件有误", fields=errors)
    return HouseholdFilter(q=clean_text(args.get("q")) or "", status=status, **ids, **flags)


def conditions(f: HouseholdFilter, today: date) -> list:
    """The WHERE conditions on ``Household`` for the filter (shared by the list and the export)."""
    conds = []
    if f.q:
        conds.append(customers.search_condition(f.q))
    if f.community_id:
        conds.append(Household.community_id == f.community_id)
    elif f.district_id:
        conds.append(Household.district_id == f.district_id)
    if f.station_id:
        conds.append(Household.station_id == f.station_id)
    if f.status:
        conds.append(Household.status == f.status)
    if f.arrears:
        owing = Household.id.in_(arrears_household_ids(today))
        conds.append(owing if f.arrears == "yes" else ~owing)
    if f.bound:
        bound = Household.id.in_(select(HouseholdBinding.household_id))
        conds.append(bound if f.bound == "yes" else ~bound)
    return conds


def count_households(f: HouseholdFilter, today: date) -> int:
    return db.session.scalar(select(func.count(Household.id)).where(*conditions(f, today))) or 0


@dataclass
class HouseholdPage:
    rows: list[Household]
    total: int
    page: int
    pages: int
    arrears_fen: dict[int, int] = field(default_factory=dict)   # household id → past-due principal
    bindings: dict[int, int] = field(default_factory=dict)      # household id → WeChat users bound


def list_households(f: HouseholdFilter, today: date, *, page: int = 1, per_page: int = 20) -> HouseholdPage:
    """One page of the filtered list by 户号, with each row's past-due arrears and bindings
    (two grouped queries over the page's ids, not one per row)."""
    conds = conditions(f, today)
    total = db.session.scalar(select(func.count(Household.id)).where(*conds)) or 0
    pages = max((total + per_page - 1) // per_page, 1)
    page = min(max(page, 1), pages)
    rows = list(db.session.scalars(
        select(Household).where(*conds)
        .options(selectinload(Household.district), selectinload(Household.community),
                 selectinload(Household.station))
        .order_by(Household.account_no).limit(per_page).offset((page - 1) * per_page)))
    ids = [h.id for h in rows]
    result = HouseholdPage(rows=rows, total=total, page=page, pages=pages)
    if ids:
        result.arrears_fen = dict(db.session.execute(
            select(Bill.household_id, func.sum(Bill.amount_fen - Bill.paid_fen))
            .join(HeatingSeason, Bill.season_id == HeatingSeason.id)
            .where(Bill.household_id.in_(ids), Bill.status.in_(BillStatus.OPEN), HeatingSeason.due_on < today,
                   Bill.amount_fen > Bill.paid_fen)
            .group_by(Bill.household_id)).all())
        result.bindings = dict(db.session.execute(
            select(HouseholdBinding.household_id, func.count(HouseholdBinding.id))
            .where(HouseholdBinding.household_id.in_(ids)).group_by(HouseholdBinding.household_id)).all())
    return result
