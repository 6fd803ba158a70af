"""A worker dies (SIGKILL) in the middle of a broadcast; another takes over: every recipient
gets exactly one message and nobody is missed. Real worker processes, real Redis, the
sandbox over HTTP."""
import signal
from collections import Counter

from sqlalchemy import func, select

from app.models import Delivery, DeliveryStatus, OutboundMessage
from app.services import announcements as svc
from jobs import broadcast
from tests.jobs.conftest import wait_until

RECIPIENTS = 40


def _messages_sent(db):
    """Recipients WeChat has accepted a message for (recorded per message by send_notice)."""
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(OutboundMessage).where(OutboundMessage.status == "sent"))


def _count(db, status):
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == status))


def test_worker_killed_mid_broadcast_and_replaced_sends_each_recipient_exactly_once(
        app, db, wechat, redis, make_resident, start_worker):
    openids = [make_resident()[0] for _ in range(RECIPIENTS)]
    db.session.commit()
    broadcast.set_rate_per_minute(300)  # 5 a second for every worker: the kill lands mid-broadcast
    ann = svc.compose_announcement(title="换热站设备检修通知", body="明日检修，请做好准备。")
    svc.start_announcement(ann.id)
    db.session.commit()
    ann_id = ann.id

    first = start_worker("notify", "default", "bulk")
    wait_until(lambda: _messages_sent(db) >= 10, timeout=90, interval=0.05, what="the first sends")
    first.kill(signal.SIGKILL)  # the worker and its work horse, mid-batch
    sent_at_kill = _messages_sent(db)
    assert 0 < sent_at_kill < RECIPIENTS
    # A chunk's delivery rows are written in the same commit as its outbound rows: what was
    # recorded as sent is no longer pending, the rest is (the chunk in flight, if the kill
    # landed during its call, as "sending").
    assert _count(db, DeliveryStatus.PENDING) + _count(db, DeliveryStatus.SENDING) == RECIPIENTS - sent_at_kill

    # The dead worker's slice lease runs out (TTL); say it has, instead of waiting for it.
    for key in redis.scan_iter("broadcast:lease:*"):
        redis.delete(key)
    # A new worker with the cron scheduler: the broadcast sweeper re-dispatches what is left.
    start_worker("--with-cron", "notify", "default", "bulk")
    def finished():
        db.session.expire_all()
        return svc.progress(ann_id)["status"] == "done"

    wait_until(finished, timeout=120, what="the rest of the broadcast")
    p = svc.progress(ann_id)
    assert (p["sent"], p["failed"], p["skipped"], p["pending"]) == (RECIPIENTS, 0, 0, 0)
    received = Counter({o: len(wechat.inbox(o)) for o in openids})
    assert set(received.values()) == {1}, received
