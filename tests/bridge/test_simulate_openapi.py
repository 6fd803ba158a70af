"""The simulator plays a bounded phone-system load; the bridge is in the OpenAPI document."""
import re

from sqlalchemy import func, select

from app.models import BridgeDeadLetter, BridgeEvent, CallLog, Ticket


def test_bridge_endpoints_and_their_schemas_are_in_the_openapi_document(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    tickets = doc["paths"]["/bridge/v1/tickets"]["post"]
    assert tickets["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/TicketEventArgs")
    assert {"200", "201", "400", "401", "422", "500"} <= set(tickets["responses"])
    assert tickets["security"] == [{"bridgeSignature": []}]
    calls = doc["paths"]["/bridge/v1/calls"]["post"]
    assert calls["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/CallEventArgs")
    caller = doc["paths"]["/bridge/v1/callers/{phone}"]["get"]
    assert caller["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Caller")
    args = doc["components"]["schemas"]["TicketEventArgs"]
    assert set(args["required"]) == {"external_id", "event_id", "type", "caller_phone", "description"}
    assert "occurred_at" in args["properties"]


def _counts(output: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^\s+(\w+ \d{3})\s+(\d+)$", output, re.M)}


def test_simulate_plays_a_mixed_load_and_nothing_is_lost(app, db, runner, live_app, crew_setup):
    db.session.commit()
    result = runner.invoke(args=["bridge", "simulate", "--url", live_app.url, "--rate", "25", "--duration", "2",
                                 "--seed", "7", "--workers", "4",
                                 "--mix", "new=30,update=15,call=20,lookup=10,duplicate=15,late=5,malformed=5"])
    assert result.exit_code == 0, result.output
    counts = _counts(result.output)
    assert not [k for k in counts if k.split()[1].startswith("5")], result.output  # no server errors
    assert " 0 connection errors" in result.output
    assert counts.get("lookup 200", 0) > 0 and not [k for k in counts if k.startswith("lookup 401")], result.output
    db.session.expire_all()
    letters = db.session.scalar(select(func.count()).select_from(BridgeDeadLetter))
    bad = sum(v for k, v in counts.items() if k.split()[1] in ("400", "422"))
    assert letters == bad > 0                                   # each refused payload kept
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == counts.get("new 201", 0) + \
        counts.get("update 201", 0) + counts.get("late 201", 0)  # duplicates made no tickets
    assert db.session.scalar(select(func.count()).select_from(CallLog)) > 0
    assert db.session.scalar(select(func.count()).select_from(BridgeEvent)) > 0
    # Post-call IVR ratings: each accepted one is on its call, once (redeliveries change nothing).
    assert counts.get("rating 200", 0) > 0, result.output
    rated = db.session.scalars(select(CallLog).where(CallLog.rating.is_not(None))).all()
    assert len(rated) == counts["rating 200"] and all(1 <= c.rating <= 5 and c.rated_at for c in rated)


def test_simulate_refuses_a_remote_target_unless_allowed(runner):
    result = runner.invoke(args=["bridge", "simulate", "--url", "http://203.0.113.7:5000", "--duration", "1"])
    assert result.exit_code != 0 and "loopback" in result.output


def test_migration_0003_builds_exactly_the_bridge_models(db):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), db.metadata)
    ours = [d for d in diff if any(name in repr(d) for name in ("call_log", "callback_task", "external_updated_at"))]
    assert ours == []


def test_the_ivr_rates_some_answered_calls_never_missed_ones_and_may_name_a_registered_ticket():
    from datetime import datetime, timezone

    from app.bridge.simulate import PhoneSystem

    system = PhoneSystem("http://127.0.0.1:9", "secret", seed=3)
    system.registered.append("CCabc000001")
    now = datetime(2026, 12, 2, 6, 0, tzinfo=timezone.utc)
    ratings, missed = [], 0
    for _ in range(200):
        events = system.call_events(now)
        rating = system.ivr_rating(events[-1])
        if events[-1]["event"] == "missed":
            missed += 1
            assert rating is None
        elif rating is not None:
            ratings.append(rating)
            assert rating["call_id"] == events[-1]["call_id"] and rating["caller_phone"] == events[-1]["caller_phone"]
            assert datetime.fromisoformat(rating["rated_at"]) > datetime.fromisoformat(events[-1]["occurred_at"])
    answered = 200 - missed
    assert missed and 0.4 * answered < len(ratings) < 0.8 * answered
    assert {r["score"] for r in ratings} == {1, 2, 3, 4, 5}
    named = [r for r in ratings if "ticket_number" in r]
    assert named and all(r["ticket_number"] == "CCabc000001" for r in named) and len(named) < len(ratings)
