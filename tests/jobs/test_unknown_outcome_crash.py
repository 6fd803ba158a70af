"""A worker killed (SIGKILL) while WeChat is answering a message: nobody gets it twice, nobody is
silently left out (DESIGN §5).

Real worker processes, real Redis, the sandbox over HTTP. The sandbox's delay fault holds one
call open; the kill lands while it is in flight (we wait until the sandbox has taken the call
and our row says "sending"), and the sandbox then carries the message out anyway — as WeChat
would. Recovery repeats a template message with its client_msg_id (WeChat drops the repeat);
a customer-service message is "unknown", listed for staff, and 重新发送 sends it exactly once
more."""
import signal
from datetime import timedelta

import requests
from sqlalchemy import select

from app.models import (
    Delivery, DeliveryStatus, OutboundMessage, OutboxMessage, OutboxStatus, Role, TicketSource, TicketType, utcnow,
)
from app.models.messages import OutboundStatus
from app.services import announcements as svc
from app.services import outbox, tickets
from app.services.actors import Actor
from jobs import broadcast
from jobs import notify as notify_jobs
from tests.jobs.conftest import mentions, wait_until
from tests.web.conftest import PASSWORD, Console

TITLE = "换热站设备检修通知"
DELAY = 8  # seconds the sandbox holds the call: far longer than observing it and killing the worker


def _injected(wechat) -> list:
    return requests.get(f"{wechat.base}/faults", timeout=10).json()["injected"]


def _received(wechat, openid, title=TITLE) -> int:
    """Messages that say ``title`` (the announcement's title on a template card, or the
    first line of a customer-service message)."""
    return mentions(wechat.inbox(openid), title)


def _outbound(db):
    db.session.expire_all()
    return {r.dedupe_key: r for r in db.session.scalars(select(OutboundMessage))}


def _deliveries(db, ann_id):
    db.session.expire_all()
    return {d.wechat_user_id: d for d in db.session.scalars(select(Delivery).where(Delivery.announcement_id == ann_id))}


def _chatty_resident(db, wechat, make_resident, **kw):
    """A resident who just wrote to us: the 48-hour window is open (a customer-service message)."""
    openid, user, home = make_resident(**kw)
    db.session.commit()
    wechat.say(openid, "你好")
    return openid, user, home


def _console(app, make_staff, role):
    member = make_staff(role=role, password=PASSWORD)
    from app.extensions import db

    db.session.commit()
    console = Console(app.test_client())
    assert console.login(member.username).status_code == 302
    return console


def test_broadcast_worker_killed_during_a_customer_service_message_nobody_gets_it_twice(
        app, db, wechat, redis, make_resident, make_staff, start_worker, worker, monkeypatch):
    followers = [make_resident() for _ in range(4)]          # template messages
    db.session.commit()
    chatty = [_chatty_resident(db, wechat, make_resident) for _ in range(3)]  # customer-service messages
    everyone = [o for o, _, _ in followers + chatty]
    ann = svc.compose_announcement(title=TITLE, body="明日9:00-12:00检修，请做好准备。")
    svc.start_announcement(ann.id)
    db.session.commit()
    ann_id = ann.id

    # One customer-service call is held open by WeChat; every other message goes straight out.
    wechat.faults(delay=DELAY, times=1, api="message/custom/send")
    monkeypatch.setenv("WECHAT_TIMEOUT_MS", "60000")  # the worker waits for it: the kill cuts it off
    first = start_worker("notify", "default", "bulk")
    wait_until(lambda: not _injected(wechat) and sum(_received(wechat, o) for o in everyone) == len(everyone) - 1,
               timeout=90, interval=0.05, what="the held call and all the others")
    first.kill(signal.SIGKILL)

    # Before the calls, the chunk was committed "sending" with each person's channel.
    rows = _deliveries(db, ann_id)
    assert {d.status for d in rows.values()} == {DeliveryStatus.SENDING}
    assert sorted(d.channel for d in rows.values()) == ["custom"] * 3 + ["template"] * 4
    assert {r.status for r in _outbound(db).values()} == {OutboundStatus.SENDING}
    # WeChat carries out the held call anyway: everyone has the message once.
    wait_until(lambda: all(_received(wechat, o) == 1 for o in everyone), timeout=DELAY + 30, what="the late one")

    # Recovery: the dead worker's slice lease runs out (say it has); the sweeper re-dispatches.
    for key in redis.scan_iter("broadcast:lease:*"):
        redis.delete(key)
    assert broadcast.sweep_broadcasts()["dispatched"] == 1
    worker()
    db.session.expire_all()
    p = svc.progress(ann_id)
    assert (p["status"], p["sent"], p["unknown"], p["pending"], p["sending"], p["failed"]) == ("done", 4, 3, 0, 0, 0)
    assert [_received(wechat, o) for o in everyone] == [1] * 7  # templates repeated by client_msg_id: dropped
    rows = _deliveries(db, ann_id)
    assert {rows[u.id].status for _, u, _ in followers} == {DeliveryStatus.SENT}
    assert {(rows[u.id].status, rows[u.id].channel) for _, u, _ in chatty} == {(DeliveryStatus.UNKNOWN, "custom")}
    # A re-run changes nothing: finished keys are copied, unknown ones are not sent again.
    broadcast.dispatch_one(ann_id, min(d.id for d in rows.values()), max(d.id for d in rows.values()) + 1)
    worker()
    assert [_received(wechat, o) for o in everyone] == [1] * 7

    # Staff see it: not "all sent", the people whose outcome is unknown, and 重新发送.
    agent = _console(app, make_staff, Role.AGENT)
    progress = agent.get(f"/console/announcements/{ann_id}/progress.json").get_json()
    assert progress["unknown"] == 3 and progress["percent"] < 100
    assert progress["status_label"] == "发送结束：成功4人，结果未知3人"
    page = agent.get(f"/console/announcements/{ann_id}").get_data(as_text=True)
    assert "结果未知（3人）" in page and "重新发送" in page
    for _, _, home in chatty:
        assert home.account_no in page
    for _, _, home in followers:
        assert home.account_no not in page

    # Leaders read only; a form without the session's token is refused.
    leader = _console(app, make_staff, Role.LEADER)
    assert leader.post(f"/console/announcements/{ann_id}/resend", {"all": "1"}).status_code == 403
    assert agent.post(f"/console/announcements/{ann_id}/resend", {"all": "1"}, csrf=False).status_code == 400

    # One person first, then everyone left: each gets exactly one more; a second click sends nothing.
    one_openid, one_user, _ = chatty[0]
    res = agent.post(f"/console/announcements/{ann_id}/resend", {"delivery_id": str(rows[one_user.id].id)})
    assert res.status_code == 302
    worker()
    assert [_received(wechat, o) for o, _, _ in chatty] == [2, 1, 1]
    assert agent.post(f"/console/announcements/{ann_id}/resend", {"all": "1"}).status_code == 302
    assert agent.post(f"/console/announcements/{ann_id}/resend", {"all": "1"}).status_code == 302
    worker()
    assert [_received(wechat, o) for o in everyone] == [1] * 4 + [2] * 3
    db.session.expire_all()
    p = svc.progress(ann_id)
    assert (p["status"], p["sent"], p["unknown"]) == ("done", 7, 0)
    outbound = _outbound(db)
    assert sorted(r.status for k, r in outbound.items() if ":resend:" not in k) == ["resent"] * 3 + ["sent"] * 4
    assert sorted(r.status for k, r in outbound.items() if ":resend:" in k) == ["sent"] * 3


def _ticket_notice(db, user, home):
    """A "ticket replied" notice for ``user`` through the outbox (the worker picks it up)."""
    ticket = tickets.create_ticket(Actor.system(), type=TicketType.INQUIRY, source=TicketSource.PHONE,
                                   description="暖气什么时候开始供热？", household=home)
    db.session.flush()
    row_id = outbox.record("notify.ticket_updated",
                           {"ticket_id": ticket.id, "wechat_user_id": user.id, "state": "replied"},
                           dedupe_key=f"test:ticket_updated:{ticket.id}")
    db.session.commit()
    return row_id


NOTICE_TITLE = "维修人员已处理并回复"


def _kill_during_the_call(db, wechat, start_worker, monkeypatch, api):
    wechat.faults(delay=DELAY, times=1, api=api)
    monkeypatch.setenv("WECHAT_TIMEOUT_MS", "60000")
    return start_worker("notify", "default")


def _sending(db, channel):
    rows = [r for r in _outbound(db).values() if r.status == OutboundStatus.SENDING and r.channel == channel]
    return rows[0] if rows else None


def test_single_notice_worker_killed_during_a_customer_service_message_is_unknown_and_resent_once(
        app, db, wechat, make_resident, make_staff, start_worker, worker, monkeypatch):
    openid, user, home = _chatty_resident(db, wechat, make_resident)
    proc = _kill_during_the_call(db, wechat, start_worker, monkeypatch, "message/custom/send")
    outbox_id = _ticket_notice(db, user, home)
    wait_until(lambda: not _injected(wechat) and _sending(db, "custom"), timeout=90, interval=0.05,
               what="the customer-service call in flight")
    proc.kill(signal.SIGKILL)
    row_id = _sending(db, "custom").id  # committed "sending" with its channel before the call
    wait_until(lambda: _received(wechat, openid, NOTICE_TITLE) == 1, timeout=DELAY + 30, what="the late message")

    # Recovery: the sweeper finds it "sending" past its lease; it may have arrived, and WeChat
    # has no key to drop a repeat: unknown, not sent again.
    lease = timedelta(seconds=app.config["NOTICE_LEASE_SECONDS"] + 1)
    assert notify_jobs.recover_notices() == 0  # still within its lease: maybe in flight
    assert notify_jobs.recover_notices(now=utcnow() + lease) == 1
    worker()
    row = _outbound(db)[f"outbox:{outbox_id}:user:{user.id}"]
    assert (row.id, row.status, row.channel) == (row_id, OutboundStatus.UNKNOWN, "custom")
    # The job retried (RQ re-runs an abandoned job; the outbox sweeper re-queues it): nothing more.
    from jobs.outbox import deliver_outbox_message

    assert deliver_outbox_message(outbox_id) == "done"
    assert _received(wechat, openid, NOTICE_TITLE) == 1

    # Staff see it among the failures, with 重新发送 (agents and admins; a leader reads only).
    agent = _console(app, make_staff, Role.AGENT)
    page = agent.get("/console/jobs/failed").get_data(as_text=True)
    assert "结果未知的通知（1条）" in page and NOTICE_TITLE in page and home.account_no in page
    leader = _console(app, make_staff, Role.LEADER)
    assert leader.post(f"/console/notices/{row_id}/resend").status_code == 403
    assert agent.post(f"/console/notices/{row_id}/resend", csrf=False).status_code == 400
    assert agent.post(f"/console/notices/{row_id}/resend").status_code == 302
    assert agent.post(f"/console/notices/{row_id}/resend").status_code == 302  # a second click
    worker()
    assert _received(wechat, openid, NOTICE_TITLE) == 2  # exactly once more
    outbound = _outbound(db)
    assert outbound[f"outbox:{outbox_id}:user:{user.id}"].status == OutboundStatus.RESENT
    assert outbound[f"resend:{row_id}"].status == OutboundStatus.SENT
    db.session.expire_all()
    assert set(db.session.scalars(select(OutboxMessage.status))) == {OutboxStatus.DONE}
    assert "没有结果未知的通知" in agent.get("/console/jobs/failed").get_data(as_text=True)


def test_single_notice_worker_killed_during_a_template_message_is_sent_again_by_client_msg_id(
        app, db, wechat, make_resident, start_worker, worker, monkeypatch):
    openid, user, home = make_resident()  # a follower who has not written: a template message
    db.session.commit()
    proc = _kill_during_the_call(db, wechat, start_worker, monkeypatch, "message/template/send")
    outbox_id = _ticket_notice(db, user, home)
    wait_until(lambda: not _injected(wechat) and _sending(db, "template"), timeout=90, interval=0.05,
               what="the template call in flight")
    proc.kill(signal.SIGKILL)
    wait_until(lambda: _received(wechat, openid, NOTICE_TITLE) == 1, timeout=DELAY + 30, what="the late message")

    lease = timedelta(seconds=app.config["NOTICE_LEASE_SECONDS"] + 1)
    assert notify_jobs.recover_notices(now=utcnow() + lease) == 1
    worker()
    row = _outbound(db)[f"outbox:{outbox_id}:user:{user.id}"]
    assert (row.status, row.channel) == (OutboundStatus.SENT, "template") and row.wechat_msgid
    assert _received(wechat, openid, NOTICE_TITLE) == 1  # WeChat dropped the repeat
    from jobs.outbox import deliver_outbox_message

    assert deliver_outbox_message(outbox_id) == "done"
    assert _received(wechat, openid, NOTICE_TITLE) == 1
