"""The demo city: proportions, idempotency, consistent timelines and bills."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from app.models import (
    Bill, BillStatus, Community, Crew, CrewArea, District, FaqEntry, Household, HouseholdStatus, Outage,
    OutageStatus, Payment, PaymentState, Role, Staff, Station, Ticket, TicketCounter, TicketEvent, TicketState,
    TicketType, utcnow,
)
from app.services.billing import bill_amount_fen

SMALL = 200


def count(model) -> int:
    from app.extensions import db

    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture()
def seeded(runner, db, clock):
    result = runner.invoke(args=["seed-demo", "--households", str(SMALL)])
    assert result.exit_code == 0, result.output
    return result


def test_demo_city_has_expected_shape(seeded, db):
    assert count(District) == 3
    assert count(Station) == 6
    assert count(Community) == 20
    assert all(c.station_id for c in db.session.scalars(select(Community)))
    assert count(Household) == SMALL
    suspended = db.session.scalar(select(func.count(Household.id)).where(Household.status == HouseholdStatus.SUSPENDED))
    assert 1 <= suspended <= SMALL * 0.05
    assert count(FaqEntry) >= 30
    leaders = list(db.session.scalars(select(Staff).where(Staff.role == Role.LEADER)))
    assert len(leaders) == 3 and sum(s.on_duty for s in leaders) == 1
    assert db.session.scalar(select(func.count(Staff.id)).where(Staff.role == Role.AGENT)) == 6
    assert db.session.scalar(select(Staff).where(Staff.username == "admin")).check_password("demo1234")
    outages = {o.status for o in db.session.scalars(select(Outage))}
    assert {OutageStatus.ACTIVE, OutageStatus.SCHEDULED, OutageStatus.RESTORED} <= outages
    assert "demo1234" in seeded.output and "admin" in seeded.output


def test_every_crew_has_one_lead_some_members_and_one_station(seeded, db):
    crews = list(db.session.scalars(select(Crew)))
    assert len(crews) == 6
    stations = set()
    for crew in crews:
        roles = [m.role for m in crew.members]
        assert roles.count(Role.CREW_LEAD) == 1
        assert 3 <= roles.count(Role.CREW_MEMBER) <= 5
        (area,) = crew.areas
        stations.add(area.station_id)
    assert len(stations) == 6


def test_arrears_share_is_between_ten_and_twenty_percent(seeded, db):
    active = db.session.scalar(select(func.count(Household.id)).where(Household.status == HouseholdStatus.ACTIVE))
    in_arrears = db.session.scalar(
        select(func.count(func.distinct(Bill.household_id))).where(Bill.status.in_(BillStatus.OPEN)))
    assert 0.10 <= in_arrears / active <= 0.20
    # Some owe for both seasons.
    both = db.session.execute(
        select(Bill.household_id).where(Bill.status.in_(BillStatus.OPEN))
        .group_by(Bill.household_id).having(func.count() == 2)).all()
    assert both


def test_every_active_household_has_a_bill_per_season(seeded, db):
    active = db.session.scalar(select(func.count(Household.id)).where(Household.status == HouseholdStatus.ACTIVE))
    assert count(Bill) == active * 2


def test_bill_amounts_follow_the_billing_rule(seeded, db):
    for bill in db.session.scalars(select(Bill)):
        assert bill.area_m2 == bill.household.area_m2
        assert bill.amount_fen == bill_amount_fen(bill.area_m2, bill.unit_price_fen, bill.discount_fen)
        if bill.status == BillStatus.PAID:
            assert bill.paid_fen == bill.amount_fen and bill.paid_at is not None
        else:
            assert bill.paid_fen == 0
    assert db.session.scalar(select(func.count(Bill.id)).where(Bill.discount_fen > 0)) >= 1


def test_paid_bills_are_backed_by_paid_payments(seeded, db):
    paid = db.session.scalar(select(func.count(Bill.id)).where(Bill.status == BillStatus.PAID))
    payments = list(db.session.scalars(select(Payment)))
    assert len(payments) == paid
    for p in payments:
        assert p.state == PaymentState.PAID and p.transaction_id and p.paid_at
        assert p.amount_fen == sum(i.principal_fen + i.late_fee_fen for i in p.items)


def test_ticket_volume_and_every_state_present(seeded, db):
    assert count(Ticket) == 50
    states = set(db.session.scalars(select(Ticket.state).distinct()))
    assert states == set(TicketState.ALL)
    numbers = list(db.session.scalars(select(Ticket.number)))
    assert len(set(numbers)) == len(numbers)
    assert all(re.fullmatch(r"GD\d{8}-\d{4}", n) for n in numbers)
    # The day counters continue after the demo numbers, so live tickets never collide.
    for counter in db.session.scalars(select(TicketCounter)):
        assert f"GD{counter.day}-{counter.value:04d}" in numbers


def test_ticket_timelines_are_consistent_with_states(seeded, db):
    now = utcnow()
    for t in db.session.scalars(select(Ticket)):
        events = t.events
        assert events[0].action == "created" and events[0].created_at == t.created_at
        times = [e.created_at for e in events]
        assert times == sorted(times) and times[-1] <= now
        last_state = [e.to_state for e in events if e.to_state][-1]
        assert last_state == t.state, t.number
        actions = [e.action for e in events]
        if t.state == TicketState.CLOSED:
            assert t.closed_at is not None and "closed" in actions and t.final_answer
        elif t.state == TicketState.CANCELLED:
            assert t.closed_at is not None and "cancelled" in actions
        else:
            assert t.closed_at is None and "closed" not in actions
        if t.state in (TicketState.ACCEPTED, TicketState.IN_PROGRESS, TicketState.REPLIED):
            assert t.accepted_at is not None and t.assignee_id is not None
        if t.state == TicketState.REPLIED or (t.state == TicketState.CLOSED and t.type not in TicketType.DIRECT_CLOSE):
            assert t.replied_at is not None and t.reply
        if t.rating is not None:
            assert t.state == TicketState.CLOSED and "rated" in actions and t.reporter_id is not None
        if t.respond_by is not None:
            assert t.created_at < t.respond_by <= t.finish_by


def test_tickets_go_to_the_crew_of_the_households_station(seeded, db):
    routed = db.session.execute(
        select(Ticket, CrewArea).join(Household, Ticket.household_id == Household.id)
        .join(CrewArea, CrewArea.crew_id == Ticket.crew_id)).all()
    assert routed
    for ticket, area in routed:
        assert area.station_id == ticket.household.station_id
        assert ticket.assignee.crew_id == ticket.crew_id


def test_second_run_creates_nothing(seeded, runner, db):
    tables = (Household, Bill, Payment, Ticket, TicketEvent, Staff, FaqEntry, Outage)
    before = {m.__name__: count(m) for m in tables}
    result = runner.invoke(args=["seed-demo", "--households", str(SMALL)])
    assert result.exit_code == 0
    assert "已存在" in result.output and "nothing changed" in result.output
    assert {m.__name__: count(m) for m in tables} == before


def test_if_empty_leaves_existing_households_alone(runner, make_household, db):
    make_household()
    db.session.commit()
    result = runner.invoke(args=["seed-demo", "--if-empty", "--households", str(SMALL)])
    assert result.exit_code == 0
    assert "skipped" in result.output
    assert count(Household) == 1 and count(Crew) == 0


def test_refuses_to_mix_demo_into_real_households(runner, make_household, db):
    make_household()
    db.session.commit()
    result = runner.invoke(args=["seed-demo", "--households", str(SMALL)])
    assert result.exit_code != 0
    assert count(Household) == 1


def test_same_data_on_every_run(db):
    from app.demo.seed import seed_demo

    now = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)

    def snapshot():
        seed_demo(SMALL, now=now)
        rows = db.session.execute(select(Household.account_no, Household.owner_name, Household.owner_phone,
                                         Household.area_m2).order_by(Household.account_no)).all()
        tickets = db.session.execute(select(Ticket.number, Ticket.state, Ticket.description)
                                     .order_by(Ticket.number)).all()
        db.session.rollback()  # nothing was committed: an interrupted seed leaves nothing behind
        return rows, tickets

    first = snapshot()
    assert count(Household) == 0
    assert snapshot() == first
