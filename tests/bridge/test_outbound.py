"""Status back to the phone system: signed, retried by RQ until a 2xx, in order per ticket, never lost."""
from datetime import timedelta

from rq import SimpleWorker
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select, update

from app.models import OutboxMessage, OutboxStatus, Role, Ticket, TicketState, utcnow
from app.queue import QUEUES, get_queue
from app.services import ratings, tickets
from app.services.actors import Actor
from jobs.outbox import deliver_outbox_message, sweep_outbox


def _bridge_rows(db):
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "bridge.status")
                                   .order_by(OutboxMessage.id)))


def _run_rq_retries(redis, rounds=1):
    """Make RQ's scheduled retries due now and run them (what the worker does after the backoff)."""
    for _ in range(rounds):
        for name in QUEUES:
            registry = ScheduledJobRegistry(queue=get_queue(name))
            for job_id in registry.get_job_ids():
                redis.zadd(registry.key, {job_id: 0})
        SimpleWorker([get_queue(n) for n in QUEUES], connection=redis).work(burst=True, with_scheduler=True)


def _scheduled(redis):
    return sum(len(ScheduledJobRegistry(queue=get_queue(n)).get_job_ids()) for n in QUEUES)


def _phone_ticket(phone, db):
    res = phone.post("/tickets", {"external_id": "CC-OUT-1", "event_id": "ev-out-1", "type": "repair",
                                  "caller_phone": "13812345678", "account_no": "A0001001", "description": "暖气不热"})
    assert res.status_code == 201
    return db.session.get(Ticket, res.get_json()["ticket"]["id"])


def test_status_posts_are_retried_until_the_receiver_answers_2xx_in_order(db, redis, phone, crew_setup, receiver, worker):
    db.session.commit()
    receiver.script = [503, 500, 502, 503, 500]
    ticket = _phone_ticket(phone, db)
    member = Actor.of_staff(crew_setup["member"])
    tickets.accept_ticket(tickets.get_ticket(ticket.id), member)
    tickets.reply_ticket(tickets.get_ticket(ticket.id), member, "已更换阀门，恢复供热")
    db.session.commit()
    rows = _bridge_rows(db)
    assert [r.payload["action"] for r in rows] == ["created", "assigned", "accepted", "replied"]

    worker()
    assert _scheduled(redis) > 0  # RQ holds the failed deliveries for a retry with backoff
    assert receiver.accepted() == []
    # Every job tried the oldest row first: nothing later went out before it.
    assert {r["body"]["delivery_id"] for r in receiver.received} == {rows[0].id}
    _run_rq_retries(redis, rounds=3)

    accepted = receiver.accepted()
    assert [b["delivery_id"] for b in accepted] == [r.id for r in rows]  # each once, in order
    assert [b["state"] for b in accepted] == [TicketState.NEW, TicketState.ASSIGNED, TicketState.ACCEPTED,
                                              TicketState.REPLIED]
    assert accepted[0]["external_id"] == "CC-OUT-1" and accepted[0]["number"] == ticket.number
    assert accepted[3]["answer"] == "已更换阀门，恢复供热" and accepted[3]["actor"] == "王师傅"
    assert all(r["signature_ok"] for r in receiver.received)
    assert [r["status"] for r in receiver.received[:5]] == [503, 500, 502, 503, 500]
    assert {r.status for r in _bridge_rows(db)} == {OutboxStatus.DONE}


def test_a_later_change_is_never_posted_before_an_earlier_one(db, phone, crew_setup, receiver):
    db.session.commit()
    ticket = _phone_ticket(phone, db)
    tickets.accept_ticket(tickets.get_ticket(ticket.id), Actor.of_staff(crew_setup["member"]))
    db.session.commit()
    rows = _bridge_rows(db)
    receiver.script = [503]
    # The newest row's job runs first (queues reorder, workers race): it must post the older ones first.
    try:
        deliver_outbox_message(rows[-1].id)
    except Exception:
        pass
    assert receiver.received[0]["body"]["delivery_id"] == rows[0].id  # tried the oldest first, got 503
    assert receiver.accepted() == []
    assert deliver_outbox_message(rows[-1].id) == "done"
    assert [b["delivery_id"] for b in receiver.accepted()] == [r.id for r in rows]
    assert deliver_outbox_message(rows[0].id) == "already done"
    assert len(receiver.accepted()) == len(rows)


def test_status_recorded_while_the_phone_system_is_down_is_not_lost(db, redis, phone, crew_setup, receiver, worker):
    db.session.commit()
    receiver.script = [503] * 200
    _phone_ticket(phone, db)
    worker()
    for _ in range(12):  # a long outage: RQ's retries and the sweeper's rounds all fail
        _run_rq_retries(redis)
        _make_due(db)
        sweep_outbox()
        worker()
    rows = _bridge_rows(db)
    assert rows and {r.status for r in rows} == {OutboxStatus.PENDING}  # parked, never given up
    assert rows[0].attempts > 10 and "503" in rows[0].last_error
    assert all(r.available_at > utcnow() for r in rows)  # waiting with a backoff
    assert receiver.accepted() == []

    receiver.script = []  # the phone system is back
    _make_due(db)
    sweep_outbox()
    worker()
    assert [b["delivery_id"] for b in receiver.accepted()] == [r.id for r in rows]
    assert {r.status for r in _bridge_rows(db)} == {OutboxStatus.DONE}


def _make_due(db):
    """Let time pass: parked and enqueued rows are due for the sweeper."""
    db.session.execute(update(OutboxMessage).where(OutboxMessage.status != OutboxStatus.DONE).values(
        enqueued_at=utcnow() - timedelta(hours=2), available_at=utcnow() - timedelta(hours=2)))
    db.session.commit()


def test_without_an_outbound_url_status_posts_wait(db, phone, crew_setup, app, worker, monkeypatch):
    monkeypatch.setitem(app.config, "BRIDGE_OUTBOUND_URL", None)
    db.session.commit()
    _phone_ticket(phone, db)
    worker()
    rows = _bridge_rows(db)
    assert rows and {r.status for r in rows} == {OutboxStatus.PENDING}
    assert all("BRIDGE_OUTBOUND_URL" in r.last_error for r in rows)


def test_changes_made_elsewhere_are_posted_too(db, phone, crew_setup, receiver, worker, make_staff):
    db.session.commit()
    ticket = _phone_ticket(phone, db)
    member = Actor.of_staff(crew_setup["member"])
    agent = Actor.of_staff(make_staff(Role.AGENT, name="客服小刘"))
    tickets.accept_ticket(tickets.get_ticket(ticket.id), member)
    tickets.reply_ticket(tickets.get_ticket(ticket.id), member, "已处理")
    tickets.close_ticket(tickets.get_ticket(ticket.id), agent, "已回访确认恢复供热")
    db.session.commit()
    worker()
    actions = [b["action"] for b in receiver.accepted()]
    assert actions == ["created", "assigned", "accepted", "replied", "closed"]
    assert receiver.accepted()[-1]["answer"] == "已回访确认恢复供热"


def test_the_residents_rating_is_posted_with_its_score(db, receiver, worker, make_staff, make_wechat_user):
    from app.models import TicketSource, TicketType

    resident = Actor.of_resident(make_wechat_user())
    ticket = tickets.create_ticket(resident, type=TicketType.INQUIRY, source=TicketSource.OFFICIAL_ACCOUNT,
                                   description="采暖费怎么交", external_id="CC-RATE-1")
    tickets.close_ticket(ticket, Actor.of_staff(make_staff(Role.AGENT)), "可在公众号缴费")
    ratings.rate_ticket(ticket, 5, "很满意", source="api", by=resident.user)
    db.session.commit()
    worker()
    last = receiver.accepted()[-1]
    assert (last["action"], last["rating"], last["rating_comment"]) == ("rated", 5, "很满意")
