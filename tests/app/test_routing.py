from sqlalchemy import select

from app.models import OutboxMessage, Role, TicketEvent, TicketSource, TicketState, TicketType
from app.services.actors import Actor
from app.services.routing import pick_assignee, responsible_crew, route_ticket
from app.services.tickets import assign_ticket, create_ticket


def _repair(household):
    return create_ticket(Actor.phone(), type=TicketType.REPAIR, source=TicketSource.PHONE,
                         description="暖气不热", household=household)


def test_station_crew_wins_over_community_crew(db, make_area, make_household, make_crew):
    _, community, station = make_area()
    household = make_household(community=community, station=station)
    make_crew(communities=[community])
    station_crew = make_crew(stations=[station])

    assert responsible_crew(household) == station_crew


def test_community_crew_when_no_crew_serves_the_station(db, make_area, make_household, make_crew):
    _, community, station = make_area()
    household = make_household(community=community, station=station)
    community_crew = make_crew(communities=[community])

    assert responsible_crew(household) == community_crew


def test_community_station_crew_is_the_last_fallback(db, make_area, make_household, make_crew):
    _, community, community_station = make_area()
    _, _, own_station = make_area()
    household = make_household(community=community, station=own_station)
    crew = make_crew(stations=[community_station])

    assert responsible_crew(household) == crew


def test_two_crews_for_one_station_route_to_the_lowest_id(db, make_area, make_household, make_crew):
    _, community, station = make_area()
    household = make_household(community=community, station=station)
    first = make_crew(stations=[station])
    make_crew(stations=[station])

    assert responsible_crew(household) == first


def test_no_crew_means_no_route_and_the_repair_stays_new(db, make_household):
    household = make_household()

    ticket = _repair(household)

    assert route_ticket(ticket) is None
    assert ticket.state == TicketState.NEW and ticket.crew_id is None
    assert [e.action for e in db.session.scalars(select(TicketEvent))] == ["created"]
    assert db.session.scalar(select(OutboxMessage).where(OutboxMessage.topic == "notify.task_assigned")) is None


def test_repair_goes_to_the_least_loaded_active_member(db, make_area, make_household, make_crew, make_staff):
    _, community, station = make_area()
    household = make_household(community=community, station=station)
    crew = make_crew(stations=[station])
    make_staff(Role.CREW_LEAD, crew)
    busy = make_staff(Role.CREW_MEMBER, crew)
    free = make_staff(Role.CREW_MEMBER, crew)
    make_staff(Role.CREW_MEMBER, crew, active=False)
    assign_ticket(_repair(None), Actor.system(), staff=busy)

    ticket = _repair(household)

    assert (ticket.crew_id, ticket.assignee_id) == (crew.id, free.id)


def test_equal_load_is_broken_by_lowest_staff_id(db, make_crew, make_staff):
    crew = make_crew()
    first = make_staff(Role.CREW_MEMBER, crew)
    make_staff(Role.CREW_MEMBER, crew)

    assert pick_assignee(crew) == first
    assert pick_assignee(crew, exclude=[first.id]) != first


def test_crew_without_members_falls_back_to_its_lead_then_nobody(db, make_crew, make_staff):
    crew = make_crew()
    assert pick_assignee(crew) is None
    lead = make_staff(Role.CREW_LEAD, crew)
    make_staff(Role.CREW_MEMBER, crew, active=False)

    assert pick_assignee(crew) == lead


def test_route_in_one_query_agrees_with_crew_then_pick(db, make_area, make_household, make_crew, make_staff):
    """route_ticket reads crew and person in one query: the same answer as responsible_crew
    then pick_assignee, for an empty crew, a lead alone, and members with loads."""
    _, community, station = make_area()
    household = make_household(community=community, station=station)
    ticket = _repair(None)
    ticket.household_id = household.id
    crew = make_crew(stations=[station])
    make_crew(stations=[station])  # a second crew for the station: the lowest id still wins

    def both():
        return route_ticket(ticket), (responsible_crew(household), pick_assignee(crew))

    route, (by_crew, by_pick) = both()
    assert (route.crew, route.assignee) == (by_crew, by_pick) == (crew, None)
    lead = make_staff(Role.CREW_LEAD, crew)
    route, (by_crew, by_pick) = both()
    assert (route.crew, route.assignee) == (by_crew, by_pick) == (crew, lead)
    busy = make_staff(Role.CREW_MEMBER, crew)
    free = make_staff(Role.CREW_MEMBER, crew)
    assign_ticket(_repair(None), Actor.system(), staff=busy)
    route, (by_crew, by_pick) = both()
    assert (route.crew, route.assignee) == (by_crew, by_pick) == (crew, free)
