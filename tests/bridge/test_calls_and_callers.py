"""Call events become call logs (and call-back tasks); the caller look-up is the agent's screen pop."""
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from app.models import CallbackTask, CallLog, OutageKind, Ticket, utcnow
from app.services import billing, outages
from app.services import bridge as bridge_service

BJ = ZoneInfo("Asia/Shanghai")


def _at(hour, minute=0, day=2):
    return datetime(2026, 12, day, hour, minute, tzinfo=BJ)


def _call(event, at, **kw):
    base = {"event_id": f"c1-{event}", "call_id": "call-1", "event": event, "caller_phone": "13812345678",
            "occurred_at": at.isoformat()}
    return {**base, **kw}


def test_call_events_make_one_log_linked_to_household_and_ticket(db, phone, crew_setup):
    db.session.commit()
    phone.post("/tickets", {"external_id": "CC-9", "event_id": "t-9", "type": "repair", "caller_phone": "13812345678",
                            "description": "不热"})
    assert phone.post("/calls", _call("ringing", _at(10))).status_code == 200
    phone.post("/calls", _call("answered", _at(10, 1), agent="王芳"))
    res = phone.post("/calls", _call("hangup", _at(10, 6), agent="王芳", duration_s=300, external_id="CC-9",
                                     recording_url="https://cc.example.com/rec/1.mp3"))
    answer = res.get_json()
    assert answer["result"] == "recorded" and answer["callback_task_id"] is None
    call = db.session.scalar(select(CallLog))
    assert (call.status, call.agent, call.duration_s) == ("hangup", "王芳", 300)
    assert call.household_id == crew_setup["household"].id
    assert call.ticket_id == db.session.scalar(select(Ticket.id).where(Ticket.external_id == "CC-9"))
    assert call.started_at == _at(10) and call.answered_at == _at(10, 1) and call.ended_at == _at(10, 6)
    assert call.recording_url.endswith("1.mp3")


def test_call_events_out_of_order_end_in_the_final_status(db, phone):
    phone.post("/calls", _call("hangup", _at(10, 6), duration_s=300))
    late = phone.post("/calls", _call("ringing", _at(10)))
    phone.post("/calls", _call("answered", _at(10, 1)))
    assert late.get_json()["result"] == "stale"
    call = db.session.scalar(select(CallLog))
    assert call.status == "hangup" and call.started_at == _at(10) and call.answered_at == _at(10, 1)


def test_repeated_call_event_gets_the_same_answer(db, phone):
    first = phone.post("/calls", _call("ringing", _at(10)))
    again = phone.post("/calls", _call("ringing", _at(10)))
    assert first.get_json() == again.get_json()
    assert len(list(db.session.scalars(select(CallLog)))) == 1


def test_missed_call_outside_working_hours_becomes_a_call_back_task(db, phone):
    res = phone.post("/calls", _call("missed", _at(22, 30)))
    task_id = res.get_json()["callback_task_id"]
    task = db.session.get(CallbackTask, task_id)
    assert task.state == "open" and task.caller_phone == "+8613812345678" and task.missed_at == _at(22, 30)


def test_missed_call_during_working_hours_makes_no_task(db, phone):
    res = phone.post("/calls", _call("missed", _at(10)))
    assert res.get_json()["callback_task_id"] is None
    assert db.session.scalar(select(CallbackTask)) is None


def test_working_hours_are_configurable(db, phone, app, monkeypatch):
    monkeypatch.setitem(app.config, "BRIDGE_WORKING_HOURS", "09:00-17:00")
    assert phone.post("/calls", _call("missed", _at(8, 30))).get_json()["callback_task_id"] is not None
    assert not bridge_service.in_working_hours(_at(17))
    assert bridge_service.in_working_hours(_at(16, 59))


def test_calls_today_are_counted_by_local_day(db, phone):
    phone.post("/calls", _call("hangup", _at(0, 10), call_id="a", event_id="a"))
    phone.post("/calls", _call("missed", _at(23, 50), call_id="b", event_id="b"))
    phone.post("/calls", _call("missed", _at(23, 50, day=1), call_id="c", event_id="c"))  # yesterday
    counts = bridge_service.calls_today(_at(12))
    assert counts["total"] == 2 and counts["missed"] == 1 and counts["hangup"] == 1


# --- the screen pop -------------------------------------------------------------------------------

def test_caller_lookup_shows_households_arrears_tickets_and_outages(db, phone, crew_setup, make_season):
    household = crew_setup["household"]
    season = make_season(due_on=date(2026, 11, 30))
    billing.issue_bills(season, [household])
    outages.create_outage(title="3号换热站抢修", kind=OutageKind.UNPLANNED, reason="管道抢修",
                          starts_at=utcnow() - timedelta(hours=1), expected_end_at=None,
                          areas=[{"station_id": crew_setup["station"].id}])
    db.session.commit()
    for i in range(7):
        phone.post("/tickets", {"external_id": f"CC-{i}", "event_id": f"t-{i}", "type": "inquiry",
                                "caller_phone": "13812345678", "description": f"咨询{i}"})
    res = phone.get("/callers/+8613812345678")
    assert res.status_code == 200
    body = res.get_json()
    assert body["known"] is True and body["phone"] == "+8613812345678"  # stored form (E.164)
    [h] = body["households"]
    assert h["account_no"] == "A0001001" and h["arrears_fen"] > 0 and h["arrears"][0]["season"] == "2026-2027"
    assert [o["title"] for o in h["outages"]] == ["3号换热站抢修"]
    assert len(body["recent_tickets"]) == 5 and body["recent_tickets"][0]["description"] == "咨询6"
    assert len(body["open_tickets"]) == 7


def test_unknown_caller_is_answered_empty(db, phone):
    body = phone.get("/callers/13900000000").get_json()
    assert body["known"] is False and body["households"] == [] and body["recent_tickets"] == []


def test_invalid_phone_in_lookup_is_a_400(db, phone):
    assert phone.get("/callers/not-a-phone").status_code == 400
