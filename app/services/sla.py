"""Ticket deadlines (respond by, finish by) from the editable SLA policy table.

The numbers live in ``sla_policy`` rows (seeded by the first migration, edited by staff);
this module looks them up and says which open tickets are past them. A row for the exact
ticket type wins over the ``"*"`` row of the same priority.

Two deadlines, each flagged on its own: 超时未响应 — nobody has taken the ticket (new or
assigned, not yet accepted) and ``respond_by`` has passed; 超时未完成 — the ticket is still
open and ``finish_by`` has passed. A ticket held for an outage has neither deadline.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select

from app.errors import DomainError
from app.extensions import db
from app.models import Priority, SlaPolicy, Ticket, TicketState, TicketType

ANY_TYPE = "*"
# Not yet responded to: nobody has accepted the ticket (the first response is the acceptance).
AWAITING_RESPONSE = (TicketState.NEW, TicketState.ASSIGNED)


class SlaMissingError(DomainError):
    status = 500
    code = "sla_missing"


def policy_for(ticket_type: str, priority: str) -> SlaPolicy:
    rows = db.session.scalars(
        select(SlaPolicy).where(SlaPolicy.priority == priority,
                                SlaPolicy.ticket_type.in_((ticket_type, ANY_TYPE)))
    ).all()
    exact = [r for r in rows if r.ticket_type == ticket_type]
    if exact:
        return exact[0]
    if rows:
        return rows[0]
    raise SlaMissingError(
        f"未配置“{TicketType.LABELS.get(ticket_type, ticket_type)}/"
        f"{Priority.LABELS.get(priority, priority)}”的办理时限，请管理员在时限规则中补充"
    )


def deadlines_for(ticket_type: str, priority: str, start: datetime) -> tuple[datetime, datetime]:
    """(respond_by, finish_by) for a ticket of this type and priority opened at ``start``.

    Reads the two numbers only (no ORM object): this runs for every new ticket."""
    rows = db.session.execute(
        select(SlaPolicy.ticket_type, SlaPolicy.respond_minutes, SlaPolicy.finish_minutes)
        .where(SlaPolicy.priority == priority, SlaPolicy.ticket_type.in_((ticket_type, ANY_TYPE)))
        .order_by(SlaPolicy.id)).all()
    if not rows:
        policy_for(ticket_type, priority)  # raises SlaMissingError with its message
    _, respond, finish = next((r for r in rows if r.ticket_type == ticket_type), rows[0])
    return start + timedelta(minutes=respond), start + timedelta(minutes=finish)


def apply_deadlines(ticket: Ticket) -> None:
    """Set (or recompute, e.g. after a priority change) the ticket's deadlines from its opening time."""
    ticket.respond_by, ticket.finish_by = deadlines_for(ticket.type, ticket.priority, ticket.created_at)


def response_overdue(now: datetime):
    """SQL condition: 超时未响应 at ``now``."""
    return and_(Ticket.state.in_(AWAITING_RESPONSE), Ticket.respond_by < now)


def finish_overdue(now: datetime):
    """SQL condition: 超时未完成 at ``now``."""
    return and_(Ticket.state.in_(TicketState.OPEN), Ticket.finish_by < now)


def responded_on_time():
    """SQL condition: an accepted ticket was accepted by ``respond_by`` (none: on time)."""
    return or_(Ticket.respond_by.is_(None), Ticket.accepted_at <= Ticket.respond_by)


def finished_on_time(end):
    """SQL condition: a finished ticket ended (``end``: the crew's answer, else the closing)
    by ``finish_by`` (none — the clock held for an outage: on time)."""
    return or_(Ticket.finish_by.is_(None), end <= Ticket.finish_by)


def is_response_overdue(ticket: Ticket, now: datetime) -> bool:
    return ticket.state in AWAITING_RESPONSE and ticket.respond_by is not None and ticket.respond_by < now


def is_finish_overdue(ticket: Ticket, now: datetime) -> bool:
    return ticket.state in TicketState.OPEN and ticket.finish_by is not None and ticket.finish_by < now
