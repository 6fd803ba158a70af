"""Outbox handlers that keep residents informed about their tickets, and tell a crew lead of a
low rating (app/services/resident_notices.py, app/services/ratings.py).

One notice per timeline event and recipient: the notice key is the event's, so a re-run job,
a swept row or a repeated event sends nothing twice. A push about a non-emergency ticket due
in quiet hours raises ``Deferred`` with the end of the quiet period: the outbox row waits
until then (its not-before time) and the sweeper sends it at that hour.
"""
from __future__ import annotations

import logging

from app.clock import local_now
from app.extensions import db
from app.links import task_url, ticket_url
from app.models import Crew, Staff, Ticket, TicketEvent, TicketState, WechatUser
from app.queue import Deferred
from app.services import ratings, resident_notices
from jobs.notify import _send_to_staff, _task_page
from wechat.notify import Notice, send_notice

log = logging.getLogger(__name__)

RATE_INVITATION = (f"欢迎对本次服务评价：直接回复1-5分（5分最满意），{int(ratings.CHAT_WINDOW.total_seconds() // 3600)}"
                   "小时内有效；如问题未解决，可在7日内申请重新处理。")


def _hold_in_quiet_hours(ticket: Ticket | None) -> None:
    if ticket is not None and resident_notices.is_urgent(ticket):
        return
    until = resident_notices.quiet_until()
    if until is not None:
        raise Deferred(until, f"免打扰时段，{local_now(until):%H:%M}后发送")


def _crew_and_handler(event: TicketEvent) -> tuple[str, str]:
    target = (event.data or {}).get("to") or {}
    crew = db.session.get(Crew, target["crew_id"]) if target.get("crew_id") else None
    staff = db.session.get(Staff, target["staff_id"]) if target.get("staff_id") else None
    return (crew.name if crew else "维修班组"), (staff.name if staff else "待班组安排")


def _expected_by(ticket: Ticket, event: TicketEvent):
    """The time the resident may expect a response: the response deadline while it is ahead,
    else the finish deadline (a forwarded or reopened task)."""
    if ticket.respond_by is not None and ticket.respond_by > event.created_at:
        return ticket.respond_by
    return ticket.finish_by or ticket.respond_by


def _dispatch_notice(ticket: Ticket, event: TicketEvent, key: str) -> Notice:
    crew, handler = _crew_and_handler(event)
    if event.action == "forwarded":
        title = f"您的工单已转交{crew}处理"
        note = f"原处理人说明：{event.note}" if event.note else "已转交负责的班组"
    elif event.action == "reopened":
        title = "您的工单已重新打开，维修人员将再次处理"
        note = f"重新处理原因：{event.note}" if event.note else "已重新安排处理"
    else:
        title = "您的报修已派单，维修人员将尽快与您联系"
        note = "已安排维修人员，请保持电话畅通"
    return Notice(key=key, kind="ticket_dispatched", title=title,
                  values={"ticket_no": ticket.number, "crew": crew, "handler": handler,
                          "expected_by": _expected_by(ticket, event), "note": note},
                  remark="回复【进度】可随时查看处理情况。", url=ticket_url(ticket),
                  mp_page=f"pages/repair/detail?id={ticket.id}")


def _update_notice(ticket: Ticket, event: TicketEvent, key: str) -> Notice:
    state, remark = TicketState.LABELS.get(event.to_state, "处理中"), None
    if event.action == "accepted":
        who = event.actor_name or "维修人员"
        title, result = "维修人员已接单", f"{who}已接单，将尽快上门处理"
    elif event.action == "replied":
        title, result = "维修人员已处理并回复", event.note or ticket.reply or "已处理"
        remark = "如问题未解决，可在7日内申请重新处理。"
    elif event.action == "closed":
        title, result = "您的工单已办结", event.note or ticket.final_answer or "已办结"
        remark = RATE_INVITATION if ticket.rating is None else None
    elif event.action == "reopened":
        title, state, result = "您的工单已重新打开", "重新处理", event.note or "已重新打开，客服将尽快处理"
    else:  # cancelled by customer service
        title, result = "您的工单已撤销", event.note or "工单已撤销"
    return Notice(key=key, kind="ticket_updated", title=title,
                  values={"ticket_no": ticket.number, "state": state, "result": result[:200],
                          "updated_at": event.created_at},
                  remark=remark, url=ticket_url(ticket), mp_page=f"pages/repair/detail?id={ticket.id}")


def push_ticket_change(payload: dict, outbox_id: int) -> None:
    """Handler of ``notify.ticket_change``: one change of one ticket, to one resident."""
    ticket = db.session.get(Ticket, payload["ticket_id"])
    event = db.session.get(TicketEvent, payload["event_id"])
    user = db.session.get(WechatUser, payload["wechat_user_id"])
    if ticket is None or event is None or user is None:
        return
    _hold_in_quiet_hours(ticket)
    key = f"ticket_change:{event.id}:user:{user.id}"
    if event.action in ("assigned", "forwarded") or (event.action == "reopened" and event.to_state == TicketState.ASSIGNED):
        notice = _dispatch_notice(ticket, event, key)
    else:
        notice = _update_notice(ticket, event, key)
    send_notice(user, notice)


def low_rating_alert(payload: dict, outbox_id: int) -> None:
    """Handler of ``notify.low_rating``: the crew lead hears of a rating of 2 or less."""
    ticket = db.session.get(Ticket, payload["ticket_id"])
    if ticket is None or ticket.rating is None:
        return
    _hold_in_quiet_hours(None)
    _send_to_staff(payload["staff_id"], Notice(
        key=f"low_rating:{payload['event_id']}:staff:{payload['staff_id']}", kind="low_rating_alert",
        title=f"【服务差评】工单{ticket.number}用户评价{ticket.rating}分，请关注",
        values={"ticket_no": ticket.number, "score": ticket.rating, "comment": ticket.rating_comment or "未填写评语",
                "assignee": ticket.assignee.name if ticket.assignee else "无", "rated_at": ticket.rated_at},
        remark="客服将对该用户进行回访，请班组核实处理情况。", url=task_url(ticket), mp_page=_task_page(ticket)))
