from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, select

from app.errors import DomainError
from app.models import Priority, SlaPolicy, TicketType
from app.services.sla import deadlines_for

START = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("priority, respond, finish", [
    (Priority.EMERGENCY, timedelta(minutes=15), timedelta(hours=4)),
    (Priority.URGENT, timedelta(minutes=30), timedelta(hours=8)),
    (Priority.NORMAL, timedelta(hours=2), timedelta(hours=24)),
])
def test_default_deadlines_come_from_the_seeded_rows(db, priority, respond, finish):
    assert deadlines_for(TicketType.REPAIR, priority, START) == (START + respond, START + finish)


def test_an_edited_row_changes_the_deadlines(db):
    row = db.session.scalar(select(SlaPolicy).where(SlaPolicy.ticket_type == "*",
                                                    SlaPolicy.priority == Priority.URGENT))
    row.respond_minutes, row.finish_minutes = 20, 360
    db.session.flush()

    assert deadlines_for(TicketType.REPAIR, Priority.URGENT, START) == (
        START + timedelta(minutes=20), START + timedelta(hours=6))


def test_a_type_specific_row_wins_over_the_any_type_row(db):
    db.session.add(SlaPolicy(ticket_type=TicketType.REPAIR, priority=Priority.URGENT,
                             respond_minutes=10, finish_minutes=120))
    db.session.flush()

    assert deadlines_for(TicketType.REPAIR, Priority.URGENT, START) == (
        START + timedelta(minutes=10), START + timedelta(hours=2))
    # Other types keep the "*" row.
    assert deadlines_for(TicketType.HELP, Priority.URGENT, START) == (
        START + timedelta(minutes=30), START + timedelta(hours=8))


def test_seeded_inquiry_row_wins_over_the_normal_default(db):
    assert deadlines_for(TicketType.INQUIRY, Priority.NORMAL, START) == (
        START + timedelta(hours=1), START + timedelta(hours=8))


def test_missing_policy_raises_a_clear_domain_error(db):
    db.session.execute(delete(SlaPolicy).where(SlaPolicy.priority == Priority.URGENT))

    with pytest.raises(DomainError) as err:
        deadlines_for(TicketType.REPAIR, Priority.URGENT, START)
    assert "报修/紧急" in err.value.message
