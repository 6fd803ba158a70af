"""进度 in the official-account chat: the resident's open tickets with their latest steps,
deadlines and a link to each ticket's page; with none open, the last closed one."""
from __future__ import annotations

from app.clock import local_now
from app.extensions import db
from app.links import ticket_url
from app.models import Ticket, TicketCategory, TicketState, TicketType, WechatUser
from app.services import access, ratings
from app.services.tickets import EVENT_LABELS

MAX_TICKETS = 5
STEPS_SHOWN = 3


def _local(dt) -> str:
    return local_now(dt).strftime("%m月%d日%H:%M") if dt else "—"


def _what(ticket: Ticket) -> str:
    kind = TicketType.LABELS.get(ticket.type, ticket.type)
    category = TicketCategory.LABELS.get(ticket.category)
    return f"{kind}·{category}" if category and ticket.category != TicketCategory.OTHER else kind


def _link(ticket: Ticket) -> str:
    return f'<a href="{ticket_url(ticket)}">查看详情</a>'


def _steps(ticket: Ticket) -> list[str]:
    lines = []
    for event in ticket.events[-STEPS_SHOWN:]:
        note = f"：{event.note[:30]}" if event.note else ""
        lines.append(f"  · {_local(event.created_at)} {EVENT_LABELS.get(event.action, event.action)}{note}")
    return lines


def _deadlines(ticket: Ticket) -> str:
    if ticket.sla_held_at is not None:
        return "  时限：等待停热恢复，暂停计时"
    parts = []
    if ticket.respond_by and ticket.accepted_at is None:
        parts.append(f"响应时限 {_local(ticket.respond_by)}")
    if ticket.finish_by:
        parts.append(f"完成时限 {_local(ticket.finish_by)}")
    return "  " + "，".join(parts) if parts else ""


def progress_text(user: WechatUser) -> str:
    """What 进度 answers ``user`` (the tickets they reported or of a household bound to them)."""
    mine = access.visible_tickets(user)
    rows = list(db.session.scalars(mine.where(Ticket.state.in_(TicketState.OPEN))
                                   .order_by(Ticket.created_at.desc()).limit(MAX_TICKETS)))
    if rows:
        blocks = []
        for t in rows:
            lines = [f"【{t.number}】{_what(t)}：{TicketState.LABELS[t.state]}"]
            if t.crew is not None:
                lines.append(f"  处理：{t.crew.name}{'·' + t.assignee.name if t.assignee else ''}")
            lines += _steps(t)
            deadline = _deadlines(t)
            if deadline:
                lines.append(deadline)
            lines.append("  " + _link(t))
            blocks.append("\n".join(lines))
        return f"您有{len(rows)}张处理中的工单：\n" + "\n".join(blocks)
    last = db.session.scalar(mine.where(Ticket.state == TicketState.CLOSED)
                             .order_by(Ticket.closed_at.desc(), Ticket.id.desc()).limit(1))
    if last is None:
        return "您目前没有处理中的工单。如需报修，请直接描述问题，例如“卧室暖气不热”。"
    text = (f"您目前没有处理中的工单。最近办结的是【{last.number}】{_what(last)}，"
            f"{_local(last.closed_at)}办结。{_link(last)}")
    if last.id == getattr(ratings.awaiting_rating(user), "id", None):
        text += "\n欢迎为本次服务评价：直接回复1-5分（5分最满意）。"
    return text
