"""Residents kept informed: which ticket changes they hear of, who hears, and when.

Each change in ``PUSHED_ACTIONS`` — assigned, accepted, forwarded, replied, closed, reopened
(and cancelled by staff) — records one outbox row per recipient in the same transaction as
the change, keyed by the timeline event (``ticket_change:<event id>:<user id>``), so a retried
request, job or repeated event never tells anyone twice. The job ``jobs.resident_pushes``
builds the message when it is delivered.

Recipients: the reporter's WeChat user; for a ticket nobody reported from WeChat (a phone
call), the WeChat users bound to the ticket's household.

Quiet hours (``QUIET_HOURS``, local time, default 22:00–07:00): a push about a non-emergency
ticket that falls due in them is held until the period ends (``quiet_until``) — the outbox
row waits with that not-before time; emergency tickets are never held.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta

from flask import current_app
from sqlalchemy import select

from app.clock import local_now
from app.extensions import db
from app.models import HouseholdBinding, Priority, Ticket, TicketEvent, utcnow
from app.services import outbox

TOPIC = "notify.ticket_change"
PUSHED_ACTIONS = ("assigned", "accepted", "forwarded", "replied", "closed", "reopened", "cancelled")
MAX_HOUSEHOLD_RECIPIENTS = 5


def recipients(ticket: Ticket) -> list[int]:
    """WeChat user ids to tell about ``ticket``."""
    if ticket.reporter_id is not None:
        return [ticket.reporter_id]
    if ticket.household_id is None:
        return []
    return list(db.session.scalars(
        select(HouseholdBinding.wechat_user_id).where(HouseholdBinding.household_id == ticket.household_id)
        .order_by(HouseholdBinding.id).limit(MAX_HOUSEHOLD_RECIPIENTS)))


def record_ticket_change(ticket: Ticket, event: TicketEvent) -> None:
    """One push per recipient for this timeline event (nothing for actions residents are not told)."""
    if event.action not in PUSHED_ACTIONS:
        return
    for user_id in recipients(ticket):
        outbox.record(TOPIC, {"ticket_id": ticket.id, "event_id": event.id, "wechat_user_id": user_id},
                      dedupe_key=f"ticket_change:{event.id}:{user_id}", ordering_key=f"resident:{user_id}")


def is_urgent(ticket: Ticket) -> bool:
    """Pushes about emergency tickets go out at any hour."""
    return ticket.priority == Priority.EMERGENCY


def quiet_until(now: datetime | None = None) -> datetime | None:
    """When the quiet period ``now`` falls in ends, or None outside quiet hours (or with none)."""
    now = now or utcnow()
    period: tuple[time, time] | None = current_app.config.get("QUIET_HOURS")
    if not period:
        return None
    start, end = period
    local = local_now(now)
    clock = local.time()
    inside = start <= clock < end if start < end else (clock >= start or clock < end)
    if not inside:
        return None
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=local.tzinfo).astimezone(now.tzinfo)
