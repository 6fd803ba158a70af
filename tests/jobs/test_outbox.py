"""The outbox rule: a change and its notification commit or roll back together, and a
notification recorded while Redis is down goes out once Redis is back."""
import json
from datetime import timedelta

import pytest
import redis as redis_lib
from rq import Queue
from sqlalchemy import func, select, update

from app.models import OutboxMessage, OutboxStatus, utcnow
from app.services import outbox
from jobs import outbox as outbox_jobs


@pytest.fixture()
def test_handler(monkeypatch):
    monkeypatch.setitem(outbox_jobs.HANDLERS, "test", "tests.jobs.handlers.remember")


def _delivered(redis):
    return [json.loads(x) for x in redis.lrange("test:outbox:delivered", 0, -1)]


def _make_change(db, make_household, topic="test.ping"):
    """A state change that must notify someone: the outbox row rides in its transaction."""
    h = make_household()
    h.owner_phone = "13911112222"
    return outbox.record(topic, {"household_id": h.id}, dedupe_key=f"{topic}:{h.id}")


def test_rollback_discards_the_change_and_its_notification(db, redis, make_household):
    _make_change(db, make_household)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert Queue("notify", connection=redis).count == 0


def test_commit_keeps_the_row_and_enqueues_delivery_after_commit(db, redis, make_household):
    msg_id = _make_change(db, make_household)
    assert Queue("notify", connection=redis).count == 0  # nothing before the commit
    db.session.commit()
    assert db.session.get(OutboxMessage, msg_id).status == OutboxStatus.PENDING
    assert Queue("notify", connection=redis).job_ids == [f"outbox-{msg_id}"]


def test_same_dedupe_key_records_one_row(db, make_household):
    h = make_household()
    outbox.record("test.ping", {"n": 1}, dedupe_key="same")
    outbox.record("test.ping", {"n": 2}, dedupe_key="same")
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 1
    assert h.id


def test_collected_promises_are_one_insert_at_the_end_of_the_block(db, redis, make_household):
    """outbox.collect: nothing written inside the block; at its end one row per dedupe key (the
    first payload wins, a key already stored is skipped), in the order recorded, each enqueued
    after the commit."""
    make_household()
    outbox.record("test.ping", {"n": 0}, dedupe_key="stored")
    with outbox.collect():
        assert outbox.record("test.ping", {"n": 1}, dedupe_key="a", ordering_key="k") is None
        with outbox.collect():  # a nested block joins the outer one
            outbox.record("test.ping", {"n": 2}, dedupe_key="b")
        outbox.record("test.ping", {"n": 3}, dedupe_key="a")
        outbox.record("test.ping", {"n": 4}, dedupe_key="stored")
        assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 1
    rows = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert [(r.dedupe_key, r.payload, r.ordering_key, r.status) for r in rows] == [
        ("stored", {"n": 0}, None, OutboxStatus.PENDING), ("a", {"n": 1}, "k", OutboxStatus.PENDING),
        ("b", {"n": 2}, None, OutboxStatus.PENDING)]
    db.session.commit()
    assert Queue("notify", connection=redis).job_ids == [f"outbox-{r.id}" for r in rows]


def test_a_failing_block_writes_nothing(db, make_household):
    make_household()
    with pytest.raises(RuntimeError), outbox.collect():
        outbox.record("test.ping", {"n": 1}, dedupe_key="a")
        raise RuntimeError("the change failed")
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    outbox.record("test.ping", {"n": 2}, dedupe_key="b")  # and recording works as before afterwards
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_worker_delivers_once_even_if_the_job_runs_twice(db, redis, worker, make_household, test_handler):
    msg_id = _make_change(db, make_household)
    db.session.commit()
    worker()
    assert [d["id"] for d in _delivered(redis)] == [msg_id]
    assert outbox_jobs.deliver_outbox_message(msg_id) == "already done"
    assert len(_delivered(redis)) == 1
    db.session.expire_all()
    assert db.session.get(OutboxMessage, msg_id).status == OutboxStatus.DONE


def test_notification_recorded_while_redis_is_down_goes_out_when_it_is_back(
        app, db, redis, worker, make_household, test_handler, monkeypatch):
    monkeypatch.setitem(app.extensions, "redis", redis_lib.Redis.from_url("redis://127.0.0.1:1/0",
                                                                          socket_connect_timeout=0.2))
    msg_id = _make_change(db, make_household)
    db.session.commit()  # the change is not lost because Redis is down
    monkeypatch.setitem(app.extensions, "redis", redis)
    assert Queue("notify", connection=redis).count == 0
    assert db.session.get(OutboxMessage, msg_id).status == OutboxStatus.PENDING

    # Within the grace period the sweeper leaves fresh rows to the after-commit path.
    assert outbox_jobs.sweep_outbox() == 0
    db.session.execute(update(OutboxMessage).values(available_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    assert outbox_jobs.sweep_outbox() == 1
    assert outbox_jobs.sweep_outbox() == 0  # already enqueued: not twice
    worker()
    assert [d["id"] for d in _delivered(redis)] == [msg_id]


def test_rows_without_a_handler_stay_pending_and_are_not_swept(db, redis, make_household):
    msg_id = _make_change(db, make_household, topic="unhandled.topic")
    db.session.commit()
    db.session.execute(update(OutboxMessage).values(available_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    assert outbox_jobs.sweep_outbox() == 0
    assert outbox_jobs.deliver_outbox_message(msg_id) == "no handler yet"
    assert db.session.get(OutboxMessage, msg_id).status == OutboxStatus.PENDING
