"""Migration 0014 rewrites stored phone numbers into E.164; what it cannot parse stays as it was
(counted in its log). Runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL."""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from sqlalchemy import select, text

from app.models import CallLog, Crew, Household, Staff, Ticket, TicketSource, TicketType
from app.services import tickets
from app.services.actors import Actor

MIGRATION = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0014_phone_numbers.py"


def _migration():
    spec = importlib.util.spec_from_file_location("migration_0014", MIGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _set(db, table, column, row_id, value):
    db.session.execute(text(f"UPDATE {table} SET {column} = :v WHERE id = :id"), {"v": value, "id": row_id})


def test_stored_numbers_are_rewritten_and_unparseable_ones_kept_and_counted(db, make_household, make_staff, caplog):
    homes = [make_household() for _ in range(5)]
    staff = make_staff()
    crew = Crew(name="铁西维修一班")
    ticket = tickets.create_ticket(Actor.phone(), type=TicketType.INQUIRY, source=TicketSource.PHONE,
                                   description="咨询缴费", caller_phone="+8613800138000")
    db.session.add(crew)
    db.session.flush()
    call = CallLog(call_id="old-1", caller_phone="x", status="hangup", started_at=ticket.created_at,
                   last_event_at=ticket.created_at)
    db.session.add(call)
    db.session.flush()
    # Numbers as the old code stored them: as typed by the import, digits from the old bridge.
    legacy = ["024-23456789", "862423456789", "１３９４０５１２２３４", "024-23456789转8001", "不详"]
    for home, value in zip(homes, legacy):
        _set(db, "household", "owner_phone", home.id, value)
    _set(db, "staff", "phone", staff.id, "139 4051 2235")
    _set(db, "crew", "phone", crew.id, "024-8123 4001")
    _set(db, "ticket", "caller_phone", ticket.id, "45182345678")
    _set(db, "call_log", "caller_phone", call.id, "02423456789")
    db.session.commit()

    with caplog.at_level(logging.INFO, logger="alembic.runtime.migration"):
        counts = _migration().rewrite_phone_numbers(db.session.connection())
    db.session.commit()
    db.session.expire_all()

    stored = [(h.owner_phone, h.owner_phone_ext) for h in (db.session.get(Household, h.id) for h in homes)]
    assert stored == [("+862423456789", None), ("+862423456789", None), ("+8613940512234", None),
                      ("+862423456789", "8001"), ("不详", None)]
    assert db.session.get(Staff, staff.id).phone == "+8613940512235"
    assert db.session.get(Crew, crew.id).phone == "+862481234001"
    assert db.session.get(Ticket, ticket.id).caller_phone == "+8645182345678"
    assert db.session.scalar(select(CallLog.caller_phone).where(CallLog.id == call.id)) == "+862423456789"
    assert counts["household.owner_phone"] == (4, 1)
    assert "household.owner_phone 4 rewritten, 1 kept as they were" in caplog.text

    again = _migration().rewrite_phone_numbers(db.session.connection())  # a second run changes nothing
    assert again["household.owner_phone"] == (0, 1) and again["staff.phone"] == (0, 0)
