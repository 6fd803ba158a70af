"""Reports for the staff console: tickets by type, area and period, response and repair
times, satisfaction and fee collection — as data for the page and as an Excel workbook.

Periods are local (Beijing) calendar dates; grouping by day happens in SQL on the local
date, so a report over a season reads one index range of ``ticket.created_at``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from io import BytesIO

from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, PieChart, Reference
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from sqlalchemy import and_, case, func, literal_column, select

from app.clock import local_tz
from app.errors import ValidationError
from app.extensions import db
from app.models import (
    Bill, BillStatus, CallLog, Community, Conversation, Crew, District, HeatingSeason, Household, Payment, PaymentState, Staff,
    Ticket, TicketEvent, TicketState, TicketType,
)
from app.services.chat import chat_metrics
from app.services import sla
from app.services.metrics import _count_if, _rate, _repair_end, _seconds_between, local_offset_hours

MAX_DAYS = 366
PERIODS = {"day": "按日", "week": "按周", "month": "按月"}


@dataclass
class ReportParams:
    date_from: date
    date_to: date            # inclusive
    period: str = "day"


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
    tz = local_tz()
    return (datetime.combine(p.date_from, time(0), tzinfo=tz),
            datetime.combine(p.date_to + timedelta(days=1), time(0), tzinfo=tz))


def _local_date(column):
    """SQL: the local calendar date of a stored UTC timestamp (fixed-offset time zone)."""
    hours = local_offset_hours()
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
    # The phone system's post-call ratings of calls in the period; one that became its
    # ticket's rating is already counted with the ticket.
    call_rows = db.session.execute(
        select(CallLog.rating, CallLog.rating_on_ticket, func.count(CallLog.id))
        .where(CallLog.started_at >= start, CallLog.started_at < end, CallLog.rating.is_not(None))
        .group_by(CallLog.rating, CallLog.rating_on_ticket)
    ).all()
    for stars, on_ticket, n in call_rows:
        if not on_ticket:
            rating_rows[stars] = rating_rows.get(stars, 0) + n
    # Residents' ratings of live-chat conversations (会话) opened in the period.
    chat_rows = db.session.execute(
        select(Conversation.rating, func.count(Conversation.id))
        .where(Conversation.opened_at >= start, Conversation.opened_at < end, Conversation.rating.is_not(None))
        .group_by(Conversation.rating)
    ).all()
    for stars, n in chat_rows:
        rating_rows[stars] = rating_rows.get(stars, 0) + n
    rated = sum(rating_rows.values())
    visited = db.session.scalar(select(func.count(Ticket.id)).where(*in_range, Ticket.visited_at.is_not(None))) or 0
    satisfaction = {
        "rated": rated,
        "average": round(sum(k * v for k, v in rating_rows.items()) / rated, 2) if rated else None,
        "satisfied_rate": round(sum(v for k, v in rating_rows.items() if k >= 4) / rated, 3) if rated else None,
        "distribution": [{"stars": s, "count": rating_rows.get(s, 0)} for s in range(5, 0, -1)],
        "phone_rated": sum(n for _, _, n in call_rows),
        "chat_rated": sum(n for _, n in chat_rows),
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


def _quality_columns():
    """Aggregates shared by the per-crew and per-agent tables (over tickets created in range)."""
    end = _repair_end()
    finished = and_(end.is_not(None), Ticket.state != TicketState.CANCELLED)
    return (
        func.count(Ticket.id),
        _count_if(Ticket.state == TicketState.CLOSED),
        func.avg(_seconds_between(Ticket.accepted_at, Ticket.created_at)),
        _count_if(Ticket.accepted_at.is_not(None)),
        _count_if(and_(Ticket.accepted_at.is_not(None), sla.responded_on_time())),
        func.avg(case((finished, _seconds_between(end, Ticket.created_at)))),
        _count_if(finished),
        _count_if(and_(finished, sla.finished_on_time(end))),
        func.sum(Ticket.rating), func.count(Ticket.rating), _count_if(Ticket.rating >= 4),
    )


def _quality_row(label: str, r) -> dict:
    n, closed, avg_resp, responded, resp_ok, avg_repair, finished, finish_ok, rating_sum, rated, good = r
    return {
        "name": label, "count": n, "closed": int(closed),
        "response_minutes": round(float(avg_resp) / 60, 1) if avg_resp is not None else None,
        "response_on_time_rate": _rate(resp_ok, responded),
        "repair_hours": _hours(avg_repair), "finished": int(finished),
        "finish_on_time_rate": _rate(finish_ok, finished),
        "rating_sum": int(rating_sum or 0), "rated": int(rated), "satisfied": int(good),
        "rating": round(int(rating_sum) / int(rated), 2) if rated else None,
        "satisfied_rate": _rate(good, rated),
    }


def crew_report(p: ReportParams) -> list[dict]:
    """Per crew (班组), over tickets created in range and sent to it: volume, response time
    and on-time rate (accepted by ``respond_by``), repair time and on-time rate (answered by
    ``finish_by``), residents' ratings."""
    start, end = _bounds(p)
    names = dict(db.session.execute(select(Crew.id, Crew.name)).all())
    rows = db.session.execute(
        select(Ticket.crew_id, *_quality_columns())
        .where(Ticket.created_at >= start, Ticket.created_at < end, Ticket.crew_id.is_not(None))
        .group_by(Ticket.crew_id)
    ).all()
    result = [_quality_row(names.get(r[0], f"班组{r[0]}"), r[1:]) for r in rows]
    result.sort(key=lambda r: (-r["count"], r["name"]))
    return result


def agent_report(p: ReportParams) -> list[dict]:
    """Per customer-service agent (客服满意度统计): tickets they took (who registered the
    ticket: a console agent, or the phone system's agent by name), their on-time rate and
    ratings; calls they answered (ring time, talk time, IVR ratings); live-chat conversations
    (first response, ratings). Agents are matched by name across the three; the combined
    rating and satisfaction count every rating once (tickets, calls, conversations)."""
    start, end = _bounds(p)
    agent = func.coalesce(Staff.name, TicketEvent.actor_name)
    tickets = {name: _quality_row(name, r) for name, *r in db.session.execute(
        select(agent, *_quality_columns())
        .select_from(Ticket).join(TicketEvent, and_(TicketEvent.ticket_id == Ticket.id, TicketEvent.action == "created"))
        .outerjoin(Staff, Staff.id == TicketEvent.actor_staff_id)
        .where(Ticket.created_at >= start, Ticket.created_at < end, TicketEvent.actor_kind.in_(("staff", "phone")),
               agent.is_not(None))
        .group_by(agent)
    ).all()}
    answered = CallLog.answered_at.is_not(None)
    calls = {name: r for name, *r in db.session.execute(
        select(CallLog.agent, _count_if(answered),
               func.avg(case((answered, _seconds_between(CallLog.answered_at, CallLog.started_at)))),
               func.avg(CallLog.duration_s),
               func.sum(case((CallLog.rating_on_ticket.is_(False), CallLog.rating))),
               _count_if(and_(CallLog.rating.is_not(None), CallLog.rating_on_ticket.is_(False))),
               _count_if(and_(CallLog.rating >= 4, CallLog.rating_on_ticket.is_(False))))
        .where(CallLog.started_at >= start, CallLog.started_at < end, CallLog.agent.is_not(None))
        .group_by(CallLog.agent)
    ).all()}
    chats = {row["agent"]: row for row in chat_metrics(start, end).per_agent}
    result = []
    for name in sorted(set(tickets) | set(calls) | set(chats)):
        row = tickets.get(name) or _quality_row(name, (0, 0, None, 0, 0, None, 0, 0, 0, 0, 0))
        n_calls, ring, talk, call_sum, call_rated, call_good = calls.get(name, (0, None, None, 0, 0, 0))
        chat = chats.get(name, {})
        rated = row["rated"] + int(call_rated) + chat.get("rated", 0)
        good = row["satisfied"] + int(call_good) + chat.get("satisfied", 0)
        rating_sum = row["rating_sum"] + int(call_sum or 0) + chat.get("rating_sum", 0)
        row.update({
            "calls": int(n_calls), "ring_seconds": round(float(ring)) if ring is not None else None,
            "talk_seconds": round(float(talk)) if talk is not None else None,
            "call_rating": round(int(call_sum) / int(call_rated), 2) if call_rated else None,
            "call_rated": int(call_rated),
            "conversations": chat.get("conversations", 0), "chat_first_response_seconds": chat.get("avg_first_response_s"),
            "chat_rating": chat.get("avg_rating"),
            "chat_rated": chat.get("rated", 0),
            "all_rated": rated, "all_rating": round(rating_sum / rated, 2) if rated else None,
            "all_satisfied_rate": _rate(good, rated),
        })
        result.append(row)
    result.sort(key=lambda r: (-(r["count"] + r["calls"] + r["conversations"]), r["name"]))
    return result


def chat_report(p: ReportParams) -> dict:
    """Live chat (会话) in the period: conversations opened, taken, waiting time (opened → taken),
    first response time (opened → the agent's first message), ratings, and per agent."""
    start, end = _bounds(p)
    m = chat_metrics(start, end)
    return {"opened": m.opened, "answered": m.answered, "unanswered": m.opened - m.answered,
            "avg_wait_seconds": m.avg_wait_s, "avg_first_response_seconds": m.avg_first_response_s,
            "avg_rating": m.avg_rating, "rated": m.rated,
            "satisfied_rate": _rate(m.satisfied, m.rated),
            "per_agent": [{"name": a["agent"], "conversations": a["conversations"],
                           "avg_wait_seconds": a["avg_wait_s"], "avg_first_response_seconds": a["avg_first_response_s"],
                           "rating": a["avg_rating"], "rated": a["rated"]} for a in m.per_agent]}


def full_report(p: ReportParams) -> dict:
    return {"params": p, "tickets": ticket_report(p), "fees": fee_report(p), "crews": crew_report(p),
            "agents": agent_report(p), "chat": chat_report(p)}


# --- Excel ------------------------------------------------------------------------------------

HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
# Number formats: counts with thousands separators, money in yuan, rates as percentages.
INT, DEC1, YUAN, PCT = "#,##0", "#,##0.0", "#,##0.00", "0.0%"


@dataclass
class Col:
    header: str
    key: object                 # a dict key, or a function of the row
    fmt: str | None = None

    def value(self, row):
        value = self.key(row) if callable(self.key) else row.get(self.key)
        if self.fmt == YUAN and value is not None:
            return round(value / 100, 2)      # money is stored in fen
        return value


def _text_width(value) -> int:
    """Display width in Excel character units: CJK characters take two."""
    text = value if isinstance(value, str) else f"{value:,.2f}" if isinstance(value, float) else f"{value:,}" \
        if isinstance(value, int) else str(value or "")
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _table(ws, columns: list[Col], rows: list[dict], *, top: int = 1) -> tuple[int, int]:
    """Write a table with a bold header at ``top``; returns (first data row, last data row)."""
    for i, col in enumerate(columns, start=1):
        cell = ws.cell(row=top, column=i, value=col.header)
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    for r, row in enumerate(rows, start=top + 1):
        for i, col in enumerate(columns, start=1):
            cell = ws.cell(row=r, column=i, value=col.value(row))
            if col.fmt:
                cell.number_format = col.fmt
    for i, col in enumerate(columns, start=1):
        letter = get_column_letter(i)
        values = [ws.cell(row=r, column=i).value for r in range(top + 1, top + 1 + len(rows))]
        width = max([_text_width(col.header)] + [_text_width(v) for v in values if v is not None]) + 3
        current = ws.column_dimensions[letter].width or 0
        ws.column_dimensions[letter].width = max(current, min(max(width, 10), 48))
    ws.freeze_panes = ws.cell(row=top + 1, column=1)
    return top + 1, top + len(rows)


def _bar_chart(ws, title: str, y_title: str, cats: tuple[int, int, int], series: list[tuple[int, int, int]],
               anchor: str, *, kind: str = "col", percent: bool = False):
    """A native Excel bar chart over the sheet's own cells: cats = (column, first row, last row),
    series = [(column, header row, last row)]."""
    chart = BarChart()
    chart.type = kind
    chart.title = title
    chart.y_axis.title = y_title
    chart.height, chart.width = 8, 16
    if percent:
        chart.y_axis.number_format = "0%"
        chart.y_axis.scaling.min = 0
        chart.y_axis.scaling.max = 1
    for col, header_row, last in series:
        chart.add_data(Reference(ws, min_col=col, min_row=header_row, max_row=last), titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=cats[0], min_row=cats[1], max_row=cats[2]))
    ws.add_chart(chart, anchor)
    return chart


def report_workbook(report: dict) -> bytes:
    p: ReportParams = report["params"]
    t, f = report["tickets"], report["fees"]
    wb = Workbook()
    summary = wb.active
    summary.title = "概要"
    sat = t["satisfaction"]
    lines = [
        ("统计区间", f"{p.date_from.isoformat()} 至 {p.date_to.isoformat()}", None),
        ("工单总数", t["total"], INT), ("评价数", sat["rated"], INT), ("平均评分", sat["average"], "0.00"),
        ("满意率（4-5分）", sat["satisfied_rate"], PCT), ("回访数", sat["visited"], INT),
        ("其中电话语音评价", sat["phone_rated"], INT), ("其中人工会话评价", sat["chat_rated"], INT),
        ("在线会话数", report["chat"]["opened"], INT),
        ("会话平均等待（秒）", report["chat"]["avg_wait_seconds"], INT),
        ("会话平均首次响应（秒）", report["chat"]["avg_first_response_seconds"], INT),
        ("区间内缴费笔数", f["payments"]["count"], INT), ("区间内缴费金额（元）", f["payments"]["amount_fen"] / 100, YUAN),
    ]
    for r, (label, value, fmt) in enumerate(lines, start=1):
        summary.cell(row=r, column=1, value=label).font = Font(bold=True)
        cell = summary.cell(row=r, column=2, value=value)
        if fmt:
            cell.number_format = fmt
    summary.column_dimensions["A"].width = 24
    summary.column_dimensions["B"].width = 28

    ws = wb.create_sheet("按类型")
    first, last = _table(ws, [
        Col("类型", "type"), Col("工单数", "count", INT), Col("已办结", "closed", INT),
        Col("平均首次响应（小时）", "response_hours", DEC1), Col("平均处理时长（小时）", "repair_hours", DEC1),
        Col("平均评分", "rating", "0.00"), Col("评价数", "rated", INT)], t["by_type"])
    _bar_chart(ws, "各类型工单数", "工单", (1, first, last), [(2, 1, last)], "I2")

    ws = wb.create_sheet("按区域")
    _table(ws, [Col("区县", "district"), Col("小区", "community"), Col("工单数", "count", INT),
                Col("未办结", "open", INT)], t["by_area"])

    ws = wb.create_sheet(f"按时间（{PERIODS[p.period]}）")
    first, last = _table(ws, [Col("时间", "period"), Col("工单数", "count", INT)], t["by_period"])
    line = LineChart()
    line.title, line.y_axis.title, line.height, line.width = "工单量走势", "工单", 8, 18
    line.add_data(Reference(ws, min_col=2, min_row=1, max_row=last), titles_from_data=True)
    line.set_categories(Reference(ws, min_col=1, min_row=first, max_row=last))
    ws.add_chart(line, "D2")

    ws = wb.create_sheet("满意度")
    first, last = _table(ws, [Col("评分", lambda r: f"{r['stars']}分"), Col("数量", "count", INT)], sat["distribution"])
    pie = PieChart()
    pie.title, pie.height, pie.width = "评分分布", 8, 12
    pie.add_data(Reference(ws, min_col=2, min_row=1, max_row=last), titles_from_data=True)
    pie.set_categories(Reference(ws, min_col=1, min_row=first, max_row=last))
    ws.add_chart(pie, "D2")

    quality = [
        Col("工单数", "count", INT), Col("已办结", "closed", INT), Col("平均响应（分钟）", "response_minutes", DEC1),
        Col("响应及时率", "response_on_time_rate", PCT), Col("平均处理（小时）", "repair_hours", DEC1),
        Col("办结及时率", "finish_on_time_rate", PCT), Col("平均评分", "rating", "0.00"),
        Col("评价数", "rated", INT), Col("满意率", "satisfied_rate", PCT)]
    ws = wb.create_sheet("班组统计")
    first, last = _table(ws, [Col("班组", "name")] + quality, report["crews"])
    if report["crews"]:
        _bar_chart(ws, "各班组及时率", "及时率", (1, first, last), [(5, 1, last), (7, 1, last)], "L2", percent=True)

    ws = wb.create_sheet("客服统计")
    first, last = _table(ws, [
        Col("客服", "name"), Col("受理工单", "count", INT), Col("办结及时率", "finish_on_time_rate", PCT),
        Col("工单评分", "rating", "0.00"), Col("接听来电", "calls", INT), Col("平均振铃（秒）", "ring_seconds", INT),
        Col("平均通话（秒）", "talk_seconds", INT), Col("来电评分", "call_rating", "0.00"),
        Col("在线会话", "conversations", INT), Col("会话首次响应（秒）", "chat_first_response_seconds", INT),
        Col("会话评分", "chat_rating", "0.00"), Col("评价总数", "all_rated", INT),
        Col("综合评分", "all_rating", "0.00"), Col("满意率", "all_satisfied_rate", PCT)], report["agents"])
    if report["agents"]:
        _bar_chart(ws, "客服满意率", "满意率", (1, first, last), [(14, 1, last)], "A" + str(last + 3), percent=True)

    c = report["chat"]
    ws = wb.create_sheet("在线会话")
    ws.column_dimensions["A"].width = 20
    top = 1
    for label, value, fmt in (("会话数", c["opened"], INT), ("已接入", c["answered"], INT),
                              ("未接入", c["unanswered"], INT), ("平均等待（秒）", c["avg_wait_seconds"], INT),
                              ("平均首次响应（秒）", c["avg_first_response_seconds"], INT),
                              ("平均评分", c["avg_rating"], "0.00"), ("评价数", c["rated"], INT),
                              ("满意率", c["satisfied_rate"], PCT)):
        ws.cell(row=top, column=1, value=label).font = Font(bold=True)
        cell = ws.cell(row=top, column=2, value=value)
        if fmt:
            cell.number_format = fmt
        top += 1
    first, last = _table(ws, [
        Col("客服", "name"), Col("会话数", "conversations", INT), Col("平均等待（秒）", "avg_wait_seconds", INT),
        Col("平均首次响应（秒）", "avg_first_response_seconds", INT), Col("平均评分", "rating", "0.00"),
        Col("评价数", "rated", INT)], c["per_agent"], top=top + 1)
    if c["per_agent"]:
        _bar_chart(ws, "各客服会话数", "会话", (1, first, last), [(2, top + 1, last)], "H2")

    ws = wb.create_sheet("收费")
    first, last = _table(ws, [Col("采暖季", "season"), Col("应收（元）", "due_fen", YUAN), Col("实收（元）", "paid_fen", YUAN),
                              Col("收缴率", "rate", PCT), Col("账单数", "bills", INT), Col("已缴清", "paid_bills", INT)],
                         f["seasons"])
    ws = wb.create_sheet("收费按区县")
    first, last = _table(ws, [Col("区县", "district"), Col("应收（元）", "due_fen", YUAN), Col("实收（元）", "paid_fen", YUAN),
                              Col("收缴率", "rate", PCT)], f["by_district"])
    if f["by_district"]:
        _bar_chart(ws, f"{f['latest_season']} 采暖季各区收缴率", "收缴率", (1, first, last), [(4, 1, last)], "F2",
                   percent=True)
    buf = BytesIO()
    wb.save(buf)
    return buf.getvalue()
