"""Excel exports of console lists (openpyxl): the ticket list as filtered on the page.

Names and phone numbers are masked as on the page (the export is a list, not a customer
page); times are local (Beijing) date-times Excel understands; both deadlines are flagged.
The caller records the export in the personal-data access log and commits.
"""
from __future__ import annotations

from datetime import datetime
from io import BytesIO
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from app import phones
from app.models import Priority, Ticket, TicketCategory, TicketSource, TicketState, TicketType
from app.services import sla
from app.services.privacy import mask_name

MAX_ROWS = 10000
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
HEADER_FILL = PatternFill("solid", fgColor="DDE3EA")
LATE_FONT = Font(color="C0392B", bold=True)

# (header, width) of each column, in order.
TICKET_COLUMNS = [
    ("工单号", 20), ("创建时间", 17), ("来源", 8), ("类型", 7), ("分类", 10), ("优先级", 7), ("状态", 8),
    ("户号", 11), ("地址", 34), ("来电人", 9), ("联系电话", 14), ("问题描述", 40), ("班组", 14), ("处理人", 9),
    ("响应时限", 17), ("完成时限", 17), ("超时未响应", 10), ("超时未完成", 10), ("办结时间", 17),
]
FILTER_LABELS = {"q": "搜索", "state": "状态", "type": "类型", "priority": "优先级", "district_id": "区县",
                 "community_id": "小区", "crew_id": "班组", "date_from": "创建自", "date_to": "创建至",
                 "overdue": "超时", "sort": "排序"}
OVERDUE_LABELS = {"response": "超时未响应", "finish": "超时未完成", "1": "超时未完成", "any": "超时未响应或未完成"}


def describe_filters(filters: dict) -> str:
    parts = []
    for key, value in filters.items():
        if key not in FILTER_LABELS:
            continue
        if key == "state":
            value = {"open": "未办结", "all": "全部"}.get(value) or TicketState.LABELS.get(value, value)
        elif key == "type":
            value = TicketType.LABELS.get(value, value)
        elif key == "overdue":
            value = OVERDUE_LABELS.get(value, value)
        elif key == "sort":
            value = "最新创建" if value == "new" else value
        parts.append(f"{FILTER_LABELS[key]}：{value}")
    return "；".join(parts) or "未办结（默认）"


def _local(value: datetime | None, tz: ZoneInfo):
    return value.astimezone(tz).replace(tzinfo=None) if value is not None else None


def tickets_workbook(rows: list[Ticket], *, now: datetime, tz: ZoneInfo, truncated: bool = False,
                     filters: str = "") -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = "工单"
    ws.append([f"工单列表 导出于 {now.astimezone(tz).strftime('%Y-%m-%d %H:%M')}（北京时间）  筛选：{filters}"
               + (f"  仅导出前{MAX_ROWS}条，请缩小筛选范围" if truncated else "")])
    ws.append([header for header, _ in TICKET_COLUMNS])
    for cell in ws[2]:
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(vertical="center")
    for t in rows:
        late_response, late_finish = sla.is_response_overdue(t, now), sla.is_finish_overdue(t, now)
        ws.append([
            t.number, _local(t.created_at, tz), TicketSource.LABELS.get(t.source, t.source),
            TicketType.LABELS.get(t.type, t.type), TicketCategory.LABELS.get(t.category, t.category),
            Priority.LABELS.get(t.priority, t.priority), TicketState.LABELS.get(t.state, t.state),
            t.household.account_no if t.household else "", t.address or "", mask_name(t.caller_name),
            phones.masked(t.caller_phone), t.description, t.crew.name if t.crew else "",
            t.assignee.name if t.assignee else "", _local(t.respond_by, tz), _local(t.finish_by, tz),
            "是" if late_response else "", "是" if late_finish else "", _local(t.closed_at, tz),
        ])
        row = ws.max_row
        for col in (2, 15, 16, 19):
            ws.cell(row=row, column=col).number_format = DATETIME_FORMAT
        for col, late in ((17, late_response), (18, late_finish)):
            if late:
                ws.cell(row=row, column=col).font = LATE_FONT
    for i, (_, width) in enumerate(TICKET_COLUMNS, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "A3"
    ws.auto_filter.ref = f"A2:{get_column_letter(len(TICKET_COLUMNS))}{max(ws.max_row, 2)}"
    buf = BytesIO()
    wb.save(buf)
    return buf.getvalue()
