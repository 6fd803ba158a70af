"""Reports for the staff console: tickets by type, area and period, response and repair
times, satisfaction and fee collection — as data for the page and as an Excel workbook.

Periods are local (Beijing) calendar dates; grouping by day happens in SQL on the local
date, so a report over a season reads one index range of ``ticket.created_at``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from io import BytesIO
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from sqlalchemy import case, func, literal_column, select

from app.errors import ValidationError
from app.extensions import db
from app.models import (
    Bill, BillStatus, Community, District, HeatingSeason, Household, Payment, PaymentState, Ticket,
    TicketState, TicketType,
)
from app.services.metrics import _repair_end, _seconds_between

MAX_DAYS = 366
PERIODS = {"day": "按日", "week": "按周", "month": "按月"}


@dataclass
class ReportParams:
    date_from: date
    date_to: date            # inclusive
    period: str = "day"


def _tz() -> ZoneInfo:
    return ZoneInfo(current_app.config.get("TIMEZONE", "Asia/Shanghai") if has_app_context() else "Asia/Shanghai")


def parse_params(date_from: str | None, date_to: str | None, period: str | None, *, today: date) -> ReportParams:
    """Defaults: the last 30 days, by day. Refuses reversed or over-long ranges."""
    errors = {}
    try:
        end = date.fromisoformat(date_to) if date_to else today
    except ValueError:
        errors["date_to"] = ["日期格式应为 YYYY-MM-DD"]
        end = today
    try:
        start = date.fromisoformat(date_from) if date_from else end - timedelta(days=29)
    except ValueError:
        errors["date_from"] = ["日期格式应为 YYYY-MM-DD"]
        start = end
    period = period or "day"
    if period not in PERIODS:
        errors["period"] = ["可选：按日、按周、按月"]
    if start > end:
        errors["date_from"] = ["开始日期不能晚于结束日期"]
    elif (end - start).days >= MAX_DAYS:
        errors["date_from"] = [f"统计区间不能超过{MAX_DAYS}天"]
    if errors:
        raise ValidationError("统计条件有误", fields=errors)
    return ReportParams(start, end, period)


def _bounds(p: ReportParams) -> tuple[datetime, datetime]:
    tz = _tz()
    return (datetime.combine(p.date_from, time(0), tzinfo=tz),
            datetime.combine(p.date_to + timedelta(days=1), time(0), tzinfo=tz))


def _local_date(column):
    """SQL: the local calendar date of a stored UTC timestamp (fixed-offset time zone)."""
    offset = datetime.now(_tz()).utcoffset() or timedelta(0)
    hours = int(offset.total_seconds() // 3600)
    if db.engine.dialect.name == "postgresql":
        return func.date(column + literal_column(f"interval '{hours} hours'"))
    return func.date(column, f"{hours:+d} hours")


def _period_key(day: date, period: str) -> str:
    if period == "week":
        monday = day - timedelta(days=day.weekday())
        return f"{monday.isoformat()} 周"
    if period == "month":
        return day.strftime("%Y-%m")
    return day.isoformat()


def _hours(seconds) -> float | None:
    return round(float(seconds) / 3600, 1) if seconds is not None else None


def ticket_report(p: ReportParams) -> dict:
    start, end = _bounds(p)
    in_range = (Ticket.created_at >= start, Ticket.created_at < end)

    by_type_rows = db.session.execute(
        select(Ticket.type, func.count(Ticket.id),
               func.sum(case((Ticket.state == TicketState.CLOSED, 1), else_=0)),
               func.avg(_seconds_between(Ticket.accepted_at, Ticket.created_at)),
               func.avg(_seconds_between(_repair_end(), Ticket.created_at)),
               func.avg(Ticket.rating), func.count(Ticket.rating))
        .where(*in_range).group_by(Ticket.type)
    ).all()
    found = {r[0]: r for r in by_type_rows}
    by_type = []
    for t in TicketType.ALL:
        r = found.get(t)
        by_type.append({
            "type": TicketType.LABELS[t], "count": r[1] if r else 0, "closed": int(r[2] or 0) if r else 0,
            "response_hours": _hours(r[3]) if r else None, "repair_hours": _hours(r[4]) if r else None,
            "rating": round(float(r[5]), 2) if r and r[5] is not None else None, "rated": r[6] if r else 0,
        })

    by_area = [
        {"district": d or "未关联住户", "community": c or "—", "count": n,
         "open": int(o or 0)}
        for d, c, n, o in db.session.execute(
            select(District.name, Community.name, func.count(Ticket.id),
                   func.sum(case((Ticket.state.in_(TicketState.OPEN), 1), else_=0)))
            .select_from(Ticket)
            .outerjoin(Household, Household.id == Ticket.household_id)
            .outerjoin(Community, Community.id == Household.community_id)
            .outerjoin(District, District.id == Household.district_id)
            .where(*in_range).group_by(District.name, Community.name)
            .order_by(func.count(Ticket.id).desc())
        ).all()
    ]

    day = _local_date(Ticket.created_at)
    per_day = db.session.execute(
        select(day, func.count(Ticket.id)).where(*in_range).group_by(day).order_by(day)
    ).all()
    buckets: dict[str, int] = {}
    d = p.date_from
    while d <= p.date_to:  # every period shows, even with no tickets
        buckets.setdefault(_period_key(d, p.period), 0)
        d += timedelta(days=1)
    for value, n in per_day:
        key = _period_key(value if isinstance(value, date) else date.fromisoformat(str(value)), p.period)
        buckets[key] = buckets.get(key, 0) + n
    by_period = [{"period": k, "count": v} for k, v in buckets.items()]

    rating_rows = dict(db.session.execute(
        select(Ticket.rating, func.count(Ticket.id)).where(*in_range, Ticket.rating.is_not(None))
        .group_by(Ticket.rating)
    ).all())
    rated = sum(rating_rows.values())
    visited = db.session.scalar(select(func.count(Ticket.id)).where(*in_range, Ticket.visited_at.is_not(None))) or 0
    satisfaction = {
        "rated": rated,
        "average": round(sum(k * v for k, v in rating_rows.items()) / rated, 2) if rated else None,
        "satisfied_rate": round(sum(v for k, v in rating_rows.items() if k >= 4) / rated, 3) if rated else None,
        "distribution": [{"stars": s, "count": rating_rows.get(s, 0)} for s in range(5, 0, -1)],
        "visited": visited,
    }
    total = sum(r["count"] for r in by_type)
    return {"total": total, "by_type": by_type, "by_area": by_area, "by_period": by_period,
            "satisfaction": satisfaction}


def fee_report(p: ReportParams) -> dict:
    start, end = _bounds(p)
    seasons = []
    for season in db.session.scalars(select(HeatingSeason).order_by(HeatingSeason.starts_on.desc())):
        due, paid, bills, paid_bills = db.session.execute(
            select(func.coalesce(func.sum(Bill.amount_fen), 0), func.coalesce(func.sum(Bill.paid_fen), 0),
                   func.count(Bill.id), func.sum(case((Bill.status == BillStatus.PAID, 1), else_=0)))
            .where(Bill.season_id == season.id, Bill.status != BillStatus.WAIVED)
        ).one()
        seasons.append({"season": season.code, "due_fen": int(due), "paid_fen": int(paid), "bills": bills,
                        "paid_bills": int(paid_bills or 0),
                        "rate": round(min(int(paid), int(due)) / int(due), 4) if due else None})
    by_district = []
    if seasons:
        latest = db.session.scalar(select(HeatingSeason).order_by(HeatingSeason.starts_on.desc()).limit(1))
        for name, due, paid in db.session.execute(
            select(District.name, func.coalesce(func.sum(Bill.amount_fen), 0), func.coalesce(func.sum(Bill.paid_fen), 0))
            .select_from(Bill).join(Household, Household.id == Bill.household_id)
            .join(District, District.id == Household.district_id)
            .where(Bill.season_id == latest.id, Bill.status != BillStatus.WAIVED)
            .group_by(District.name).order_by(District.name)
        ).all():
            by_district.append({"district": name, "due_fen": int(due), "paid_fen": int(paid),
                                "rate": round(min(int(paid), int(due)) / int(due), 4) if due else None})
    count, total = db.session.execute(
        select(func.count(Payment.id), func.coalesce(func.sum(Payment.amount_fen), 0))
        .where(Payment.state == PaymentState.PAID, Payment.paid_at >= start, Payment.paid_at < end)
    ).one()
    return {"seasons": seasons, "by_district": by_district,
            "payments": {"count": count, "amount_fen": int(total)},
            "latest_season": seasons[0]["season"] if seasons else None}


def full_report(p: ReportParams) -> dict:
    return {"params": p, "tickets": ticket_report(p), "fees": fee_report(p)}


# --- Excel ------------------------------------------------------------------------------------

HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")


def _sheet(wb: Workbook, title: str, headers: list[str], rows: list[list]) -> None:
    ws = wb.create_sheet(title)
    ws.append(headers)
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(horizontal="center")
    for row in rows:
        ws.append(row)
    for i, header in enumerate(headers, start=1):
        width = max([len(str(header)) * 2] + [len(str(r[i - 1])) + 2 for r in rows if r[i - 1] is not None] + [8])
        ws.column_dimensions[get_column_letter(i)].width = min(width, 40)
    ws.freeze_panes = "A2"


def _yuan(fen: int) -> float:
    return round(fen / 100, 2)


def report_workbook(report: dict) -> bytes:
    p: ReportParams = report["params"]
    t, f = report["tickets"], report["fees"]
    wb = Workbook()
    summary = wb.active
    summary.title = "概要"
    summary.append(["统计区间", f"{p.date_from.isoformat()} 至 {p.date_to.isoformat()}"])
    summary.append(["工单总数", t["total"]])
    summary.append(["评价数", t["satisfaction"]["rated"]])
    summary.append(["平均评分", t["satisfaction"]["average"]])
    summary.append(["满意率（4-5分）", t["satisfaction"]["satisfied_rate"]])
    summary.append(["回访数", t["satisfaction"]["visited"]])
    summary.append(["区间内缴费笔数", f["payments"]["count"]])
    summary.append(["区间内缴费金额（元）", _yuan(f["payments"]["amount_fen"])])
    summary.column_dimensions["A"].width = 24
    summary.column_dimensions["B"].width = 28
    _sheet(wb, "按类型", ["类型", "工单数", "已办结", "平均首次响应（小时）", "平均处理时长（小时）", "平均评分", "评价数"],
           [[r["type"], r["count"], r["closed"], r["response_hours"], r["repair_hours"], r["rating"], r["rated"]]
            for r in t["by_type"]])
    _sheet(wb, "按区域", ["区县", "小区", "工单数", "未办结"],
           [[r["district"], r["community"], r["count"], r["open"]] for r in t["by_area"]])
    _sheet(wb, f"按时间（{PERIODS[p.period]}）", ["时间", "工单数"], [[r["period"], r["count"]] for r in t["by_period"]])
    _sheet(wb, "满意度", ["评分", "数量"], [[f"{r['stars']}分", r["count"]] for r in t["satisfaction"]["distribution"]])
    _sheet(wb, "收费", ["采暖季", "应收（元）", "实收（元）", "收缴率", "账单数", "已缴清"],
           [[s["season"], _yuan(s["due_fen"]), _yuan(s["paid_fen"]), s["rate"], s["bills"], s["paid_bills"]]
            for s in f["seasons"]])
    _sheet(wb, "收费按区县", ["区县", "应收（元）", "实收（元）", "收缴率"],
           [[r["district"], _yuan(r["due_fen"]), _yuan(r["paid_fen"]), r["rate"]] for r in f["by_district"]])
    buf = BytesIO()
    wb.save(buf)
    return buf.getvalue()
