"""Deadline reminders and escalation (限时提醒及催办).

For each open ticket and each of its deadlines (respond by, finish by) the ladder has three
levels:

| level | when | who |
| --- | --- | --- |
| ``before`` | ``REMINDER_LEAD_MINUTES`` (30) before the deadline | the assignee (else the crew lead) |
| ``due`` | at the deadline | the assignee and the crew lead |
| ``overdue`` | ``ESCALATE_AFTER_MINUTES`` (60) past the deadline | the leader(s) on duty (值班领导) |

The respond-by ladder stops once the ticket is accepted; the finish-by ladder once it is
replied, closed or cancelled. ``before`` is not sent once the deadline has passed (it would
be wrong), so a late scan goes straight to ``due``/``overdue``.

Exactly once: ``scan_deadlines`` (cron, every minute, several schedulers allowed) inserts one
``reminder_sent`` row per (ticket, deadline, level) with ``INSERT … ON CONFLICT DO NOTHING``
and, in the same transaction, one outbox row per recipient; only the run whose insert won
records them. The outbox handler sends with a notice key per (ticket, deadline, level,
staff), checks again that the ticket has not moved on, and never sends twice.

Emergencies (leak, burst pipe) are alerted to the crew lead at once by the ticket service
(outbox "notify.emergency_alert", jobs.notify.emergency_alert), not by this ladder.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, exists, select

from app.dbutil import insert_or_skip
from app.extensions import db
from app.models import ReminderLevel, ReminderSent, Role, Staff, Ticket, TicketState, utcnow
from app.services import outbox
from jobs.notify import _local, _send_to_staff, _task_page, _where
from wechat.notify import Notice

log = logging.getLogger(__name__)
L = ReminderLevel
TOPIC = "notify.deadline_reminder"

# deadline column -> the states in which that deadline still matters
DEADLINES = {
    "respond_by": (TicketState.NEW, TicketState.ASSIGNED),
    "finish_by": (TicketState.NEW, TicketState.ASSIGNED, TicketState.ACCEPTED, TicketState.IN_PROGRESS),
}
DEADLINE_LABELS = {"respond_by": "响应", "finish_by": "办结"}


def _minutes(name: str, default: int) -> timedelta:
    return timedelta(minutes=int(current_app.config.get(name, default)))


def lead_time() -> timedelta:
    return _minutes("REMINDER_LEAD_MINUTES", 30)


def escalate_after() -> timedelta:
    return _minutes("ESCALATE_AFTER_MINUTES", 60)


def _window(level: str, column, now: datetime):
    """SQL condition: this level of this deadline is due now."""
    if level == L.BEFORE:
        return and_(column > now, column <= now + lead_time())
    if level == L.DUE:
        return column <= now
    return column <= now - escalate_after()


def _crew_leads(crew_id: int | None) -> list[int]:
    if crew_id is None:
        return []
    return list(db.session.scalars(select(Staff.id).where(
        Staff.crew_id == crew_id, Staff.role == Role.CREW_LEAD, Staff.active.is_(True)).order_by(Staff.id)))


def _leaders_on_duty() -> list[int]:
    return list(db.session.scalars(select(Staff.id).where(
        Staff.role == Role.LEADER, Staff.on_duty.is_(True), Staff.active.is_(True)).order_by(Staff.id)))


def recipients(ticket: Ticket, level: str) -> list[int]:
    if level == L.BEFORE:
        ids = [ticket.assignee_id] if ticket.assignee_id else _crew_leads(ticket.crew_id)
    elif level == L.DUE:
        ids = ([ticket.assignee_id] if ticket.assignee_id else []) + _crew_leads(ticket.crew_id)
    else:
        ids = _leaders_on_duty()
    return list(dict.fromkeys(i for i in ids if i))


def scan_deadlines(now: datetime | None = None, limit: int = 500) -> int:
    """Record the reminders that are due now; returns how many ladder steps were recorded."""
    now = now or utcnow()
    recorded = 0
    for deadline, states in DEADLINES.items():
        column = getattr(Ticket, deadline)
        for level in L.ALL:
            already = exists().where(ReminderSent.ticket_id == Ticket.id, ReminderSent.deadline == deadline,
                                     ReminderSent.level == level)
            tickets = db.session.scalars(
                select(Ticket).where(Ticket.state.in_(states), column.isnot(None), _window(level, column, now),
                                     ~already).order_by(column).limit(limit)).all()
            for ticket in tickets:
                recorded += _record_step(ticket, deadline, level, now)
    return recorded


def _record_step(ticket: Ticket, deadline: str, level: str, now: datetime) -> int:
    staff_ids = recipients(ticket, level)
    won = db.session.execute(
        insert_or_skip(ReminderSent.__table__, conflict=["ticket_id", "deadline", "level"]).values(
            ticket_id=ticket.id, deadline=deadline, level=level, deadline_at=getattr(ticket, deadline),
            recipients=len(staff_ids), created_at=now).returning(ReminderSent.__table__.c.id)).first()
    if won is None:
        db.session.rollback()  # another scheduler or a re-run recorded it first
        return 0
    for staff_id in staff_ids:
        outbox.record(TOPIC, {"ticket_id": ticket.id, "deadline": deadline, "level": level, "staff_id": staff_id},
                      dedupe_key=f"reminder:{ticket.id}:{deadline}:{level}:{staff_id}",
                      ordering_key=f"ticket:{ticket.id}")
    if not staff_ids:
        log.warning("reminder %s/%s/%s for ticket %s has nobody to tell", deadline, level, ticket.number, ticket.id)
    db.session.commit()  # the row and its outbox rows together; delivery is enqueued after commit
    return 1


def _still_relevant(ticket: Ticket, deadline: str) -> bool:
    return ticket.state in DEADLINES[deadline]


def _title(ticket: Ticket, deadline: str, level: str) -> str:
    what = DEADLINE_LABELS[deadline]
    at = _local(getattr(ticket, deadline))
    if level == L.BEFORE:
        return f"【即将超时】工单{ticket.number}须在{at}前{what}"
    if level == L.DUE:
        return f"【已到时限】工单{ticket.number}{what}时限已到（{at}）"
    return f"【超时催办】工单{ticket.number}已超过{what}时限（{at}），请督办"


REMARKS = {
    ("respond_by", L.BEFORE): "请尽快在小程序“我的任务”中接单。",
    ("finish_by", L.BEFORE): "请抓紧处理并及时回复处理结果。",
    ("respond_by", L.DUE): "工单仍未接单，请班组长协调处理。",
    ("finish_by", L.DUE): "工单仍未办结，请班组长督促处理。",
}
LEVEL_WORDS = {L.BEFORE: "即将超时", L.DUE: "已到时限"}   # phrase keys: at most 5 Chinese characters


def send_deadline_reminder(payload: dict, outbox_id: int) -> None:
    """Outbox handler of "notify.deadline_reminder": one person, one ladder step. Before and
    at the deadline it is a reminder (kind ``deadline_reminder``); past it, an escalation to
    the leaders (kind ``deadline_escalation``)."""
    ticket = db.session.get(Ticket, payload["ticket_id"])
    deadline, level = payload["deadline"], payload["level"]
    if ticket is None or not _still_relevant(ticket, deadline):
        return  # the ticket moved on: the ladder stops
    what = DEADLINE_LABELS[deadline]
    values = {"ticket_no": ticket.number, "address": _where(ticket), "deadline": getattr(ticket, deadline),
              "assignee": ticket.assignee.name if ticket.assignee else "待派单"}
    if level == L.OVERDUE:
        kind = "deadline_escalation"
        values["overdue"] = f"{what}超时"
    else:
        kind = "deadline_reminder"
        values.update(level=LEVEL_WORDS[level], deadline_type=f"{what}时限")
    _send_to_staff(payload["staff_id"], Notice(
        key=f"reminder:{ticket.id}:{deadline}:{level}:staff:{payload['staff_id']}", kind=kind,
        title=_title(ticket, deadline, level), values=values,
        remark=REMARKS.get((deadline, level), "工单已超时，请值班领导督办。"), mp_page=_task_page(ticket)))
