"""The one chain every notice goes through: plan, claim, choose the channels, mark "sending",
call WeChat, record — for one notice (``send_notice``) as for a broadcast's batch
(``send_notices``); ``send_notice`` is the batch of one.

The database is paid once per batch, not per message: one ``INSERT … ON CONFLICT DO NOTHING
RETURNING`` claims every key and takes the subscribe consents it will use, the channels are
chosen in memory (open 48-hour windows and spent quotas in one Redis round trip), every item
is marked "sending" with its channel in that same commit, before any call; the messages go out
over the clients' keep-alive sessions, a few at a time (``WECHAT_SEND_CONCURRENCY`` requests in
flight); a channel that turns someone away (43101, 45015, 45047) sends them through the next
one in another round, marked again first; every outcome is stored in one commit.
"""
from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime

from flask import current_app
from wechatpy.exceptions import WeChatClientException

from app.extensions import db
from app.models import WechatUser, utcnow
from app.queue import Deferred
from wechat import templates
from wechat.notify import channels, records
from wechat.notify.channels import Notice, Plan, window_key
from wechat.notify.transport import APIS, REASONS, Outcome, TemporaryFailure, Transport, quota_key, thread_pool


def deliver(p: Plan, transport: Transport, stop: threading.Event) -> None:
    """One call through ``p``'s current channel; what came of it lands on ``p``. No database:
    runs in the batch's threads."""
    p.next_round = False
    if stop.is_set():
        return  # an earlier item stopped the batch: this one is not sent now
    channel = p.channel
    n = p.notice
    try:
        transport.ready(channel)
        if channel == "subscribe":
            result = transport.subscribe(p.mp_openid, n, p.subscribe_template, p.data["subscribe"])
        elif channel == "custom":
            result = transport.custom(p.oa_openid, n)
        else:
            result = transport.template(p.oa_openid, n, p.template_id, p.data["template"])
    except (TemporaryFailure, Deferred, WeChatClientException) as exc:
        p.error = exc
        if getattr(exc, "maybe_sent", False):
            p.maybe_sent = True
            if channel != "template":  # may have arrived; no key WeChat dedupes: never again
                p.outcome = records.unanswered_outcome(channel)
        stop.set()
        return
    except Exception as exc:  # an error we do not classify: stop, and assume the worst
        p.error, p.maybe_sent = exc, True
        if channel != "template":
            p.outcome = records.unanswered_outcome(channel, classified=False)
        stop.set()
        return
    if channels.take_answer(p, result):
        stop.set()  # the kind's template is wrong for everyone: the rest stay pending


def send_notices(batch: list[tuple[WechatUser, Notice]], *, now: datetime | None = None,
                 record=None, on_sending=None, concurrency: int | None = None,
                 keep_notice: bool = False) -> list[Outcome]:
    """Send each (user, notice) pair through the best channel, at most once per ``notice.key``.

    Returns one ``Outcome`` per pair (``duplicate`` where the key was handled before). Two
    commits per batch: the claim (with the consents it takes, and every item marked "sending"
    with its channel) before anything is sent, every outcome after — plus one more, marking
    again, for each round of people a channel turned away. ``on_sending([(index, channel)])``
    runs in those marking transactions and ``record(outcomes, held)`` in the last one, so the
    caller's own rows (delivery status) are stored in the same commits. ``held`` holds the
    indexes without an outcome that stay "sending": a template message may have gone out,
    and is repeated only with its client_msg_id. ``keep_notice`` keeps each notice on its
    outbound row (``records.claim``).

    A configuration problem of the kind's template (WeChat's 40037/47003/41030/48001 on the
    last channel an item could use, or values the template cannot take) also stops the batch:
    that item is failed with the reason, the items not started are ``None`` and stay pending,
    and the outcomes are returned (no exception) — the same template would fail them all.

    When WeChat answers −1 / times out (``TemporaryFailure``) or limits us (``Deferred``) for
    an item, no further item is started; what was sent is recorded (``None`` for the items
    without an outcome), then that exception is raised with ``exc.outcomes`` (the list),
    ``exc.failed`` (the indexes without an outcome that hit it) and ``exc.held``. Unsent items
    go back to pending, so a later batch sends them. A customer-service or subscribe message
    whose call got no answer is ``unknown`` — it may have arrived, and is not sent again.
    """
    if not batch:
        return []
    now = now or utcnow()
    cfg = current_app.config
    redis = current_app.extensions["redis"]
    plans, repeats = channels.plan(batch, now)
    users = {user.id: user for user, _ in batch}

    # 1. Open windows and spent quotas in one Redis round trip.
    closed = [p for p in plans if p.oa_openid and not p.window_open]
    pipe = redis.pipeline(transaction=False)
    for p in closed:
        pipe.exists(window_key(p.oa_openid))
    for api in APIS:
        pipe.exists(quota_key(api))
    answers = pipe.execute()
    for p, is_open in zip(closed, answers):
        p.window_open = bool(is_open)
    spent = {api for api, flag in zip(APIS, answers[len(closed):]) if flag}

    # 2. Claim the keys, take the consents, choose the channels and mark every item
    #    "sending": one commit, before anything is sent.
    records.claim(plans, now, keep_notice=keep_notice)
    todo = [p for p in plans if p.outcome is None]
    registry = templates.registry()
    records.take_consents(todo, registry)
    rendered: dict = {}
    for p in todo:
        p.chain = channels.choose(p, registry, rendered)
        if not p.chain and p.outcome is None:
            p.outcome = p.failure or Outcome("skipped", None, None, REASONS["no_channel"])
    stop = threading.Event()
    broken = next((p for p in todo if p.outcome is not None and p.outcome.config_problem), None)
    if broken is not None:
        # The values cannot fill the kind's template: one item says so, the rest of the batch
        # is not sent and stays pending (a broadcast pauses on it until the template is fixed).
        stop.set()
        for p in todo:
            if p is not broken and p.outcome is not None and p.outcome.config_problem:
                p.outcome = None
    calls = [p for p in todo if p.chain and not stop.is_set()]
    records.mark_sending(calls, now, on_sending, repeats)
    db.session.commit()

    # 3. Send: a few requests in flight over keep-alive sessions; the first error stops the
    #    rest. People a channel turned away go through the next one, marked again first.
    size = max(1, int(concurrency or cfg.get("WECHAT_SEND_CONCURRENCY", 4)))
    transport = Transport(redis, cfg, spent, size)
    group = calls
    while group:
        if size == 1 or len(group) == 1:
            for p in group:
                deliver(p, transport, stop)
        else:
            list(thread_pool(size).map(lambda p: deliver(p, transport, stop), group))
        group = [p for p in group if p.next_round and not stop.is_set()]
        if group:
            records.mark_sending(group, utcnow(), on_sending, repeats)
            db.session.commit()

    # 4. Record everything in one commit.
    failed = [p for p in todo if p.error is not None]
    records.finish(todo, users, redis)
    for p, first in repeats:
        p.outcome = first.outcome and replace(first.outcome, duplicate=True)
    outcomes = [None] * len(batch)
    for p in [*plans, *(r for r, _ in repeats)]:
        outcomes[p.index] = p.outcome
    held = {p.index for p in todo if p.held}
    held |= {r.index for r, f in repeats if f.index in held}
    if record is not None:
        record(outcomes, held)
    db.session.commit()
    records.report_problems(redis, todo, registry, now)
    if failed:
        # Deferred outranks a temporary failure (it says when to come back).
        exc = next((p.error for p in failed if isinstance(p.error, Deferred)), failed[0].error)
        exc.outcomes = outcomes
        exc.failed = [p.index for p in failed if p.outcome is None]
        exc.held = held
        raise exc
    return outcomes


def send_notice(user: WechatUser, notice: Notice, *, now: datetime | None = None) -> Outcome:
    """``send_notices`` for one person: the same chain, with the notice kept on its row (a
    recovery or a staff resend sends the same text).

    Commits its own bookkeeping (the outbound row) — call it from a job, not inside a
    request's transaction. Raises ``TemporaryFailure`` (retry with backoff) or ``Deferred``
    (retry at ``until``); everything else ends in an ``Outcome`` recorded with its errcode —
    ``unknown`` when a customer-service or subscribe message got no answer (it may have
    arrived).
    """
    try:
        [outcome] = send_notices([(user, notice)], now=now, keep_notice=True)
    except (TemporaryFailure, Deferred, WeChatClientException) as exc:
        outcomes = getattr(exc, "outcomes", None)
        if outcomes and outcomes[0] is not None:
            return outcomes[0]  # unknown: settled, nothing to retry
        raise
    return outcome
