"""Which crew, and which person in it, gets a new repair.

Crew: the crew answering for the household's own station (``CrewArea.station_id``), else the
one answering for its community (``CrewArea.community_id``), else the one answering for the
community's usual station. The station comes first because a station crew can act on the
network feeding the household; the community row covers areas mapped without stations.
Several crews for the same area: the lowest crew id wins, so routing is deterministic.

Assignee: the active crew member (role ``crew_member``) with the fewest tickets in hand
(assigned, accepted or in progress), ties broken by staff id. This spreads work instead of
piling everything on the crew lead, who sees the whole crew's inbox anyway. A crew with no
active member falls back to its active crew lead; a crew with nobody leaves the assignee
empty (the ticket waits at the crew, still visible to agents).
"""
from __future__ import annotations

from typing import Callable, Iterable, NamedTuple, TypeVar

from sqlalchemy import and_, case, func, select

from app.extensions import db
from app.models import Community, Crew, CrewArea, Household, Role, Staff, Ticket, TicketState

# States in which a ticket is in someone's hands (counts towards their workload).
IN_HAND = (TicketState.ASSIGNED, TicketState.ACCEPTED, TicketState.IN_PROGRESS)


class Route(NamedTuple):
    crew: Crew
    assignee: Staff | None


def _crew_for(*condition) -> Crew | None:
    return db.session.scalar(
        select(Crew).join(CrewArea, CrewArea.crew_id == Crew.id).where(*condition).order_by(Crew.id).limit(1)
    )


T = TypeVar("T")


def _covering(household: Household, find: Callable[..., T | None]) -> T | None:
    """``find(condition on CrewArea)`` for the household's station, else its community, else
    the community's usual station: the first found."""
    if household.station_id is not None:
        found = find(CrewArea.station_id == household.station_id)
        if found is not None:
            return found
    found = find(CrewArea.community_id == household.community_id)
    if found is not None:
        return found
    community_station_id = db.session.scalar(
        select(Community.station_id).where(Community.id == household.community_id)
    )
    if community_station_id is not None and community_station_id != household.station_id:
        return find(CrewArea.station_id == community_station_id)
    return None


def responsible_crew(household: Household) -> Crew | None:
    """The crew answering for this household's place, or None when no crew covers it."""
    return _covering(household, _crew_for)


def _in_hand():
    """SQL: the number of tickets in the hands of the ``Staff`` row of the enclosing query."""
    return (
        select(func.count(Ticket.id))
        .where(Ticket.assignee_id == Staff.id, Ticket.state.in_(IN_HAND))
        .correlate(Staff)
        .scalar_subquery()
    )


def _route_for(*condition) -> Route | None:
    """The crew ``_crew_for`` finds and the person ``pick_assignee`` would pick in it, in one
    query: the crew's active members and leads joined (none: the crew alone), members first,
    then by tickets in hand, then by id."""
    row = db.session.execute(
        select(Crew, Staff).select_from(CrewArea).join(Crew, Crew.id == CrewArea.crew_id)
        .outerjoin(Staff, and_(Staff.crew_id == Crew.id, Staff.active.is_(True),
                               Staff.role.in_((Role.CREW_MEMBER, Role.CREW_LEAD))))
        .where(*condition)
        .order_by(Crew.id, case((Staff.role == Role.CREW_MEMBER, 0), else_=1), _in_hand(), Staff.id)
        .limit(1)
    ).first()
    return Route(row[0], row[1]) if row is not None else None


def pick_assignee(crew: Crew, *, exclude: Iterable[int] = ()) -> Staff | None:
    """The crew's least-loaded active member (ties: lowest id); else its crew lead; else None."""
    excluded = set(exclude)
    for role in (Role.CREW_MEMBER, Role.CREW_LEAD):
        in_hand = _in_hand()
        query = (
            select(Staff)
            .where(Staff.crew_id == crew.id, Staff.role == role, Staff.active.is_(True))
            .order_by(in_hand, Staff.id)
        )
        if excluded:
            query = query.where(Staff.id.not_in(excluded))
        staff = db.session.scalars(query.limit(1)).first()
        if staff is not None:
            return staff
    return None


def route_ticket(ticket: Ticket) -> Route | None:
    """Where a new repair should go; None when the ticket has no household or no crew covers it.

    Only decides: the ticket service applies the route and records the event.
    """
    if ticket.household_id is None:
        return None
    household = ticket.household or db.session.get(Household, ticket.household_id)
    return _covering(household, _route_for)
