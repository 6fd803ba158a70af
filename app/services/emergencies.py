"""Emergencies reported in words (漏水, 爆管, 热水喷出, 天花板滴水): an emergency ticket at once.

No confirmation step: the ticket is created as the message arrives, with the emergency
priority, routed to the responsible crew; ``tickets.create_ticket`` alerts the crew lead and
the leader on duty (``Staff.on_duty``) through the outbox. The same household writing again
while its emergency is open adds to that ticket instead of opening another.

A gas smell is not the heating company's: no ticket (the resident is told the gas company's
number, ``GAS_COMPANY_HOTLINE``).
"""
from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models import Household, Priority, Ticket, TicketCategory, TicketSource, TicketState, TicketType, WechatUser
from app.services import tickets
from app.services.actors import Actor

BURST_WORDS = ("爆", "炸", "裂", "喷")


def emergency_category(text: str) -> str:
    """A burst pipe when the words say so (爆管, 管子爆了, 喷水…); otherwise a leak."""
    return TicketCategory.BURST_PIPE if any(w in text for w in BURST_WORDS) else TicketCategory.LEAK


def open_emergency(household: Household) -> Ticket | None:
    """The household's open emergency ticket, if any (the latest)."""
    return db.session.scalar(
        select(Ticket).where(Ticket.household_id == household.id, Ticket.priority == Priority.EMERGENCY,
                             Ticket.state.in_(TicketState.OPEN)).order_by(Ticket.id.desc()).limit(1))


def report_emergency(user: WechatUser, household: Household, text: str, *,
                     source: str = TicketSource.OFFICIAL_ACCOUNT) -> tuple[Ticket, bool]:
    """An emergency ticket for ``household`` at once: ``(ticket, created)``; a second message
    while one is open is added to it (``created`` False)."""
    actor = Actor.of_resident(user)
    existing = open_emergency(household)
    if existing is not None:
        tickets.add_resident_note(existing, actor, text)
        return existing, False
    ticket = tickets.create_ticket(actor, type=TicketType.REPAIR, source=source, description=text,
                                   category=emergency_category(text), priority=Priority.EMERGENCY,
                                   household=household)
    return ticket, True
