"""The phone system's view of our domain: tickets and calls in, the caller's screen pop out.

Plain domain logic for the bridge (no HTTP, no commit): the boundary in
``app/bridge/ingest.py`` parses, deduplicates by event id and commits once. Ticket changes
go through :mod:`app.services.tickets`, so routing, SLA, the crew's push and the emergency
alert are the same as for any other channel.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask import current_app, has_app_context
from sqlalchemy import func, or_, select
from sqlalchemy.orm import joinedload, selectinload

from app.clock import local_tz
from app import phones
from app.dbutil import insert_or_skip
from app.errors import ValidationError
from app.extensions import db
from app.models import (
    CallbackState, CallbackTask, CallLog, CallStatus, Household, Staff, Ticket, TicketCategory, TicketSource,
    TicketState, utcnow,
)
from app.services import tickets
from app.services.actors import Actor
from app.services.billing import household_arrears
from app.services import outages
from app.services.outages import outages_touching
from app.text import clean_text

# Within one instant, a later stage of a call wins over an earlier one.
_CALL_RANK = {CallStatus.RINGING: 0, CallStatus.ANSWERED: 1, CallStatus.HANGUP: 2, CallStatus.MISSED: 2}
MAX_HOUSEHOLDS_PER_PHONE = 20
OPEN_TICKETS_SHOWN = 20
RECENT_TICKETS_SHOWN = 5


# --- matching -------------------------------------------------------------------------------

# A new ticket copies the household's address: load its district and community in the same query.
_WITH_ADDRESS = (joinedload(Household.district), joinedload(Household.community))


def match_household(account_no: str | None, phone: str | None) -> Household | None:
    """By account number; else the one household registered with this phone (several: none).

    ``phone`` in any accepted form (stored numbers are E.164, ``app.phones``)."""
    if account_no:
        household = db.session.scalar(select(Household).options(*_WITH_ADDRESS)
                                      .where(Household.account_no == clean_text(account_no)))
        if household is not None:
            return household
    phone = phones.try_normalise(phone) if phone else None
    if phone:
        found = list(db.session.scalars(select(Household).options(*_WITH_ADDRESS)
                                        .where(Household.owner_phone == phone).limit(2)))
        if len(found) == 1:
            return found[0]
    return None


def find_staff(ref: str) -> Staff:
    """A staff member named by username or phone (the phone system's ``assignee``)."""
    ref = clean_text(ref)
    staff = db.session.scalar(select(Staff).where(Staff.username == ref))
    phone = phones.try_normalise(ref) if staff is None else None
    if phone is not None:
        staff = db.session.scalar(select(Staff).where(Staff.phone == phone).order_by(Staff.active.desc(), Staff.id))
    if staff is None:
        raise ValidationError("指定的处理人不存在", fields={"assignee": [f"找不到用户名或电话为 {ref} 的员工"]})
    return staff


# --- tickets --------------------------------------------------------------------------------

@dataclass
class TicketOutcome:
    result: str            # created | updated | unchanged | stale
    ticket: Ticket
    occurred_at: datetime


def apply_ticket_event(data: dict, *, received_at: datetime | None = None) -> TicketOutcome:
    """Create the ticket for a new ``external_id``, or apply a newer event to it.

    The event's time is ``occurred_at`` (else ``created_at``, else when we received it); an
    event not newer than the last one applied is ``stale``: recorded by the caller, not applied.
    Out-of-order delivery therefore ends in the newest state whatever the arrival order.
    """
    received_at = received_at or utcnow()
    occurred_at = data.get("occurred_at") or data.get("created_at") or received_at
    actor = Actor.phone(data.get("agent"))
    description = data["description"]
    if data.get("category_tag"):
        description = f"【{data['category_tag']}】{description}"
    assignee = find_staff(data["assignee"]) if data.get("assignee") else None

    ticket = db.session.scalar(
        select(Ticket).where(Ticket.external_id == data["external_id"]).with_for_update())
    if ticket is None:
        created_at = min(data.get("created_at") or occurred_at, received_at)
        ticket = tickets.create_ticket(
            actor, type=data["type"], source=TicketSource.PHONE, description=description,
            category=data.get("category") or TicketCategory.OTHER, priority=data.get("priority"),
            household=match_household(data.get("account_no"), data["caller_phone"]),
            caller_phone=data["caller_phone"], caller_name=data.get("caller_name"),
            address=data.get("address"), recording_url=data.get("recording_url"),
            external_id=data["external_id"], now=created_at, assign_to=assignee,
            caller_phone_ext=data.get("caller_phone_ext"), external_updated_at=occurred_at,
            external_id_checked=True,  # just looked up, locked: none
        )
        return TicketOutcome("created", ticket, occurred_at)

    if ticket.external_updated_at is not None and occurred_at <= ticket.external_updated_at:
        return TicketOutcome("stale", ticket, occurred_at)
    household_id = None
    if data.get("account_no"):
        household = match_household(data["account_no"], None)
        household_id = household.id if household is not None else None
    changed = tickets.update_details(
        ticket, actor, type=data["type"], category=data.get("category"), priority=data.get("priority"),
        description=description, address=data.get("address"), caller_phone=data["caller_phone"],
        caller_name=data.get("caller_name"), recording_url=data.get("recording_url"), household_id=household_id,
    ) is not None
    if assignee is not None and ticket.assignee_id != assignee.id:
        tickets.assign_ticket(ticket, actor, staff=assignee, note="呼叫中心指定处理人")
        changed = True
    if ticket.caller_phone_ext != data.get("caller_phone_ext"):
        ticket.caller_phone_ext = data.get("caller_phone_ext")
        changed = True
    ticket.external_updated_at = occurred_at
    return TicketOutcome("updated" if changed else "unchanged", ticket, occurred_at)


def outage_answer(ticket: Ticket) -> dict:
    """The outage part of the answer to a ticket event: the outage the report is linked to
    (or, for a report dispatched as usual, the active outage of its area) and what the agent
    can tell the caller at once."""
    if ticket.outage_id is not None and tickets.waits_on_outage(ticket):
        outage = ticket.outage
        return {"outage": outage, "linked": True, "message": outages.linked_message(outage)}
    outage = tickets.area_outage(ticket)  # a new ticket: as create_ticket found it, not looked up twice
    if outage is None:
        return {"outage": None, "linked": False, "message": None}
    return {"outage": outage, "linked": False,
            "message": f"该户所在区域正在停热：{outage.title}，预计{outages.local_time(outage.expected_end_at)}恢复供热；"
                       "本次报修已照常派单。"}


# --- calls ----------------------------------------------------------------------------------

def working_hours() -> tuple[time, time]:
    """BRIDGE_WORKING_HOURS "HH:MM-HH:MM" (local time); default 08:00-20:00."""
    spec = (current_app.config.get("BRIDGE_WORKING_HOURS") if has_app_context() else None) or "08:00-20:00"
    start, _, end = spec.partition("-")
    return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())


def in_working_hours(at: datetime) -> bool:
    start, end = working_hours()
    local = at.astimezone(local_tz()).time()
    return start <= local < end if start <= end else (local >= start or local < end)


@dataclass
class CallOutcome:
    result: str                       # recorded | stale
    call: CallLog
    callback: CallbackTask | None


def record_call_event(data: dict, *, received_at: datetime | None = None) -> CallOutcome:
    """Merge one call event into the call's log; a missed call outside working hours gets a call-back task.

    Events of a call may arrive in any order: times and details merge, and the status is
    the one of the newest event (at equal times, the later stage).
    """
    occurred_at = data.get("occurred_at") or received_at or utcnow()
    event = data["event"]
    call = db.session.scalar(select(CallLog).where(CallLog.call_id == data["call_id"]).with_for_update())
    if call is None:
        household = match_household(data.get("account_no"), data["caller_phone"])
        call = CallLog(call_id=data["call_id"], caller_phone=data["caller_phone"], status=event,
                       started_at=occurred_at, last_event_at=occurred_at,
                       household_id=household.id if household else None)
        db.session.add(call)
        applied = True
    else:
        applied = (occurred_at, _CALL_RANK[event]) > (call.last_event_at, _CALL_RANK[call.status])
        if applied:
            call.status, call.last_event_at = event, occurred_at
    if event == CallStatus.RINGING or occurred_at < call.started_at:
        call.started_at = min(call.started_at, occurred_at)
    if event == CallStatus.ANSWERED and (call.answered_at is None or occurred_at < call.answered_at):
        call.answered_at = occurred_at
    if event in (CallStatus.HANGUP, CallStatus.MISSED):
        call.ended_at = max(call.ended_at or occurred_at, occurred_at)
    for field in ("agent", "duration_s", "recording_url"):
        if data.get(field) is not None:
            setattr(call, field, data[field])
    if data.get("external_id") and call.ticket_id is None:
        call.ticket_id = db.session.scalar(select(Ticket.id).where(Ticket.external_id == data["external_id"]))
    if call.household_id is None and data.get("account_no"):
        household = match_household(data["account_no"], None)
        call.household_id = household.id if household else None
    db.session.flush()

    callback = None
    if event == CallStatus.MISSED and not in_working_hours(occurred_at):
        db.session.execute(insert_or_skip(CallbackTask, conflict=["call_log_id"]).values(
            call_log_id=call.id, caller_phone=call.caller_phone, household_id=call.household_id,
            missed_at=occurred_at, state=CallbackState.OPEN, created_at=utcnow()))
        callback = db.session.scalar(select(CallbackTask).where(CallbackTask.call_log_id == call.id))
    return CallOutcome("recorded" if applied else "stale", call, callback)


def calls_today(now: datetime | None = None) -> dict[str, int]:
    """Calls started since local midnight, by status, plus the total (for the dashboard)."""
    now = now or utcnow()
    local = now.astimezone(local_tz())
    midnight = datetime.combine(local.date(), time(0), tzinfo=local.tzinfo)
    rows = db.session.execute(
        select(CallLog.status, func.count()).where(CallLog.started_at >= midnight, CallLog.started_at < midnight + timedelta(days=1))
        .group_by(CallLog.status)).all()
    counts = {status: 0 for status in CallStatus.ALL} | dict(rows)
    counts["total"] = sum(counts[s] for s in CallStatus.ALL)
    return counts


# --- the screen pop -------------------------------------------------------------------------

def caller_profile(phone: str, *, today: date | None = None) -> dict:
    """Everything an agent wants on screen when this phone rings (``phone`` as stored: E.164)."""
    today = today or utcnow().astimezone(local_tz()).date()
    households = list(db.session.scalars(
        select(Household).where(Household.owner_phone == phone)
        .options(selectinload(Household.district), selectinload(Household.community))
        .order_by(Household.id).limit(MAX_HOUSEHOLDS_PER_PHONE)))
    ids = [h.id for h in households]
    whose = Ticket.caller_phone == phone if not ids else or_(Ticket.caller_phone == phone, Ticket.household_id.in_(ids))
    open_tickets = list(db.session.scalars(
        select(Ticket).where(whose, Ticket.state.in_(TicketState.OPEN))
        .order_by(Ticket.created_at.desc()).limit(OPEN_TICKETS_SHOWN)))
    recent = list(db.session.scalars(
        select(Ticket).where(whose).order_by(Ticket.created_at.desc()).limit(RECENT_TICKETS_SHOWN)))
    rows = []
    for h in households:
        arrears = household_arrears(h.id, today)
        rows.append({
            "id": h.id, "account_no": h.account_no, "address": h.address, "owner_name": h.owner_name,
            "status": h.status, "area_m2": h.area_m2, "arrears_fen": arrears.total_due_fen,
            "arrears": [{"season": i.season_code, "due_on": i.due_on, "principal_fen": i.principal_fen,
                         "late_fee_fen": i.late_fee_fen} for i in arrears.items],
            "outages": outages_touching(h),
        })
    callbacks = db.session.scalar(select(func.count(CallbackTask.id)).where(
        CallbackTask.caller_phone == phone, CallbackTask.state == CallbackState.OPEN)) or 0
    return {"phone": phone, "known": bool(households or recent), "households": rows,
            "open_tickets": open_tickets, "recent_tickets": recent, "open_callbacks": callbacks}
