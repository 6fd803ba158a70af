"""Broadcast announcements (公告群发): fan out to delivery rows, send them in batches, exactly once.

How a broadcast runs:
1. ``start_announcement`` (outbox handler of "broadcast.start", or the sweeper) resolves the
   audience once — one ``INSERT … SELECT`` into ``delivery`` — and splits the delivery ids
   into slices of ``BROADCAST_SLICE`` ids; each slice is a ``send_slice`` job on the ``bulk``
   queue, so several workers share a broadcast.
2. ``send_slice`` takes a lease on its slice (a Redis key with a TTL, renewed while it works),
   reads ``BROADCAST_BATCH`` pending rows at a time by id cursor, checks the announcement's
   status between batches (pause / cancel / halt stop it), takes one token per message from a
   token bucket in Redis shared by every worker (``BROADCAST_RATE_PER_MINUTE``, changeable
   at run time with ``flask jobs rate``), and sends through ``wechat.notify.send_notices`` in
   chunks (about a quarter second's worth at the current rate, at most a batch) with the key
   ``announcement:<id>:user:<uid>``; a chunk's delivery rows are written in the same commit
   as its outbound rows.
3. The sweeper (cron) starts scheduled announcements, resumes halted ones once the quota flag
   is gone, re-dispatches slices whose lease expired (a worker died) and marks finished
   broadcasts done.

At most once: the notice key is claimed in ``outbound_message`` (unique) and, with the
chunk's delivery rows, marked "sending" with its channel in one commit before WeChat is
called; the outcomes are recorded right after. A slice re-run after a crash finds finished
keys and copies their outcome to the delivery row without sending. A key left "sending" (the
worker died during the call, or WeChat did not answer in time) may have reached the person:
a template message is sent again with the same ``client_msg_id`` (WeChat drops the repeat
within 10 minutes), a customer-service or subscribe message is not — that delivery becomes
``unknown``, listed for staff on the announcement's page with a 重新发送 button
(``announcements.resend_unknown``: a new key, sent once more).

WeChat's limits (WECHAT.md §7): 45011 puts the slice back for the next minute; 45009 halts
the broadcast with a reason for staff (status ``halted``) until the daily reset; −1 and
timeouts are retried in place with a short backoff, then by RQ with longer ones; 43004/43101
are recorded as skipped with the reason.
"""
from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import replace
from datetime import timedelta

from flask import current_app
from redis.exceptions import LockError
from sqlalchemy import bindparam, func, select, update

from app.clock import local_now
from app.extensions import db
from app.models import (
    Announcement, AnnouncementStatus, Delivery, DeliveryStatus, Outage, OutageKind, OutageNotice, OutboundMessage,
    WechatUser, utcnow,
)
from app.models.messages import OutboundStatus
from app.queue import Deferred, enqueue, get_queue
from app.services import announcements as svc
from app.services import outages as outage_service
from app.services import run_settings
from wechat.notify import Notice, Outcome, TemporaryFailure, send_notices

log = logging.getLogger(__name__)
S = AnnouncementStatus
RETRY_FAILURE = "微信系统繁忙或网络超时"  # −1 and timeouts, retried MAX_ATTEMPTS times

BUCKET_KEY = "broadcast:bucket"
QUOTA_FLAG = "wechat:quota-spent:template"  # set by wechat.notify on 45009, expires at the reset
HALT_KEY = "broadcast:halt:{}"       # per announcement, expires when its quota resets
MAX_ATTEMPTS = 5                     # −1 / timeouts on one recipient before it is marked failed
IN_PLACE_BACKOFF = (0.5, 1.0, 2.0)   # seconds, before handing the slice back to RQ's backoff
CHUNK_SECONDS = 0.25                 # a chunk is about this much sending at the current rate

# Reservation-style token bucket, shared by all workers: returns how long to wait (seconds).
_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local data = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(data[1]) or burst
local ts = tonumber(data[2]) or now
local n = tonumber(ARGV[3]) or 1
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
tokens = tokens - n
local wait = 0
if tokens < 0 then wait = -tokens / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], 120)
return tostring(wait)
"""


def _cfg(name: str):
    return current_app.config[name]


def _redis():
    return current_app.extensions["redis"]


# --- rate: a run-time setting (app.services.run_settings), shared by every worker -------------------

rate_per_minute = run_settings.broadcast_rate
set_rate_per_minute = run_settings.set_broadcast_rate


class TokenBucket:
    """One token per message, refilled at the configured rate, shared through Redis."""

    def __init__(self, redis, key: str = BUCKET_KEY):
        self.redis = redis
        self.key = key
        self.script = redis.register_script(_BUCKET_LUA)
        self._rate_checked = 0.0
        self._rate = None

    def rate(self) -> float:
        if time.monotonic() - self._rate_checked > 5 or self._rate is None:
            self._rate = rate_per_minute() / 60.0
            self._rate_checked = time.monotonic()
        return self._rate

    def acquire(self, n: int = 1) -> float:
        """Take ``n`` tokens (one per message), sleeping until they are due."""
        rate = self.rate()
        burst = max(1.0, rate)  # at most one second's worth at once
        wait = float(self.script(keys=[self.key], args=[rate, burst, n]))
        if wait > 0:
            time.sleep(wait)
        return wait


# --- the notice ---------------------------------------------------------------------------------

OUTAGE_NOTICE_TYPES = {"updated": "信息变更", "started": "停热开始", "cancelled": "停热取消"}  # phrase: ≤ 5 汉字
ARREARS_ITEM = "供热费"
ARREARS_TIP = "已过缴费期限，逾期将加收滞纳金"
RESTORED_TIP = "如家中仍不热，请及时报修"


def notice_for(ann: Announcement, user_id: int) -> Notice:
    """The announcement as a notice of its kind (wechat.templates.KINDS): an arrears reminder,
    an outage notice (its change: 停热通知 / 恢复供热通知) or a plain announcement. The body is
    the text of a customer-service message; templates show the kind's short fields."""
    base = current_app.config["PUBLIC_BASE_URL"]
    key = svc.delivery_key(ann.id, user_id)
    published = ann.started_at or utcnow()
    if ann.category == "arrears":
        return Notice(key=key, kind="arrears_reminder", title=ann.title,
                      values={"item": ARREARS_ITEM, "tip": ARREARS_TIP, "reminded_at": published},
                      remark=f"{ann.body}\n在线缴费：{base}/pay", url=f"{base}/pay", mp_page="pages/bill/index")
    outage = db.session.get(Outage, ann.outage_id) if ann.category == "outage" and ann.outage_id else None
    if outage is not None:
        change = db.session.scalar(select(OutageNotice.change).where(OutageNotice.announcement_id == ann.id))
        url, page = f"{base}/outages/{outage.id}", f"pages/outage/detail?id={outage.id}"
        area = outage_service.area_text(outage)
        if change == "restored":
            return Notice(key=key, kind="outage_restored", title=ann.title,
                          values={"area": area, "restored_at": outage.actual_end_at or published, "tip": RESTORED_TIP},
                          remark=ann.body, url=url, mp_page=page)
        notice_type = OUTAGE_NOTICE_TYPES.get(change) or OutageKind.LABELS.get(outage.kind, "停热通知")
        return Notice(key=key, kind="outage_notice", title=ann.title,
                      values={"notice_type": notice_type, "area": area,
                              "period": (outage.starts_at, outage.expected_end_at), "reason": outage.reason},
                      remark=f"{ann.body}\n给您带来不便，敬请谅解。", url=url, mp_page=page)
    return Notice(key=key, kind="announcement", title=ann.title,
                  values={"title": ann.title, "summary": ann.body[:200], "published_at": published},
                  remark=ann.body if len(ann.body) > 200 else None,
                  url=f"{base}/announcements/{ann.id}", mp_page=f"pages/notice/detail?id={ann.id}")


# --- dispatch -----------------------------------------------------------------------------------

def _slice_size() -> int:
    return int(_cfg("BROADCAST_SLICE"))


def _lease_ttl() -> int:
    return int(_cfg("BROADCAST_LEASE_SECONDS"))


def _lease_key(ann_id: int, lo: int) -> str:
    return f"broadcast:lease:{ann_id}:{lo}"


def _queued_key(ann_id: int, lo: int) -> str:
    return f"broadcast:queued:{ann_id}:{lo}"


def pending_slices(ann_id: int) -> list[tuple[int, int]]:
    """(lo, hi) id ranges of this announcement's slices that still have pending rows (or rows
    left "sending" by a worker that died)."""
    size = _slice_size()
    first = db.session.scalar(select(func.min(Delivery.id)).where(Delivery.announcement_id == ann_id))
    if first is None:
        return []
    bucket = (Delivery.id - first) // size
    rows = db.session.execute(
        select(bucket).where(Delivery.announcement_id == ann_id, Delivery.status.in_(DeliveryStatus.OPEN))
        .group_by(bucket).order_by(bucket)).scalars()
    return [(first + int(b) * size, first + (int(b) + 1) * size) for b in rows]


def dispatch(ann_id: int, *, at=None) -> int:
    """Enqueue a ``send_slice`` job for each slice with pending rows that nobody holds."""
    redis = _redis()
    queued = 0
    for lo, hi in pending_slices(ann_id):
        if redis.exists(_lease_key(ann_id, lo)):
            continue  # a live worker holds it
        if not redis.set(_queued_key(ann_id, lo), 1, nx=True, ex=_queued_ttl()):
            continue  # already waiting in the queue
        _enqueue_slice(ann_id, lo, hi, at=at)
        queued += 1
    return queued


def start_announcement(payload: dict, outbox_id: int | None = None) -> None:
    """Outbox handler of "broadcast.start": resolve the audience once, then dispatch."""
    ann_id = payload["announcement_id"]
    ann = db.session.get(Announcement, ann_id)
    if ann is None or ann.status != S.SENDING:
        return
    created = svc.resolve_audience(ann)
    db.session.commit()
    if created:
        log.info("announcement %s: %d recipient(s)", ann_id, created)
    if svc.finish_if_done(ann_id):
        db.session.commit()
        return
    dispatch(ann_id)


# --- sending ------------------------------------------------------------------------------------

class _Lease:
    """A slice's lease: redis-py's Lock under the lease key (a random token; renewal and
    release check it atomically), renewed every quarter of its TTL while the slice is sent."""

    def __init__(self, redis, key: str, ttl: int):
        self.lock = redis.lock(key, timeout=ttl, thread_local=False)
        self.ttl = ttl
        self.renewed = 0.0

    def take(self) -> bool:
        ok = self.lock.acquire(blocking=False)
        self.renewed = time.monotonic()
        return ok

    def renew(self, force: bool = False) -> None:
        if not force and time.monotonic() - self.renewed < self.ttl / 4:
            return
        try:
            self.lock.reacquire()
        except LockError as exc:
            raise RuntimeError("broadcast slice lease lost") from exc  # another worker took over: stop
        self.renewed = time.monotonic()

    def release(self) -> None:
        try:
            self.lock.release()
        except LockError:
            pass  # expired (or another worker's now): nothing of ours to release


def _row_values(delivery_id: int, outcome, now) -> dict:
    return {"id": delivery_id, "status": outcome.status, "channel": outcome.channel, "errcode": outcome.errcode,
            "reason": (outcome.reason or None) and outcome.reason[:200], "wechat_msgid": outcome.msgid,
            "sent_at": now if outcome.status == DeliveryStatus.SENT else None}


def send_slice(ann_id: int, lo: int, hi: int) -> str:
    """Send the pending deliveries of one announcement with ids in [lo, hi)."""
    redis = _redis()
    lease = _Lease(redis, _lease_key(ann_id, lo), _lease_ttl())
    if not lease.take():
        redis.delete(_queued_key(ann_id, lo))
        return "busy"
    redis.delete(_queued_key(ann_id, lo))
    try:
        return _send_slice(ann_id, lo, hi, lease)
    finally:
        db.session.rollback()
        lease.release()


def chunk_size(rate_per_second: float, batch: int) -> int:
    """Messages sent (and recorded) together: about a quarter second's worth at the current
    rate, at most a batch — so a slow broadcast still records its progress often, and a crash
    loses at most that many outcomes (a re-run sends them again only where WeChat did not keep
    the client_msg_id)."""
    return max(1, min(batch, int(rate_per_second * CHUNK_SECONDS)))


def _send_slice(ann_id: int, lo: int, hi: int, lease: _Lease) -> str:
    bucket = TokenBucket(_redis())
    batch = int(_cfg("BROADCAST_BATCH"))
    cursor = lo
    sent = 0
    backoff = iter(IN_PLACE_BACKOFF)  # in-place retries left after −1 / timeouts in a row
    while True:
        db.session.expire_all()
        ann = db.session.get(Announcement, ann_id)
        if ann is None or ann.status != S.SENDING:
            return f"stopped: {ann.status if ann else 'missing'}"
        template = notice_for(ann, 0)  # the same text for everyone; only the key differs
        rows = db.session.execute(
            select(Delivery.id, Delivery.wechat_user_id, Delivery.attempts, Delivery.resends)
            .where(Delivery.announcement_id == ann_id, Delivery.status.in_(DeliveryStatus.OPEN),
                   Delivery.id >= cursor, Delivery.id < hi)
            .order_by(Delivery.id).limit(batch)).all()
        if not rows:
            break
        users = {u.id: u for u in db.session.scalars(
            select(WechatUser).where(WechatUser.id.in_([r.wechat_user_id for r in rows])))}
        step = chunk_size(bucket.rate(), batch)
        retry = False
        for start in range(0, len(rows), step):
            lease.renew()
            chunk = rows[start:start + step]
            try:
                outcomes = _send_chunk(bucket, ann_id, template, chunk, users)
            except TemporaryFailure as exc:
                # What went out is recorded; the ones WeChat did not take count an attempt.
                sent += sum(o is not None and o.status == DeliveryStatus.SENT for o in exc.outcomes)
                _count_attempts(ann_id, chunk, exc)
                pause = next(backoff, None)
                if pause is None:
                    raise  # RQ retries the slice with its longer backoff
                time.sleep(pause * (1 + random.random() / 2))
                lease.renew(force=True)
                retry = True
                break
            except Deferred as exc:
                return _deferred(ann_id, lo, hi, exc)
            backoff = iter(IN_PLACE_BACKOFF)
            cursor = chunk[-1].id + 1
            sent += sum(o is not None and o.status == DeliveryStatus.SENT for o in outcomes)
            bad = next((o for o in outcomes if o is not None and o.config_problem), None)
            if bad is not None:
                # The kind's template is wrong (40037, 47003, …, or values it cannot take): every
                # recipient would fail alike. Pause with the reason for staff; the rest stay
                # pending and go out once the template is fixed and staff resume.
                log.error("announcement %s paused: %s", ann_id, bad.reason)
                svc.stop_for_error(ann_id, f"{bad.reason or bad.errcode}。请检查模板配置后继续发送")
                db.session.commit()
                return "stopped: configuration error"
        del users  # the session's identity map holds rows weakly: memory stays flat
        if not retry:
            lease.renew(force=True)
    if svc.finish_if_done(ann_id):
        db.session.commit()
        log.info("announcement %s: done", ann_id)
    return f"slice done ({sent} sent)"


def _send_chunk(bucket: TokenBucket, ann_id: int, template: Notice, chunk, users) -> list[Outcome]:
    """Send one chunk through ``send_notices``; its delivery rows are marked "sending" in the
    same commit as the outbound rows before the calls, and get their outcome in the same
    commit after. A key finished before a crash comes back as a duplicate: nothing is sent
    again; one cut off during the call comes back resent by client_msg_id, or unknown."""
    outcomes: list[Outcome | None] = [None] * len(chunk)
    pairs, where = [], []
    for i, row in enumerate(chunk):
        user = users.get(row.wechat_user_id)
        if user is None:
            outcomes[i] = Outcome("skipped", None, None, "用户不存在")
            continue
        pairs.append((user, replace(template, key=svc.delivery_key(ann_id, row.wechat_user_id, row.resends))))
        where.append(i)
    table = Delivery.__table__

    def on_sending(marks):
        db.session.execute(update(table).where(table.c.id == bindparam("_id")).values(
            status=DeliveryStatus.SENDING, channel=bindparam("_channel")),
            [{"_id": chunk[where[i]].id, "_channel": channel} for i, channel in marks])

    def record(results, held=()):
        for i, outcome in zip(where, results):
            outcomes[i] = outcome
        now = utcnow()
        values = [_row_values(row.id, o, now) for row, o in zip(chunk, outcomes) if o is not None]
        if values:
            db.session.execute(update(Delivery), values)
        # Not sent now: pending again — unless a template message may have gone out (it stays
        # "sending" and is repeated with its client_msg_id), or staff withdrew it meanwhile.
        back = [{"_id": chunk[where[i]].id} for i, o in enumerate(results) if o is None and i not in held]
        if back:
            db.session.execute(update(table).where(table.c.id == bindparam("_id"),
                                                   table.c.status == DeliveryStatus.SENDING)
                               .values(status=DeliveryStatus.PENDING, channel=None), back)

    if pairs:
        bucket.acquire(len(pairs))
        try:
            send_notices(pairs, record=record, on_sending=on_sending)
        except (TemporaryFailure, Deferred) as exc:
            exc.outcomes = outcomes
            exc.failed = [where[i] for i in exc.failed]
            exc.held = {where[i] for i in getattr(exc, "held", ())}
            raise
    else:
        record([])
        db.session.commit()
    return outcomes


def _count_attempts(ann_id: int, chunk, exc: TemporaryFailure) -> None:
    """One more attempt for each recipient WeChat failed on; after MAX_ATTEMPTS it is failed —
    or unknown, where an earlier template send of it was cut off (it may have arrived)."""
    now = utcnow()
    held = getattr(exc, "held", set())
    for i in exc.failed:
        row = chunk[i]
        attempts = row.attempts + 1
        values = {"attempts": attempts}
        if attempts >= MAX_ATTEMPTS:
            if i in held:
                outcome = Outcome(DeliveryStatus.UNKNOWN, "template", None,
                                  f"多次重试仍失败（{RETRY_FAILURE}），之前的发送结果未知")
                db.session.execute(update(OutboundMessage).where(
                    OutboundMessage.dedupe_key == svc.delivery_key(ann_id, row.wechat_user_id, row.resends),
                    OutboundMessage.status == OutboundStatus.SENDING)
                    .values(status=OutboundStatus.UNKNOWN, errmsg=outcome.reason))
            else:
                outcome = Outcome("failed", None, -1, f"多次重试仍失败（{RETRY_FAILURE}）")
            values.update(_row_values(row.id, outcome, now))
            values.pop("id")
        db.session.execute(update(Delivery).where(Delivery.id == row.id).values(**values))
    db.session.commit()


def _deferred(ann_id: int, lo: int, hi: int, exc: Deferred) -> str:
    now = utcnow()
    if exc.until - now > timedelta(minutes=5):
        # 45009: the day's quota is spent. Halt the whole broadcast; the pending rows are the
        # cursor, and the sweeper resumes it after the reset.
        local = local_now(exc.until).strftime("%m月%d日 %H:%M")
        reason = f"今日微信消息额度已用完（45009），已暂停发送，将于{local}后自动继续"
        _redis().set(HALT_KEY.format(ann_id), exc.reason, exat=int(exc.until.timestamp()))
        if svc.halt_announcement(ann_id, reason):
            log.warning("announcement %s halted: %s", ann_id, exc.reason)
        db.session.commit()
        return "halted"
    # 45011: this minute's limit; the slice goes back for the next minute (no hot loop).
    dispatch_one(ann_id, lo, hi, at=exc.until)
    return "deferred"


def dispatch_one(ann_id: int, lo: int, hi: int, *, at=None) -> None:
    _redis().set(_queued_key(ann_id, lo), 1, ex=_queued_ttl())
    _enqueue_slice(ann_id, lo, hi, at=at)


def _enqueue_slice(ann_id: int, lo: int, hi: int, *, at=None) -> None:
    """One ``send_slice`` job on the bulk queue, now or at ``at``."""
    job_id = f"broadcast-{ann_id}-{lo}-{uuid.uuid4().hex[:8]}"
    if at is not None:
        get_queue("bulk").enqueue_at(at, "jobs.broadcast.send_slice", ann_id, lo, hi, job_id=job_id, job_timeout=3600)
    else:
        enqueue("jobs.broadcast.send_slice", ann_id, lo, hi, queue="bulk", job_id=job_id, timeout=3600)


def _queued_ttl() -> int:
    return int(current_app.config["BROADCAST_QUEUED_TTL"])


# --- the sweeper (cron) --------------------------------------------------------------------------

def sweep_broadcasts(now=None) -> dict:
    """Start due scheduled announcements, resume halted ones after the reset, re-dispatch
    slices left by dead workers, and mark finished broadcasts done."""
    now = now or utcnow()
    redis = _redis()
    started = resumed = redispatched = 0
    due = db.session.scalars(select(Announcement.id).where(Announcement.status == S.SCHEDULED,
                                                           Announcement.scheduled_at <= now)).all()
    for ann_id in due:
        svc.start_announcement(ann_id)
        db.session.commit()
        started += 1
    if not redis.exists(QUOTA_FLAG):
        for ann_id in db.session.scalars(select(Announcement.id).where(Announcement.status == S.HALTED)).all():
            if redis.exists(HALT_KEY.format(ann_id)):
                continue
            svc.resume_announcement(ann_id)
            db.session.commit()
            resumed += 1
    for ann in db.session.scalars(select(Announcement).where(Announcement.status == S.SENDING)).all():
        if ann.started_at is None:
            continue  # its start is still in the outbox
        if svc.finish_if_done(ann.id, now=now):
            db.session.commit()
            continue
        redispatched += dispatch(ann.id)
    return {"started": started, "resumed": resumed, "dispatched": redispatched}


def clear_quota_halt() -> int:
    """Forget the spent-quota flags (after WeChat's reset, or after ``clear_quota``), so the
    sweeper resumes halted broadcasts at its next run. Returns how many keys were removed."""
    redis = _redis()
    keys = list(redis.scan_iter("wechat:quota-spent:*")) + list(redis.scan_iter("broadcast:halt:*"))
    return redis.delete(*keys) if keys else 0
