"""Payloads that cannot be processed are kept raw with the reason, listed, and replayable."""
import json

from sqlalchemy import func, select

from app.bridge.ingest import decode_raw
from app.models import BridgeDeadLetter, Role, Ticket, TicketState
from app.services import tickets
from app.services.actors import Actor


def _ticket(**kw):
    base = {"external_id": "CC-DL-1", "event_id": "ev-dl-1", "type": "repair", "caller_phone": "13812345678",
            "description": "暖气漏水"}
    return {**base, **kw}


def _letters(db):
    return list(db.session.scalars(select(BridgeDeadLetter).order_by(BridgeDeadLetter.id)))


def test_malformed_payloads_are_stored_raw_answered_and_none_lost(db, phone):
    bad = [
        b'{"external_id": "CC-1", "event_id": ',                       # not JSON
        b'["an", "array"]',                                              # not an object
        json.dumps(_ticket(type="维修单", caller_phone="abc", description="")).encode(),  # fails validation
        b'\xff\xfe not utf-8',                                           # not text at all
    ]
    answers = [phone.post("/tickets", body) for body in bad]
    assert [a.status_code for a in answers] == [400, 400, 400, 400]
    letters = _letters(db)
    assert len(letters) == len(bad)
    for body, answer, letter in zip(bad, answers, letters):
        error = answer.get_json()["error"]
        assert error["dead_letter_id"] == letter.id and error["message"]
        assert letter.endpoint == "tickets" and letter.reason
    assert letters[0].raw_body == bad[0].decode()
    assert letters[3].raw_body.startswith("base64:")  # kept byte for byte
    fields = answers[2].get_json()["error"]["fields"]
    assert set(fields) >= {"type", "caller_phone", "description"}
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_a_body_with_a_nul_byte_is_kept_byte_for_byte(db, phone):
    """PostgreSQL text cannot hold NUL: such a body is a 400 and kept as base64, not a 500."""
    answer = phone.post("/tickets", b"\x00")
    assert answer.status_code == 400
    [letter] = _letters(db)
    assert letter.raw_body.startswith("base64:") and decode_raw(letter.raw_body) == b"\x00"


def test_unprocessable_event_is_a_422_dead_letter_with_the_reason(db, phone):
    res = phone.post("/tickets", _ticket(assignee="nobody"))
    assert res.status_code == 422
    error = res.get_json()["error"]
    assert error["fields"]["assignee"] and error["dead_letter_id"]
    assert "nobody" in _letters(db)[0].reason


def test_an_event_for_a_cancelled_ticket_is_a_409_state_conflict_kept_as_a_dead_letter(db, phone, make_staff):
    """DESIGN §4.2: a state conflict is 409 (not flattened to 422); nothing changes."""
    assert phone.post("/tickets", _ticket()).status_code == 201
    ticket = db.session.scalar(select(Ticket).where(Ticket.external_id == "CC-DL-1"))
    tickets.cancel_ticket(ticket, Actor.of_staff(make_staff(Role.AGENT)), "用户来电撤销")
    db.session.commit()
    res = phone.post("/tickets", _ticket(event_id="ev-dl-2", description="又漏水了", occurred_at="2099-01-01T08:00:00+08:00"))
    assert res.status_code == 409
    error = res.get_json()["error"]
    assert error["code"] == "invalid_transition" and "已撤销" in error["message"] and error["dead_letter_id"]
    assert _letters(db)[0].reason.startswith("409 invalid_transition")
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).description == "暖气漏水"


def test_a_malformed_call_event_is_kept_too(db, phone):
    res = phone.post("/calls", {"event_id": "c1", "call_id": "x", "event": "exploded", "caller_phone": "13812345678"})
    assert res.status_code == 400
    assert _letters(db)[0].endpoint == "calls"


def test_dead_letters_are_listed_for_staff(db, phone, runner):
    phone.post("/tickets", b"{broken")
    phone.post("/tickets", _ticket(assignee="nobody"))
    out = runner.invoke(args=["bridge", "dead-letters"]).output
    ids = [letter.id for letter in _letters(db)]
    assert all(f"#{i}" in out for i in ids)
    assert "invalid_json" in out and "nobody" in out


def test_replay_with_a_corrected_payload_creates_the_ticket_and_marks_the_letter(db, phone, runner, tmp_path):
    phone.post("/tickets", _ticket(assignee="nobody"))
    letter = _letters(db)[0]
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps(_ticket(), ensure_ascii=False), encoding="utf-8")
    result = runner.invoke(args=["bridge", "replay", str(letter.id), "--body", str(fixed)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("201 ")
    db.session.expire_all()
    assert db.session.scalar(select(Ticket.state)) == TicketState.NEW
    letter = db.session.get(BridgeDeadLetter, letter.id)
    assert letter.replayed_at is not None and letter.replay_result.startswith("ok: 201 created")
    assert f"#{letter.id}" not in runner.invoke(args=["bridge", "dead-letters"]).output
    assert f"#{letter.id}" in runner.invoke(args=["bridge", "dead-letters", "--all"]).output


def test_replay_of_a_payload_that_now_works_needs_no_correction(db, phone, runner, make_staff):
    from app.models import Role

    phone.post("/tickets", _ticket(assignee="zhang"))  # zhang does not exist yet
    letter = _letters(db)[0]
    make_staff(Role.CREW_MEMBER, username="zhang", name="张师傅")
    db.session.commit()
    result = runner.invoke(args=["bridge", "replay", str(letter.id)])
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(Ticket.assignee_id)) is not None
    assert len(_letters(db)) == 1  # no new dead letter


def test_failed_replay_is_written_on_the_same_letter(db, phone, runner):
    phone.post("/tickets", b"{broken")
    letter = _letters(db)[0]
    result = runner.invoke(args=["bridge", "replay", str(letter.id)])
    assert result.exit_code == 1 and result.output.startswith("400 ")
    db.session.expire_all()
    assert len(_letters(db)) == 1
    assert db.session.get(BridgeDeadLetter, letter.id).replay_result.startswith("failed: 400 invalid_json")
