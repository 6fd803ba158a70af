"""Tickets from the phone system: signature, matching, routing, idempotency, newest wins."""
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from app.models import utcnow
from app.models import (
    BridgeDeadLetter, BridgeEvent, OutboxMessage, Priority, Role, Ticket, TicketCategory, TicketEvent, TicketState,
    WechatUser,
)


def _ticket(**kw):
    base = {"external_id": "CC20261201-001", "event_id": "ev-1", "type": "repair", "caller_phone": "13812345678",
            "description": "暖气不热，屋里只有十四度", "agent": "王芳"}
    return {**base, **kw}


def _count(db, model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _outbox(db, topic):
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == topic).order_by(OutboxMessage.id)))


# --- authentication ----------------------------------------------------------------------------

def test_missing_signature_is_refused_with_401_and_nothing_stored(db, client):
    res = client.post("/bridge/v1/tickets", data=json.dumps(_ticket()), headers={"Content-Type": "application/json"})
    assert res.status_code == 401
    assert res.get_json()["error"]["code"] == "bad_signature"
    assert _count(db, Ticket) == 0 and _count(db, BridgeDeadLetter) == 0


def test_wrong_signature_is_refused_with_401(db, phone):
    assert phone.post("/tickets", _ticket(), secret="not-the-secret").status_code == 401
    body = phone.body(_ticket())
    headers = phone.headers(body)
    tampered = body.replace("十四".encode(), "十五".encode())
    assert phone.client.post("/bridge/v1/tickets", data=tampered, headers=headers).status_code == 401
    assert _count(db, Ticket) == 0


@pytest.mark.parametrize("skew", [-301, 301, -3600])
def test_timestamp_outside_300_seconds_is_refused_with_401(db, phone, skew):
    assert phone.post("/tickets", _ticket(), timestamp=int(time.time()) + skew).status_code == 401
    assert _count(db, Ticket) == 0


def test_timestamp_within_300_seconds_is_accepted(db, phone, crew_setup):
    db.session.commit()
    assert phone.post("/tickets", _ticket(), timestamp=int(time.time()) - 290).status_code == 201


def test_caller_lookup_is_signed_too(db, client, phone):
    assert client.get("/bridge/v1/callers/13812345678").status_code == 401
    assert phone.get("/callers/13812345678", secret="wrong").status_code == 401
    assert phone.get("/callers/13812345678").status_code == 200


# --- creating --------------------------------------------------------------------------------------

def test_new_repair_matches_the_household_routes_to_its_crew_and_pushes_the_task(db, phone, crew_setup):
    db.session.commit()
    res = phone.post("/tickets", _ticket(account_no="A0001001"))
    assert res.status_code == 201, res.get_json()
    answer = res.get_json()
    assert answer["result"] == "created"
    assert answer["ticket"]["account_no"] == "A0001001"
    assert answer["ticket"]["state"] == TicketState.ASSIGNED and answer["ticket"]["assignee"] == "王师傅"
    ticket = db.session.get(Ticket, answer["ticket"]["id"])
    assert ticket.source == "phone" and ticket.household_id == crew_setup["household"].id
    assert ticket.crew_id == crew_setup["crew"].id
    assert ticket.events[0].actor_kind == "phone" and ticket.events[0].actor_name == "王芳"
    pushes = _outbox(db, "notify.task_assigned")
    assert [p.payload["staff_id"] for p in pushes] == [crew_setup["member"].id]


def test_household_is_matched_by_caller_phone_when_no_account_number(db, phone, crew_setup):
    db.session.commit()
    res = phone.post("/tickets", _ticket(caller_phone="+86 138-1234-5678"))
    assert res.get_json()["ticket"]["household_id"] == crew_setup["household"].id


def test_unknown_caller_keeps_the_address_as_given(db, phone, crew_setup):
    db.session.commit()
    res = phone.post("/tickets", _ticket(caller_phone="13900000000", address="幸福小区3号楼2单元501"))
    ticket = res.get_json()["ticket"]
    assert ticket["household_id"] is None and ticket["address"] == "幸福小区3号楼2单元501"
    assert ticket["state"] == TicketState.NEW  # no household, no route: waits for an agent


@pytest.mark.parametrize("category, expected", [("gas_smell", TicketCategory.LEAK), ("爆管", TicketCategory.BURST_PIPE),
                                                ("flooding", TicketCategory.LEAK)])
def test_emergency_gets_the_emergency_sla_and_alerts_the_crew_lead(db, phone, crew_setup, category, expected):
    db.session.commit()
    res = phone.post("/tickets", _ticket(account_no="A0001001", category=category, priority="normal"))
    ticket = db.session.get(Ticket, res.get_json()["ticket"]["id"])
    assert (ticket.category, ticket.priority) == (expected, Priority.EMERGENCY)
    assert ticket.finish_by - ticket.created_at <= timedelta(hours=4)  # emergency SLA, not the normal one
    alerts = _outbox(db, "notify.emergency_alert")
    assert [a.payload["staff_id"] for a in alerts] == [crew_setup["lead"].id]


def test_explicit_assignee_overrides_routing_with_a_single_push(db, phone, crew_setup, make_crew, make_staff):
    other = make_staff(Role.CREW_MEMBER, crew=make_crew(), name="赵师傅", username="zhao", phone="13700000001")
    db.session.commit()
    res = phone.post("/tickets", _ticket(account_no="A0001001", assignee="13700000001"))
    assert res.get_json()["ticket"]["assignee"] == "赵师傅"
    assert [p.payload["staff_id"] for p in _outbox(db, "notify.task_assigned")] == [other.id]


# --- idempotency ------------------------------------------------------------------------------------

def test_same_event_again_gets_the_same_answer_and_changes_nothing(db, phone, crew_setup):
    db.session.commit()
    first = phone.post("/tickets", _ticket(account_no="A0001001"))
    again = phone.post("/tickets", _ticket(account_no="A0001001", description="别的内容"))
    assert again.status_code == first.status_code == 201
    assert again.get_json() == first.get_json()
    assert _count(db, Ticket) == 1 and _count(db, BridgeEvent) == 1
    assert db.session.scalar(select(Ticket.description)) == "暖气不热，屋里只有十四度"
    assert len(_outbox(db, "notify.task_assigned")) == 1


def test_twenty_concurrent_copies_of_one_event_make_one_ticket_and_one_push(db, live_phone, crew_setup, wechat, worker):
    person = wechat.create_user()
    db.session.add(WechatUser(oa_openid=person["openid"], subscribed=True, staff_id=crew_setup["member"].id))
    db.session.commit()
    payload = _ticket(account_no="A0001001", external_id="CC-RACE", event_id="ev-race")
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: live_phone.http_post("/tickets", payload), range(20)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.text for a in answers}) == 1
    db.session.expire_all()
    assert _count(db, Ticket) == 1 and _count(db, BridgeEvent) == 1 and _count(db, BridgeDeadLetter) == 0
    assert len(_outbox(db, "notify.task_assigned")) == 1
    worker()
    inbox = wechat.inbox(person["openid"])
    assert len(inbox) == 1 and inbox[0]["title"] == "工单派发提醒"  # the crew member's new-task push


def test_concurrent_first_events_of_one_external_id_make_one_ticket(db, live_phone, crew_setup):
    db.session.commit()
    now = utcnow()
    payloads = [_ticket(account_no="A0001001", external_id="CC-SAME", event_id=f"ev-{i}",
                        description=f"第{i}次描述", occurred_at=(now + timedelta(seconds=i)).isoformat())
                for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda p: live_phone.http_post("/tickets", p), payloads))
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
    db.session.expire_all()
    assert _count(db, Ticket) == 1 and _count(db, BridgeEvent) == 8
    assert db.session.scalar(select(Ticket.description)) == "第7次描述"  # the newest event, whatever came first
    assert len(_outbox(db, "notify.task_assigned")) == 1


# --- updates: newest wins ---------------------------------------------------------------------------

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def _versions():
    return [
        _ticket(event_id="ev-a", occurred_at=T0.isoformat(), description="暖气不热"),
        _ticket(event_id="ev-b", occurred_at=(T0 + timedelta(minutes=5)).isoformat(), description="暖气不热，有漏水",
                category="leak"),
        _ticket(event_id="ev-c", occurred_at=(T0 + timedelta(minutes=9)).isoformat(),
                description="暖气不热，漏水已关阀", category="leak", recording_url="https://cc.example.com/rec/3.mp3"),
    ]


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0), (2, 0, 1)])
def test_out_of_order_updates_end_in_the_newest_state(db, phone, crew_setup, order):
    db.session.commit()
    versions = _versions()
    results = [phone.post("/tickets", versions[i]).get_json() for i in order]
    ticket = db.session.scalar(select(Ticket))
    assert ticket.description == "暖气不热，漏水已关阀"
    assert ticket.recording_url == "https://cc.example.com/rec/3.mp3"
    assert ticket.category == TicketCategory.LEAK and ticket.priority == Priority.EMERGENCY  
    assert ticket.external_updated_at == T0 + timedelta(minutes=9)
    by_event = {versions[i]["event_id"]: r["result"] for i, r in zip(order, results)}
    assert by_event["ev-c"] in ("created", "updated")
    assert _count(db, BridgeEvent) == 3  # older events are recorded too


def test_an_older_event_is_answered_stale_and_does_not_overwrite(db, phone, crew_setup):
    db.session.commit()
    newer, older = _versions()[2], _versions()[0]
    phone.post("/tickets", newer)
    res = phone.post("/tickets", older)
    assert res.status_code == 200 and res.get_json()["result"] == "stale"
    assert db.session.scalar(select(Ticket.description)) == "暖气不热，漏水已关阀"


def test_update_records_what_changed_in_the_timeline(db, phone, crew_setup):
    db.session.commit()
    a, b, _ = _versions()
    phone.post("/tickets", a)
    res = phone.post("/tickets", b)
    assert res.get_json()["result"] == "updated"
    event = db.session.scalar(select(TicketEvent).where(TicketEvent.action == "details_updated"))
    assert event.data["changes"]["description"] == ["暖气不热", "暖气不热，有漏水"]
    assert event.actor_kind == "phone"


def test_same_content_again_with_a_new_event_is_unchanged(db, phone, crew_setup):
    db.session.commit()
    a = _versions()[0]
    phone.post("/tickets", a)
    res = phone.post("/tickets", {**a, "event_id": "ev-a2", "occurred_at": (T0 + timedelta(minutes=1)).isoformat()})
    assert res.get_json()["result"] == "unchanged"
    assert _count(db, TicketEvent, TicketEvent.action == "details_updated") == 0


@pytest.mark.parametrize("field", ["description", "external_id", "caller_name", "address"])
def test_a_control_character_in_a_text_field_is_a_400_with_the_field_named(phone, db, field):
    # PostgreSQL cannot store NUL in text: refused at the door, never a 500 (found by fuzzing).
    payload = {"external_id": "HJ-NUL-1", "event_id": f"e-nul-{field}", "type": "repair",
               "caller_phone": "13912345678", "description": "暖气不热", field: "前\x00后"}
    res = phone.post("/tickets", payload)
    assert res.status_code == 400, res.get_data(as_text=True)
    assert "控制字符" in str(res.get_json()["error"]["fields"][field])
