"""Who may see and do what: one set of rules for every channel (API, pages, chat).

Residents (a ``WechatUser``):
- ``household_ids_of(user)`` / ``bound_household_ids(user)`` (a SELECT) — households bound to them;
- ``household_of(user, household_id)`` — one of them, else ``NotFoundError``;
- ``visible_tickets(user)`` — a SELECT of the tickets they reported or of a bound household;
- ``ticket_of(user, ticket_id, for_update=False)`` — one of them, else ``NotFoundError``;
- ``may_see_ticket(user, ticket)``; ``ticket_numbered(user, number)`` — a ticket link (工单号):
  ``NotFoundError`` when there is no such ticket, ``PermissionDeniedError`` when it is somebody
  else's (a polite refusal, never the data);
- ``can_cancel`` / ``can_rate`` / ``can_report_still_cold`` (user, ticket) — what the
  ticket's page offers (the ticket service enforces the same rules on the change);
- ``latest_open_repair(user)`` — the open repair they reported last (a photo sent in chat joins it);
- ``waiting_on_outage(user)`` — their reports still waiting on an outage, newest first (还冷);
- ``payment_of(user, out_trade_no)`` — their own order, else ``NotFoundError``;
- ``outages_of(user)`` — live outages touching their bound households (with which ones);
- ``may_see_announcement(user, announcement)`` — published, and the person is in its audience
  (everyone for ``all``; for an area or arrears: sent to them, or in the audience now);
  ``visible_announcements(user)`` — a SELECT of the published ones for everybody or sent to
  them, newest first (the lists; each one listed passes ``may_see_announcement``).

Crews (a ``Staff``; an inactive one or another role has no tasks):
- ``is_crew(staff)``;
- ``visible_tasks(staff)`` — a SELECT of the tasks assigned or forwarded to them, and for a
  crew lead every task their crew holds;
- ``task_of(staff, ticket_id, for_update=True)`` — one of them, else ``NotFoundError``;
- ``open_tasks(staff)`` — their tasks still to be done, soonest deadline first.

Both: ``may_see_photo(user, photo)`` — a photo of a ticket they may see as a resident or as
crew. The "not found" answers never say whether the thing exists for somebody else.
"""
from __future__ import annotations

from sqlalchemy import or_, select

from app.errors import NotFoundError, PermissionDeniedError
from app.extensions import db
from app.models import (
    Announcement, AnnouncementStatus, Audience, Delivery, Household, HouseholdBinding, Outage, Payment, Role, Staff,
    OutageStatus, Ticket, TicketPhoto, TicketState, TicketType, WechatUser, utcnow,
)
from app.services.announcements import audience_user_ids
from app.services.binding import bound_households
from app.services import outages
from app.services.ratings import may_rate
from app.services.tickets import FIELD_ROLES, waits_on_outage

CREW_ROLES = FIELD_ROLES  # crew members and crew leads
# What a crew member still has to do (the chat's task list, the pages' inbox).
ACTIVE_TASK_STATES = (TicketState.ASSIGNED, TicketState.ACCEPTED, TicketState.IN_PROGRESS)
PUBLISHED = (AnnouncementStatus.SENDING, AnnouncementStatus.PAUSED, AnnouncementStatus.HALTED,
             AnnouncementStatus.DONE)


# --- residents ----------------------------------------------------------------------------------

def bound_household_ids(user: WechatUser):
    """A SELECT of the ids of the households bound to ``user`` (use as a subquery)."""
    return select(HouseholdBinding.household_id).where(HouseholdBinding.wechat_user_id == user.id)


def household_ids_of(user: WechatUser) -> list[int]:
    return list(db.session.scalars(bound_household_ids(user)))


def household_of(user: WechatUser, household_id: int) -> Household:
    row = db.session.scalar(select(HouseholdBinding).where(
        HouseholdBinding.wechat_user_id == user.id, HouseholdBinding.household_id == household_id))
    if row is None:
        raise NotFoundError("您未绑定该户", code="household_not_found")
    return row.household


def visible_tickets(user: WechatUser):
    """Tickets a resident may see: reported by them, or of a household bound to them."""
    return select(Ticket).where(or_(Ticket.reporter_id == user.id, Ticket.household_id.in_(bound_household_ids(user))))


def _only(visible, ticket_id: int, for_update: bool, missing: NotFoundError) -> Ticket:
    """The ticket with this id among ``visible``; ``missing`` when it is not one of them."""
    query = visible.where(Ticket.id == ticket_id)
    if for_update:
        query = query.with_for_update()
    ticket = db.session.scalar(query)
    if ticket is None:
        raise missing
    return ticket


def ticket_of(user: WechatUser, ticket_id: int, *, for_update: bool = False) -> Ticket:
    return _only(visible_tickets(user), ticket_id, for_update, NotFoundError("工单不存在", code="ticket_not_found"))


def may_see_ticket(user: WechatUser | None, ticket: Ticket) -> bool:
    if user is None:
        return False
    return db.session.scalar(visible_tickets(user).with_only_columns(Ticket.id).where(Ticket.id == ticket.id)) is not None


def ticket_numbered(user: WechatUser, number: str) -> Ticket:
    """The ticket a link names, for this resident; refused politely when it is not theirs."""
    ticket = db.session.scalar(select(Ticket).where(Ticket.number == number)) if len(number) <= 20 else None
    if ticket is None:
        raise NotFoundError("工单不存在或已被删除，请核对工单号", code="ticket_not_found")
    if not may_see_ticket(user, ticket):
        raise PermissionDeniedError("这是其他住户的工单，您无法查看。如果这是您家的报修，请先在“我的”中绑定户号。",
                                    code="ticket_forbidden")
    return ticket


def _reported_by(user: WechatUser, ticket: Ticket) -> bool:
    return ticket.reporter_id is not None and ticket.reporter_id == user.id


def can_cancel(user: WechatUser, ticket: Ticket) -> bool:
    """The reporter, until a crew accepts it (tickets.cancel_ticket)."""
    return _reported_by(user, ticket) and ticket.state in (TicketState.NEW, TicketState.ASSIGNED)


def can_rate(user: WechatUser, ticket: Ticket) -> bool:
    """The reporter (``ratings.may_rate``), once, after it is closed (``ratings.rate_ticket``)."""
    return may_rate(user, ticket) and ticket.state == TicketState.CLOSED and ticket.rating is None


def can_report_still_cold(user: WechatUser, ticket: Ticket) -> bool:
    """A report waiting on an outage that has been restored, within the feedback window
    (outage_linking.report_still_cold), by the reporter or a resident of the household."""
    return still_cold_open(ticket) and may_see_ticket(user, ticket)


def still_cold_open(ticket: Ticket) -> bool:
    """The report waits on an outage that has been restored, and its 还冷 window is open."""
    if not waits_on_outage(ticket) or ticket.outage.status != OutageStatus.RESTORED:
        return False
    return utcnow() <= outages.still_cold_until(ticket.outage)


def latest_open_repair(user: WechatUser) -> Ticket | None:
    """The open repair ``user`` reported last (a photo sent in chat joins it; the ticket
    service lets the reporter add photos while it is open)."""
    return db.session.scalar(
        select(Ticket).where(Ticket.reporter_id == user.id, Ticket.type == TicketType.REPAIR,
                             Ticket.state.in_(TicketState.OPEN)).order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .limit(1))


def waiting_on_outage(user: WechatUser) -> list[Ticket]:
    """The resident's reports linked to an outage and still waiting on it, newest first."""
    return list(db.session.scalars(visible_tickets(user).where(outages.waiting_on_outage())
                                   .order_by(Ticket.created_at.desc(), Ticket.id.desc())))


def payment_of(user: WechatUser, out_trade_no: str) -> Payment:
    payment = db.session.scalar(select(Payment).where(Payment.out_trade_no == out_trade_no,
                                                      Payment.wechat_user_id == user.id))
    if payment is None:
        raise NotFoundError("订单不存在", code="payment_not_found")
    return payment


def outages_of(user: WechatUser, households: list[Household] | None = None) -> list[tuple[Outage, list[Household]]]:
    """Live outages touching the households bound to ``user`` (soonest first), each with the
    households it touches."""
    if households is None:
        households = bound_households(user)
    found: dict[int, tuple[Outage, list[Household]]] = {}
    for household in households:
        for outage in outages.outages_touching(household):
            found.setdefault(outage.id, (outage, []))[1].append(household)
    return sorted(found.values(), key=lambda pair: (pair[0].starts_at, pair[0].id))


def may_see_announcement(user: WechatUser | None, announcement: Announcement) -> bool:
    if user is None or announcement.status not in PUBLISHED:
        return False
    if announcement.audience == Audience.ALL:
        return True
    sent = db.session.scalar(select(Delivery.id).where(
        Delivery.announcement_id == announcement.id, Delivery.wechat_user_id == user.id))
    if sent is not None:
        return True
    audience = audience_user_ids(announcement.audience, announcement.audience_filter).subquery()
    return db.session.scalar(select(audience.c.wechat_user_id).where(audience.c.wechat_user_id == user.id)) is not None


def visible_announcements(user: WechatUser):
    """A SELECT of the published announcements ``user`` may list: those for everybody and those
    sent to them, newest first."""
    sent = select(Delivery.announcement_id).where(Delivery.wechat_user_id == user.id)
    return (select(Announcement)
            .where(Announcement.status.in_(PUBLISHED), or_(Announcement.audience == Audience.ALL, Announcement.id.in_(sent)))
            .order_by(Announcement.created_at.desc(), Announcement.id.desc()))


# --- crews --------------------------------------------------------------------------------------

def is_crew(staff: Staff | None) -> bool:
    return staff is not None and staff.active and staff.role in CREW_ROLES


def visible_tasks(staff: Staff | None):
    """Tasks assigned or forwarded to ``staff``; for a crew lead also their crew's."""
    if not is_crew(staff):
        return select(Ticket).where(Ticket.id.is_(None))   # nobody else has tasks
    mine = Ticket.assignee_id == staff.id
    if staff.role == Role.CREW_LEAD and staff.crew_id is not None:
        mine = or_(mine, Ticket.crew_id == staff.crew_id)
    return select(Ticket).where(mine)


def task_of(staff: Staff | None, ticket_id: int, *, for_update: bool = True) -> Ticket:
    return _only(visible_tasks(staff), ticket_id, for_update, NotFoundError("任务不存在", code="task_not_found"))


def open_tasks(staff: Staff | None) -> list[Ticket]:
    """The tasks ``staff`` still has to do, soonest deadline first (none last)."""
    return list(db.session.scalars(
        visible_tasks(staff).where(Ticket.state.in_(ACTIVE_TASK_STATES))
        .order_by(Ticket.finish_by.is_(None), Ticket.finish_by, Ticket.id)))


# --- both -----------------------------------------------------------------------------------------

def may_see_photo(user: WechatUser, photo: TicketPhoto | None) -> bool:
    """A stored photo of a ticket ``user`` may see as a resident, or as crew (their tasks)."""
    if photo is None or not photo.path:
        return False
    if db.session.scalar(visible_tickets(user).with_only_columns(Ticket.id).where(Ticket.id == photo.ticket_id)):
        return True
    return db.session.scalar(
        visible_tasks(user.staff).with_only_columns(Ticket.id).where(Ticket.id == photo.ticket_id)) is not None
