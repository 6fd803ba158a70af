"""POST /bridge/v1/ratings: the phone system's post-call IVR rating (seed 001 §1.9.4), signed
like every bridge request, kept once per call, attached to the call and its ticket, counted
in the satisfaction report."""
from datetime import date

import pytest
from sqlalchemy import func, select

from app.models import BridgeDeadLetter, CallLog, FollowUpTask, Role, Ticket, TicketEvent, TicketSource, TicketType
from app.services import reports, tickets
from app.services.actors import Actor

CALL = {"event_id": "EV-CALL-1", "call_id": "CALL-0001", "event": "hangup", "caller_phone": "13912345678",
        "occurred_at": "2026-11-25T10:05:00+08:00", "duration_s": 180}


def _rating(**kw):
    return {"call_id": "CALL-0001", "score": 5, "rated_at": "2026-11-25T10:06:00+08:00", **kw}


def _dead_letters(db) -> int:
    return db.session.scalar(select(func.count()).select_from(BridgeDeadLetter))


@pytest.fixture()
def call(db, phone):
    assert phone.post("/calls", CALL).status_code == 200
    return db.session.scalar(select(CallLog).where(CallLog.call_id == "CALL-0001"))


@pytest.fixture()
def closed_ticket(db, make_staff):
    agent = make_staff(Role.AGENT)
    t = tickets.create_ticket(Actor.phone("话务员"), type=TicketType.INQUIRY, source=TicketSource.PHONE,
                              description="咨询缴费方式", caller_phone="13912345678", external_id="CC-100")
    tickets.close_ticket(t, Actor.of_staff(agent), "已告知缴费方式")
    db.session.commit()
    return t


def test_a_rating_is_kept_on_the_call(db, phone, call):
    res = phone.post("/ratings", _rating(score=4))
    assert res.status_code == 200, res.json
    body = res.json
    assert body["result"] == "recorded" and body["call"]["rating"] == 4 and body["ticket_rated"] is False
    db.session.expire_all()
    stored = db.session.get(CallLog, call.id)
    assert (stored.rating, stored.rating_on_ticket) == (4, False)
    assert stored.rated_at.isoformat().startswith("2026-11-25T02:06:00")


def test_unsigned_or_badly_signed_ratings_are_refused(db, phone, call):
    assert phone.post("/ratings", _rating(), secret="not-the-secret").status_code == 401
    assert phone.post("/ratings", _rating(), timestamp=1).status_code == 401
    db.session.expire_all()
    assert db.session.get(CallLog, call.id).rating is None
    assert _dead_letters(db) == 0


def test_the_same_rating_again_gets_the_same_answer_and_changes_nothing(db, phone, call, closed_ticket):
    first = phone.post("/ratings", _rating(ticket_number="CC-100", score=2))
    again = phone.post("/ratings", _rating(ticket_number="CC-100", score=2))
    assert first.status_code == again.status_code == 200 and first.json == again.json
    assert db.session.scalar(select(func.count()).select_from(TicketEvent).where(TicketEvent.action == "rated")) == 1
    assert db.session.scalar(select(func.count()).select_from(FollowUpTask)) == 1


def test_another_score_for_a_rated_call_is_a_conflict(db, phone, call):
    assert phone.post("/ratings", _rating(score=5)).status_code == 200
    res = phone.post("/ratings", _rating(score=1))
    assert res.status_code == 409 and res.json["error"]["code"] == "call_already_rated"
    assert res.json["error"]["dead_letter_id"]
    db.session.expire_all()
    assert db.session.get(CallLog, call.id).rating == 5


@pytest.mark.parametrize("body, field", [
    (_rating(score=0), "score"), (_rating(score=6), "score"), (_rating(score="5"), "score"),
    (_rating(score=4.5), "score"), ({"call_id": "CALL-0001", "score": 3}, "rated_at"),
    ({"score": 3, "rated_at": "2026-11-25T10:06:00+08:00"}, "call_id"), (_rating(rated_at="昨天"), "rated_at"),
])
def test_bad_input_is_400_kept_as_a_dead_letter_and_changes_nothing(db, phone, call, body, field):
    res = phone.post("/ratings", body)
    assert res.status_code == 400 and field in res.json["error"]["fields"]
    assert res.json["error"]["dead_letter_id"] and _dead_letters(db) == 1
    db.session.expire_all()
    assert db.session.get(CallLog, call.id).rating is None


def test_not_json_is_400_and_kept(db, phone):
    res = phone.post("/ratings", b"score=5")
    assert res.status_code == 400 and res.json["error"]["code"] == "invalid_json" and _dead_letters(db) == 1


def test_an_unknown_call_without_a_phone_is_kept_for_replay(db, phone):
    res = phone.post("/ratings", _rating(call_id="CALL-UNKNOWN"))
    assert res.status_code == 422 and res.json["error"]["code"] == "call_not_found"
    assert _dead_letters(db) == 1 and db.session.scalar(select(func.count()).select_from(CallLog)) == 0


def test_a_rating_before_the_calls_events_is_kept_with_the_callers_phone(db, phone):
    res = phone.post("/ratings", _rating(call_id="CALL-EARLY", caller_phone="+86 139 1234 5678"))
    assert res.status_code == 200, res.json
    assert phone.post("/calls", {**CALL, "event_id": "EV-EARLY", "call_id": "CALL-EARLY"}).status_code == 200
    stored = db.session.scalar(select(CallLog).where(CallLog.call_id == "CALL-EARLY"))
    assert stored.rating == 5 and stored.duration_s == 180


def test_a_closed_unrated_ticket_takes_the_rating_and_a_low_one_opens_a_follow_up(db, phone, call, closed_ticket):
    res = phone.post("/ratings", _rating(ticket_number=closed_ticket.number, score=1))
    assert res.status_code == 200 and res.json["ticket_rated"] is True
    assert res.json["ticket_number"] == closed_ticket.number
    db.session.expire_all()
    t = db.session.get(Ticket, closed_ticket.id)
    stored = db.session.get(CallLog, call.id)
    assert (t.rating, stored.ticket_id, stored.rating_on_ticket) == (1, t.id, True)
    assert [e.data["source"] for e in t.events if e.action == "rated"] == ["ivr"]
    (task,) = db.session.scalars(select(FollowUpTask)).all()
    assert (task.ticket_id, task.rating, task.state) == (t.id, 1, "open")


def test_an_open_ticket_keeps_its_own_rating_and_notes_the_calls(db, phone, call):
    t = tickets.create_ticket(Actor.phone(), type=TicketType.REPAIR, source=TicketSource.PHONE,
                              description="暖气不热", caller_phone="13912345678", external_id="CC-200")
    db.session.commit()
    res = phone.post("/ratings", _rating(ticket_number="CC-200", score=3))
    assert res.status_code == 200 and res.json["ticket_rated"] is False
    db.session.expire_all()
    t = db.session.get(Ticket, t.id)
    assert t.rating is None and [e.data["rating"] for e in t.events if e.action == "call_rated"] == [3]


def test_a_ticket_number_other_than_the_calls_ticket_is_a_conflict(db, phone, call, closed_ticket):
    other = tickets.create_ticket(Actor.phone(), type=TicketType.REPAIR, source=TicketSource.PHONE,
                                  description="暖气不热", caller_phone="13912345678", external_id="CC-300")
    db.session.get(CallLog, call.id).ticket_id = other.id
    db.session.commit()
    res = phone.post("/ratings", _rating(ticket_number=closed_ticket.number))
    assert res.status_code == 409 and res.json["error"]["code"] == "ticket_mismatch" and _dead_letters(db) == 1
    db.session.expire_all()
    assert db.session.get(CallLog, call.id).rating is None and db.session.get(Ticket, closed_ticket.id).rating is None


def test_an_unknown_ticket_number_is_refused(db, phone, call):
    res = phone.post("/ratings", _rating(ticket_number="GD20990101-0001"))
    assert res.status_code == 422 and res.json["error"]["code"] == "ticket_not_found"


def test_phone_ratings_count_in_the_satisfaction_report_once(clock, db, phone, call, closed_ticket):
    phone.post("/calls", {**CALL, "event_id": "EV-CALL-2", "call_id": "CALL-0002"})
    assert phone.post("/ratings", _rating(ticket_number=closed_ticket.number, score=2)).status_code == 200
    assert phone.post("/ratings", _rating(call_id="CALL-0002", score=5)).status_code == 200
    report = reports.ticket_report(reports.ReportParams(date(2026, 11, 1), date(2026, 11, 30)))
    satisfaction = report["satisfaction"]
    assert satisfaction["rated"] == 2 and satisfaction["phone_rated"] == 2
    assert {d["stars"]: d["count"] for d in satisfaction["distribution"]}[2] == 1
    assert satisfaction["average"] == 3.5
