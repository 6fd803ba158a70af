"""Broadcast announcements through the sandbox: audiences, progress, WeChat's limits,
pause/resume/cancel and scheduling — real Redis, real RQ jobs, real HTTP."""
import threading
import time
from datetime import timedelta

import pytest
import requests
from rq import SimpleWorker
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from rq.timeouts import TimerDeathPenalty
from sqlalchemy import func, select

from app.errors import InvalidTransitionError
from app.models import Announcement, AnnouncementStatus, Audience, Delivery, DeliveryStatus, OutboundMessage, utcnow
from app.queue import QUEUES, get_queue
from app.services import announcements as svc
from jobs import broadcast
from tests.jobs.conftest import card

S = AnnouncementStatus


def _announce(db, **kw):
    ann = svc.compose_announcement(title=kw.pop("title", "小区供热管网检修通知"),
                                   body=kw.pop("body", "本周六9:00-12:00检修，期间暖气温度可能偏低。"), **kw)
    svc.start_announcement(ann.id)
    db.session.commit()
    return ann.id


def _progress(db, ann_id):
    db.session.expire_all()
    return svc.progress(ann_id)


def test_every_bound_resident_gets_the_announcement_once_and_progress_counts_it(db, wechat, worker, make_resident):
    people = [make_resident()[0] for _ in range(5)]
    gone, _, _ = make_resident(follow=False)  # we still think they follow; WeChat says 43004
    db.session.commit()
    ann_id = _announce(db)
    worker()
    p = _progress(db, ann_id)
    assert (p["status"], p["total"], p["sent"], p["skipped"], p["pending"], p["failed"]) == (S.DONE, 6, 5, 1, 0, 0)
    skipped = db.session.scalar(select(Delivery).where(Delivery.status == DeliveryStatus.SKIPPED))
    assert skipped.errcode == 43004 and skipped.reason == "用户未关注公众号"
    for openid in people:
        (m,) = wechat.inbox(openid)
        shown = card(m)  # the 公告通知 template; the body cut to its thing key's 20 characters
        assert (m["title"], shown["公告标题"]) == ("公告通知", "小区供热管网检修通知")
        assert shown["公告内容"] == "本周六9:00-12:00检修，期间暖…"
    assert wechat.inbox(gone) == []
    # The sweeper and a second run of every slice send nothing more.
    broadcast.sweep_broadcasts()
    first = db.session.scalar(select(func.min(Delivery.id)))
    assert broadcast.send_slice(ann_id, first, first + 10_000).startswith("stopped")  # it is done
    worker()
    for openid in people:
        assert len(wechat.inbox(openid)) == 1


def test_area_audience_reaches_only_residents_of_that_area(db, wechat, worker, make_resident, make_area,
                                                          make_household):
    _, community, _ = make_area()
    inside = [make_resident(make_household(community=community, building="3"))[0] for _ in range(2)]
    other_building = make_resident(make_household(community=community, building="4"))[0]
    elsewhere = make_resident()[0]
    db.session.commit()
    assert svc.count_audience(Audience.AREA, {"buildings": [{"community_id": community.id, "building": "3"}]}) == 2
    ann_id = _announce(db, audience=Audience.AREA,
                       audience_filter={"buildings": [{"community_id": community.id, "building": "3"}]})
    worker()
    assert _progress(db, ann_id)["sent"] == 2
    assert all(len(wechat.inbox(o)) == 1 for o in inside)
    assert wechat.inbox(other_building) == [] and wechat.inbox(elsewhere) == []


def test_arrears_audience_is_residents_with_bills_past_due(db, wechat, worker, make_resident, make_season):
    from datetime import date

    from app.services.billing import issue_bills

    owing, _, h_owing = make_resident()
    paid, _, h_paid = make_resident()
    season = make_season(due_on=date(2020, 1, 31))
    issue_bills(season, [h_owing, h_paid])
    from app.models import Bill, BillStatus

    bill = db.session.scalar(select(Bill).where(Bill.household_id == h_paid.id))
    bill.paid_fen, bill.status = bill.amount_fen, BillStatus.PAID
    db.session.commit()
    ann_id = _announce(db, audience=Audience.ARREARS, category="arrears", title="供热费缴费提醒", body="请尽快缴费")
    worker()
    assert _progress(db, ann_id)["sent"] == 1
    assert len(wechat.inbox(owing)) == 1 and wechat.inbox(paid) == []
    assert wechat.inbox(owing)[0]["url"].endswith("/pay")


def test_daily_quota_halts_with_a_reason_and_resumes_after_the_reset_without_resending(
        db, wechat, worker, make_resident, redis):
    people = [make_resident()[0] for _ in range(6)]
    db.session.commit()
    wechat.faults(daily_quota={"message/template/send": 3})
    ann_id = _announce(db)
    worker()
    p = _progress(db, ann_id)
    assert (p["status"], p["sent"], p["pending"]) == (S.HALTED, 3, 3)
    assert "45009" in p["status_reason"] and "自动继续" in p["status_reason"]
    # Before the reset the sweeper leaves it halted (no hot loop against WeChat).
    assert broadcast.sweep_broadcasts()["resumed"] == 0
    worker()
    assert _progress(db, ann_id)["sent"] == 3
    # Midnight in Beijing: WeChat's counters reset and our spent-quota flags expire.
    requests.post(f"{wechat.base}/clock", json={"advance": 86400}, timeout=10)
    broadcast.clear_quota_halt()
    assert broadcast.sweep_broadcasts()["resumed"] == 1
    worker()
    p = _progress(db, ann_id)
    assert (p["status"], p["sent"], p["pending"]) == (S.DONE, 6, 0)
    assert sorted(len(wechat.inbox(o)) for o in people) == [1] * 6


def test_per_minute_limit_puts_the_slice_back_for_the_next_minute(db, wechat, worker, make_resident, redis):
    people = [make_resident()[0] for _ in range(4)]
    db.session.commit()
    wechat.faults(rate_limit_per_minute=2)
    ann_id = _announce(db)
    started = time.monotonic()
    worker()
    assert time.monotonic() - started < 20  # it did not spin until the minute was over
    p = _progress(db, ann_id)
    assert (p["status"], p["sent"], p["pending"]) == (S.SENDING, 2, 2)
    registry = ScheduledJobRegistry(queue=get_queue("bulk"))
    [job_id] = registry.get_job_ids()
    when = registry.get_scheduled_time(job_id)
    assert utcnow() < when <= utcnow() + timedelta(seconds=62)
    # The next minute comes: the scheduler hands the job back.
    requests.delete(f"{wechat.base}/faults", timeout=10)
    get_queue("bulk").enqueue_job(Job.fetch(job_id, connection=redis))
    worker()
    assert _progress(db, ann_id)["sent"] == 4
    assert sorted(len(wechat.inbox(o)) for o in people) == [1] * 4


def test_busy_wechat_is_retried_and_the_recipient_gets_one_message(db, wechat, worker, make_resident):
    openid = make_resident()[0]
    db.session.commit()
    wechat.faults(busy=2, api="template/send")
    ann_id = _announce(db)
    worker()
    p = _progress(db, ann_id)
    assert (p["sent"], p["failed"]) == (1, 0)
    assert db.session.scalar(select(Delivery.attempts)) == 2
    assert len(wechat.inbox(openid)) == 1


class _ThreadWorker(SimpleWorker):
    """A real RQ worker that can run in a thread (signals belong to the main thread)."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self):
        pass


def _run_worker_in_thread(app, redis):
    def run():
        with app.app_context():
            _ThreadWorker([get_queue(q) for q in QUEUES], connection=redis).work(burst=True, with_scheduler=False)

    t = threading.Thread(target=run)
    t.start()
    return t


def test_pause_stops_between_batches_and_resume_sends_the_rest_once(
        app, db, wechat, make_resident, redis, monkeypatch, worker):
    people = [make_resident()[0] for _ in range(6)]
    db.session.commit()
    monkeypatch.setitem(app.config, "BROADCAST_BATCH", 1)
    broadcast.set_rate_per_minute(60)  # one a second, shared by every worker
    ann_id = _announce(db)
    t = _run_worker_in_thread(app, redis)
    time.sleep(2.5)
    svc.pause_announcement(ann_id)
    db.session.commit()
    t.join(timeout=30)
    p = _progress(db, ann_id)
    assert p["status"] == S.PAUSED and 0 < p["sent"] < 6 and p["pending"] == 6 - p["sent"]
    assert broadcast.sweep_broadcasts()["dispatched"] == 0  # paused stays paused
    broadcast.set_rate_per_minute(None)
    svc.resume_announcement(ann_id)
    db.session.commit()
    worker()
    p = _progress(db, ann_id)
    assert (p["status"], p["sent"]) == (S.DONE, 6)
    assert sorted(len(wechat.inbox(o)) for o in people) == [1] * 6


def test_cancel_marks_the_rest_skipped_and_sends_nothing_more(db, wechat, worker, make_resident):
    people = [make_resident()[0] for _ in range(3)]
    db.session.commit()
    ann = svc.compose_announcement(title="供热调价说明", body="……")
    svc.start_announcement(ann.id)
    svc.resolve_audience(ann)      # the audience is known (3 pending) …
    svc.cancel_announcement(ann.id)  # … and staff withdraw it before a worker got to it
    db.session.commit()
    worker()
    p = _progress(db, ann.id)
    assert (p["status"], p["sent"], p["skipped"], p["pending"]) == (S.CANCELLED, 0, 3, 0)
    assert db.session.scalar(select(func.count()).where(Delivery.reason == svc.CANCELLED_REASON)) == 3
    assert all(wechat.inbox(o) == [] for o in people)
    with pytest.raises(InvalidTransitionError):
        svc.resume_announcement(ann.id)


def test_scheduled_announcement_goes_out_at_its_time(db, wechat, worker, make_resident):
    openid = make_resident()[0]
    db.session.commit()
    now = utcnow()
    ann = svc.compose_announcement(title="停热检修预告", body="下周一全天检修", scheduled_at=now + timedelta(hours=2))
    db.session.commit()
    assert broadcast.sweep_broadcasts(now=now + timedelta(hours=1))["started"] == 0
    worker()
    assert wechat.inbox(openid) == []
    assert broadcast.sweep_broadcasts(now=now + timedelta(hours=2, seconds=1))["started"] == 1
    worker()
    assert _progress(db, ann.id)["status"] == S.DONE
    assert [card(m)["公告标题"] for m in wechat.inbox(openid)] == ["停热检修预告"]


def test_send_rate_is_shared_by_all_workers(app, redis, db):
    broadcast.set_rate_per_minute(600)  # 10 a second
    bucket_a, bucket_b = broadcast.TokenBucket(redis), broadcast.TokenBucket(redis)
    started = time.monotonic()
    for i in range(30):
        (bucket_a if i % 2 else bucket_b).acquire()
    elapsed = time.monotonic() - started
    assert 1.8 <= elapsed <= 4.0  # 30 tokens at 10/s with a 10-token burst ≈ 2 s
    assert broadcast.rate_per_minute() == 600


def test_a_failure_inside_a_chunk_keeps_what_was_sent_and_retries_only_the_rest(db, wechat, worker, make_resident):
    people = [make_resident()[0] for _ in range(8)]
    db.session.commit()
    wechat.faults(busy=1, api="template/send")  # one of the chunk's sends meets −1
    ann_id = _announce(db)
    worker()
    p = _progress(db, ann_id)
    assert (p["status"], p["sent"], p["failed"], p["pending"]) == (S.DONE, 8, 0, 0)
    assert sorted(db.session.scalars(select(Delivery.attempts))) == [0] * 7 + [1]
    assert sorted(len(wechat.inbox(o)) for o in people) == [1] * 8
    assert db.session.scalar(select(func.count()).select_from(OutboundMessage)) == 8


def test_chunks_follow_the_rate():
    assert broadcast.chunk_size(2000, 100) == 100   # 120,000 a minute: a full batch at once
    assert broadcast.chunk_size(100, 100) == 25     # 6,000 a minute: a quarter second's worth
    assert broadcast.chunk_size(5, 100) == 1        # slow broadcasts record every message
