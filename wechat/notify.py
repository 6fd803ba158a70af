"""One way to reach a person: pick the channel WeChat allows, send once, record the outcome.

Channels, in order of preference (WECHAT.md §3, §7):
1. mini-program subscribe message — where the user gave a one-time consent for the template;
2. customer-service message — inside 48 hours of the user's last message to us (it spends
   no template quota, which broadcasts need); 45015/45047 fall through to
3. official-account template message — to followers.

Errors are classified as WeChat documents them: −1 and timeouts are retried by the caller
(RQ backoff); 45011 waits for the next minute and 45009 until the daily reset (``Deferred``,
never a hot loop); 43004/43101/45015 end that channel for this user with the reason; 40037,
47003, 41030 and 48001 are configuration errors recorded as failed. A notification has a
unique key: it is sent at most once (template messages also carry ``client_msg_id`` so
WeChat itself drops a repeat within 10 minutes).
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import requests
from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from wechatpy.exceptions import WeChatClientException

from app.extensions import db
from app.models import OutboundMessage, SubscribeConsent, WechatUser, utcnow
from app.queue import Deferred
from wechat import client as wechat_client

log = logging.getLogger(__name__)

BEIJING = ZoneInfo("Asia/Shanghai")
CUSTOM_WINDOW = timedelta(hours=48)
RETRYABLE = (-1,)
NOT_FOLLOWING, NO_CONSENT, WINDOW_CLOSED, OUT_OF_COUNT = 43004, 43101, 45015, 45047
MINUTE_LIMIT, DAILY_QUOTA = 45011, 45009
CONFIG_ERRORS = (40037, 47003, 41030, 48001, 40003)
# This channel is closed for this user now; the next channel may still reach them.
CHANNEL_CLOSED = (WINDOW_CLOSED, OUT_OF_COUNT)

REASONS = {
    NOT_FOLLOWING: "用户未关注公众号",
    NO_CONSENT: "用户未授权订阅消息",
    WINDOW_CLOSED: "超出48小时客服消息窗口",
    OUT_OF_COUNT: "客服消息条数已达上限",
    "no_channel": "用户未关注公众号、无订阅授权且不在48小时互动窗口内",
}


class TemporaryFailure(RuntimeError):
    """−1, timeouts, HTTP errors: the caller retries with backoff."""


@dataclass
class Notice:
    """What to tell a person, independent of the channel that carries it."""

    key: str                                  # unique per notification and recipient
    kind: str                                 # task | ticket | outage | bill | notice
    title: str                                # first line, e.g. "您有新的维修任务"
    fields: list[tuple[str, str]] = field(default_factory=list)  # (label, value) rows
    remark: str | None = None
    url: str | None = None                    # H5 link
    mp_page: str | None = None                # mini-program page path

    def as_text(self) -> str:
        lines = [self.title] + [f"{k}：{v}" for k, v in self.fields]
        if self.remark:
            lines.append(self.remark)
        if self.url:
            lines.append(f'<a href="{self.url}">查看详情</a>')
        return "\n".join(lines)

    def template_data(self) -> dict:
        data = {"first": {"value": self.title}}
        for i, (label, value) in enumerate(self.fields[:5], start=1):
            data[f"keyword{i}"] = {"value": f"{value}"[:200]}
        data["remark"] = {"value": self.remark or ""}
        return data

    def subscribe_data(self) -> dict:
        # Subscribe templates take short typed fields: thing ≤ 20 characters each.
        data = {"thing1": {"value": self.title[:20]}}
        for i, (label, value) in enumerate(self.fields[:4], start=2):
            data[f"thing{i}"] = {"value": f"{value}"[:20]}
        return data


@dataclass
class Outcome:
    status: str                 # sent | skipped | failed
    channel: str | None = None
    errcode: int | None = None
    reason: str | None = None
    msgid: str | None = None
    duplicate: bool = False     # this key was handled before; nothing was sent now


def window_key(openid: str) -> str:
    """Redis key that exists while the user's 48-hour customer-service window is open
    (set by the callback on every message, expiring with the window)."""
    return f"wechat:window:{openid}"


def _quota_key(api: str) -> str:
    return f"wechat:quota-spent:{api}"


def next_beijing_midnight(now: datetime | None = None) -> datetime:
    local = (now or utcnow()).astimezone(BEIJING)
    return (local + timedelta(days=1)).replace(hour=0, minute=0, second=5, microsecond=0).astimezone(ZoneInfo("UTC"))


def _next_minute(now: datetime | None = None) -> datetime:
    now = now or utcnow()
    return now.replace(second=1, microsecond=0) + timedelta(minutes=1)


def _claim(user: WechatUser, notice: Notice) -> OutboundMessage | Outcome:
    """Insert the outbound row for this key, or report what became of it earlier."""
    row = OutboundMessage(dedupe_key=notice.key, wechat_user_id=user.id, status="pending",
                          payload={"kind": notice.kind, "title": notice.title})
    db.session.add(row)
    try:
        db.session.commit()
        return row
    except IntegrityError:
        db.session.rollback()
    row = db.session.scalar(select(OutboundMessage).where(OutboundMessage.dedupe_key == notice.key))
    if row.status in ("sent", "skipped", "failed"):
        return Outcome(row.status, row.channel, row.errcode, row.errmsg, duplicate=True)
    return row  # pending from an attempt that did not finish: try again


def _finish(row: OutboundMessage, outcome: Outcome, openid: str | None) -> Outcome:
    row.status, row.channel, row.errcode = outcome.status, outcome.channel, outcome.errcode
    row.errmsg, row.openid = outcome.reason, openid
    row.attempts += 1
    if outcome.status == "sent":
        row.sent_at = utcnow()
        row.wechat_msgid = outcome.msgid
        early = outcome.msgid and current_app.extensions["redis"].getdel(f"wechat:template-finish:{outcome.msgid}")
        if early:  # TEMPLATESENDJOBFINISH arrived before this bookkeeping
            record_template_result(row, early.decode())
    db.session.commit()
    return outcome


def record_template_result(row: OutboundMessage, status: str) -> None:
    """WeChat's TEMPLATESENDJOBFINISH verdict on a template message we sent."""
    row.delivered = status[:40]
    if status != "success":
        row.status, row.errmsg = "failed", f"TEMPLATESENDJOBFINISH: {status}"[:300]


def _call(api: str, fn, *, redis=None, check_quota: bool = True):
    """Run one WeChat call; translate its failure into our classification."""
    redis = redis or current_app.extensions["redis"]
    if check_quota and redis.exists(_quota_key(api)):
        raise Deferred(next_beijing_midnight(), f"{api} 今日调用额度已用完 (45009)")
    try:
        return fn()
    except WeChatClientException as exc:
        code = exc.errcode
        if code is None or code in RETRYABLE:
            raise TemporaryFailure(f"微信接口暂时不可用 ({code}): {exc.errmsg}") from exc
        if code == MINUTE_LIMIT:
            raise Deferred(_next_minute(), f"{api} 触发每分钟频率限制 (45011)") from exc
        if code == DAILY_QUOTA:
            until = next_beijing_midnight()
            redis.set(_quota_key(api), 1, exat=int(until.timestamp()))
            raise Deferred(until, f"{api} 今日调用额度已用完 (45009)") from exc
        raise
    except requests.RequestException as exc:
        raise TemporaryFailure(f"调用微信接口超时或网络错误: {type(exc).__name__}") from exc


def _consume_consent(user: WechatUser, template_id: str) -> bool:
    res = db.session.execute(
        update(SubscribeConsent)
        .where(SubscribeConsent.wechat_user_id == user.id, SubscribeConsent.template_id == template_id,
               SubscribeConsent.remaining > 0)
        .values(remaining=SubscribeConsent.remaining - 1))
    db.session.commit()
    return res.rowcount == 1


def _try_subscribe(user: WechatUser, notice: Notice, now: datetime) -> Outcome | None:
    template_id = current_app.config["MINIAPP_TEMPLATES"].get(notice.kind)
    if not (template_id and user.mp_openid and _consume_consent(user, template_id)):
        return None
    mp = wechat_client.mini_program()
    try:
        _call("subscribe", lambda: mp.wxa.send_subscribe_message(
            user.mp_openid, template_id, notice.subscribe_data(), page=notice.mp_page))
    except (TemporaryFailure, Deferred):
        # Not sent: give the consent back for the retry.
        db.session.rollback()
        db.session.execute(update(SubscribeConsent).where(
            SubscribeConsent.wechat_user_id == user.id, SubscribeConsent.template_id == template_id)
            .values(remaining=SubscribeConsent.remaining + 1))
        db.session.commit()
        raise
    except WeChatClientException as exc:
        if exc.errcode == NO_CONSENT:
            db.session.execute(update(SubscribeConsent).where(
                SubscribeConsent.wechat_user_id == user.id, SubscribeConsent.template_id == template_id)
                .values(remaining=0))
            db.session.commit()
            return None  # WeChat says no consent after all: try the next channel
        if exc.errcode in CONFIG_ERRORS:
            return Outcome("failed", "subscribe", exc.errcode, f"订阅消息配置错误: {exc.errmsg}")
        raise
    return Outcome("sent", "subscribe")


def _try_template(user: WechatUser, notice: Notice, now: datetime) -> Outcome | None:
    template_id = current_app.config["WECHAT_TEMPLATES"].get(notice.kind)
    if not (template_id and user.oa_openid and user.subscribed):
        return None
    body = {
        "touser": user.oa_openid, "template_id": template_id, "data": notice.template_data(),
        "client_msg_id": hashlib.sha1(notice.key.encode()).hexdigest()[:32],
    }
    if notice.url:
        body["url"] = notice.url
    if notice.mp_page:
        body["miniprogram"] = {"appid": current_app.config["MINIAPP_APPID"], "pagepath": notice.mp_page}
    oa = wechat_client.official_account()
    try:
        result = _call("template", lambda: oa.post("message/template/send", data=body))
    except WeChatClientException as exc:
        if exc.errcode == NOT_FOLLOWING:
            user.subscribed = False
            db.session.commit()
            return Outcome("skipped", "template", NOT_FOLLOWING, REASONS[NOT_FOLLOWING])
        if exc.errcode in CONFIG_ERRORS:
            return Outcome("failed", "template", exc.errcode, f"模板消息配置错误: {exc.errmsg}")
        raise
    return Outcome("sent", "template", msgid=str(result.get("msgid", "")) or None)


def _try_custom(user: WechatUser, notice: Notice, now: datetime) -> Outcome | None:
    if not user.oa_openid:
        return None
    recent = user.last_interaction_at and now - user.last_interaction_at < CUSTOM_WINDOW
    if not (recent or current_app.extensions["redis"].exists(window_key(user.oa_openid))):
        return None
    oa = wechat_client.official_account()
    try:
        _call("custom", lambda: oa.message.send_text(user.oa_openid, notice.as_text()))
    except WeChatClientException as exc:
        if exc.errcode in (WINDOW_CLOSED, OUT_OF_COUNT, NOT_FOLLOWING):
            return Outcome("skipped", "custom", exc.errcode, REASONS[exc.errcode])
        if exc.errcode in CONFIG_ERRORS:
            return Outcome("failed", "custom", exc.errcode, f"客服消息发送失败: {exc.errmsg}")
        raise
    return Outcome("sent", "custom")


def send_notice(user: WechatUser, notice: Notice, *, now: datetime | None = None) -> Outcome:
    """Send ``notice`` to ``user`` through the best channel, at most once per ``notice.key``.

    Commits its own bookkeeping (the outbound row) — call it from a job, not inside a
    request's transaction. Raises ``TemporaryFailure`` (retry with backoff) or ``Deferred``
    (retry at ``until``); everything else ends in an ``Outcome`` recorded with its errcode.
    """
    now = now or utcnow()
    claimed = _claim(user, notice)
    if isinstance(claimed, Outcome):
        return claimed
    row = claimed
    try:
        outcome = None
        for attempt in (_try_subscribe, _try_custom, _try_template):
            result = attempt(user, notice, now)
            if result is None:
                continue
            outcome = result
            if result.status == "sent" or result.errcode not in CHANNEL_CLOSED:
                break  # sent, or a failure that another channel would not fix
        outcome = outcome or Outcome("skipped", None, None, REASONS["no_channel"])
    except (TemporaryFailure, Deferred) as exc:
        db.session.rollback()
        row = db.session.get(OutboundMessage, row.id)
        row.attempts += 1
        row.errmsg = str(exc)[:300]
        db.session.commit()
        raise
    return _finish(row, outcome, user.oa_openid or user.mp_openid)


# --- the batch path -----------------------------------------------------------------------------
#
# ``send_notices`` keeps every rule of ``send_notice`` — at most once per key, the same channel
# order and error classification, client_msg_id on template messages — but pays the database
# once per batch instead of three or four times per message: one ``INSERT … ON CONFLICT DO
# NOTHING RETURNING`` claims every key (and takes the subscribe consents it will use) in one
# commit, the channels are chosen in memory (consents in one query, open 48-hour windows in one
# Redis round trip), the messages go out over the clients' keep-alive sessions, a few at a time
# (``WECHAT_SEND_CONCURRENCY`` requests in flight), and every outcome is stored in one commit.

@dataclass
class _Plan:
    """One batch item, with what the channels need read up front (no ORM access later)."""

    index: int
    key: str
    notice: Notice
    user_id: int
    oa_openid: str | None
    mp_openid: str | None
    subscribed: bool
    window_open: bool
    row_id: int | None = None
    attempts: int = 0
    subscribe_template: str | None = None   # a consent was taken for this template
    outcome: Outcome | None = None
    error: Exception | None = None
    consent_lost: bool = False              # WeChat said 43101: our consent record was wrong
    unfollowed: bool = False                # WeChat said 43004 to a template message


class _Sender:
    """The HTTP side of one batch: no database, safe to run in threads."""

    def __init__(self, redis, config, spent: set[str], size: int):
        self.redis, self.config, self.spent = redis, config, spent
        self.oa = wechat_client.official_account()
        self.mp = wechat_client.mini_program()
        self.wx_templates = config["WECHAT_TEMPLATES"]
        self.mp_appid = config["MINIAPP_APPID"]
        self.timeout = float(config.get("WECHAT_TIMEOUT", 5.0))
        self.size = size
        self._token = None

    def _post_template(self, body: dict) -> dict:
        """POST message/template/send on a keep-alive connection, without requests' per-call
        work (environment proxies, hooks): about a third of the CPU of ``oa.post``. The token
        is read once per batch; a token error goes the regular way (``oa.post`` refreshes once
        and retries once), as does anything this lean path does not handle."""
        import json as _json
        from urllib.parse import quote

        import urllib3

        if self._token is None:
            self._token = self.oa.access_token
        url = f"{self.oa.API_BASE_URL}message/template/send?access_token={quote(self._token)}"
        try:
            res = _http_pool(url, self.size).request(
                "POST", url, body=_json.dumps(body, ensure_ascii=False).encode(),
                headers={"Content-Type": "application/json"}, retries=False,
                timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout))
        except urllib3.exceptions.HTTPError as exc:
            raise requests.ConnectionError(f"{type(exc).__name__}: {exc}") from exc
        if res.status >= 400:
            raise requests.HTTPError(f"HTTP {res.status}")
        result = _json.loads(res.data.decode("utf-8", "ignore"), strict=False)
        code = int(result.get("errcode") or 0)
        if code in wechat_client.TOKEN_ERRORS:
            self._token = None
            return self.oa.post("message/template/send", data=body)
        if code:
            raise WeChatClientException(code, result.get("errmsg"), client=self.oa)
        return result

    def call(self, api: str, fn):
        if api in self.spent:  # known spent at the start of the batch, or by an earlier item
            raise Deferred(next_beijing_midnight(), f"{api} 今日调用额度已用完 (45009)")
        try:
            # The spent-quota flags were read for the whole batch at its start.
            return _call(api, fn, redis=self.redis, check_quota=False)
        except Deferred as exc:
            if exc.until - utcnow() > timedelta(minutes=5):
                self.spent.add(api)
            raise

    def subscribe(self, p: _Plan) -> Outcome | None:
        if not p.subscribe_template:
            return None
        n = p.notice
        try:
            self.call("subscribe", lambda: self.mp.wxa.send_subscribe_message(
                p.mp_openid, p.subscribe_template, n.subscribe_data(), page=n.mp_page))
        except WeChatClientException as exc:
            if exc.errcode == NO_CONSENT:
                p.consent_lost = True
                return None  # WeChat says no consent after all: try the next channel
            if exc.errcode in CONFIG_ERRORS:
                return Outcome("failed", "subscribe", exc.errcode, f"订阅消息配置错误: {exc.errmsg}")
            raise
        return Outcome("sent", "subscribe")

    def custom(self, p: _Plan) -> Outcome | None:
        if not (p.oa_openid and p.window_open):
            return None
        try:
            self.call("custom", lambda: self.oa.message.send_text(p.oa_openid, p.notice.as_text()))
        except WeChatClientException as exc:
            if exc.errcode in (WINDOW_CLOSED, OUT_OF_COUNT, NOT_FOLLOWING):
                return Outcome("skipped", "custom", exc.errcode, REASONS[exc.errcode])
            if exc.errcode in CONFIG_ERRORS:
                return Outcome("failed", "custom", exc.errcode, f"客服消息发送失败: {exc.errmsg}")
            raise
        return Outcome("sent", "custom")

    def template(self, p: _Plan) -> Outcome | None:
        n = p.notice
        template_id = self.wx_templates.get(n.kind)
        if not (template_id and p.oa_openid and p.subscribed):
            return None
        body = {"touser": p.oa_openid, "template_id": template_id, "data": n.template_data(),
                "client_msg_id": hashlib.sha1(n.key.encode()).hexdigest()[:32]}
        if n.url:
            body["url"] = n.url
        if n.mp_page:
            body["miniprogram"] = {"appid": self.mp_appid, "pagepath": n.mp_page}
        try:
            result = self.call("template", lambda: self._post_template(body))
        except WeChatClientException as exc:
            if exc.errcode == NOT_FOLLOWING:
                p.unfollowed = True
                return Outcome("skipped", "template", NOT_FOLLOWING, REASONS[NOT_FOLLOWING])
            if exc.errcode in CONFIG_ERRORS:
                return Outcome("failed", "template", exc.errcode, f"模板消息配置错误: {exc.errmsg}")
            raise
        return Outcome("sent", "template", msgid=str(result.get("msgid", "")) or None)

    def deliver(self, p: _Plan, stop) -> None:
        """The channel chain of ``send_notice`` for one item; the result lands on ``p``."""
        if stop.is_set():
            return  # an earlier item stopped the batch: this one stays pending, unsent
        try:
            outcome = None
            for attempt in (self.subscribe, self.custom, self.template):
                result = attempt(p)
                if result is None:
                    continue
                outcome = result
                if result.status == "sent" or result.errcode not in CHANNEL_CLOSED:
                    break
            p.outcome = outcome or Outcome("skipped", None, None, REASONS["no_channel"])
        except (TemporaryFailure, Deferred) as exc:
            p.error = exc
            stop.set()
        except Exception as exc:  # an error we do not classify: stop like the single path would
            p.error = exc
            stop.set()


_POOLS: dict[tuple, object] = {}


def _http_pool(url: str, size: int):
    """A keep-alive connection pool per process (a forked work horse builds its own); through
    the proxy the environment names for this URL, as requests would use."""
    import os

    import urllib3
    from requests.utils import get_environ_proxies

    key = (os.getpid(), "http", url.split("/", 3)[2])
    if key not in _POOLS:
        proxy = get_environ_proxies(url).get(url.split(":", 1)[0])
        kw = {"maxsize": max(size, 4), "block": False, "retries": False}
        _POOLS[key] = urllib3.ProxyManager(proxy, **kw) if proxy else urllib3.PoolManager(**kw)
    return _POOLS[key]


def _pool(size: int):
    import os
    from concurrent.futures import ThreadPoolExecutor

    key = (os.getpid(), size)  # a forked work horse builds its own
    if key not in _POOLS:
        _POOLS[key] = ThreadPoolExecutor(max_workers=size, thread_name_prefix="wechat-send")
    return _POOLS[key]


def _claim_batch(plans: list[_Plan], now: datetime) -> None:
    """Claim every key in one statement; keys finished earlier get their outcome (duplicate)."""
    from app.dbutil import insert_or_skip

    table = OutboundMessage.__table__
    stmt = insert_or_skip(table, conflict=["dedupe_key"]).returning(table.c.id, table.c.dedupe_key)
    claimed = dict((k, i) for i, k in db.session.execute(stmt, [
        {"dedupe_key": p.key, "wechat_user_id": p.user_id, "status": "pending", "attempts": 0,
         "payload": {"kind": p.notice.kind, "title": p.notice.title}, "created_at": now} for p in plans]).all())
    others = [p.key for p in plans if p.key not in claimed]
    earlier = {}
    if others:
        earlier = {r.dedupe_key: r for r in db.session.execute(
            select(table.c.id, table.c.dedupe_key, table.c.status, table.c.channel, table.c.errcode,
                   table.c.errmsg, table.c.attempts).where(table.c.dedupe_key.in_(others)))}
    for p in plans:
        if p.key in claimed:
            p.row_id = claimed[p.key]
            continue
        row = earlier[p.key]
        if row.status in ("sent", "skipped", "failed"):
            p.outcome = Outcome(row.status, row.channel, row.errcode, row.errmsg, duplicate=True)
        else:
            p.row_id, p.attempts = row.id, row.attempts  # pending from a run that did not finish


def _take_consents(plans: list[_Plan], templates: dict) -> None:
    """Take one subscribe consent per (user, template) where one is left — one UPDATE per template."""
    by_template: dict[str, list[_Plan]] = {}
    for p in plans:
        template_id = templates.get(p.notice.kind)
        if p.outcome is None and template_id and p.mp_openid:
            by_template.setdefault(template_id, []).append(p)
    for template_id, group in by_template.items():
        taken = set(db.session.execute(
            update(SubscribeConsent)
            .where(SubscribeConsent.template_id == template_id, SubscribeConsent.remaining > 0,
                   SubscribeConsent.wechat_user_id.in_({p.user_id for p in group}))
            .values(remaining=SubscribeConsent.remaining - 1)
            .returning(SubscribeConsent.wechat_user_id)
            .execution_options(synchronize_session=False)).scalars())
        for p in group:  # one consent per person and template in a batch
            if p.user_id in taken:
                p.subscribe_template = template_id
                taken.discard(p.user_id)


def send_notices(batch: list[tuple[WechatUser, Notice]], *, now: datetime | None = None,
                 record=None, concurrency: int | None = None) -> list[Outcome]:
    """``send_notice`` for many (user, notice) pairs at once, with the same rules.

    Returns one ``Outcome`` per pair (``duplicate`` where the key was handled before). Two
    commits per batch: the claim (with the consents it takes) before anything is sent, every
    outcome after. ``record(outcomes)``, if given, runs inside that second transaction, so the
    caller's own rows (delivery status) are stored in the same commit.

    When WeChat answers −1 / times out (``TemporaryFailure``) or limits us (``Deferred``) for
    an item, no further item is started; what was sent is recorded (and ``record`` is called
    with ``None`` for the items without an outcome), then that exception is raised with
    ``exc.outcomes`` (the list, ``None`` where not done) and ``exc.failed`` (the indexes that
    hit it). Unsent items stay claimed but pending, so a later batch sends them.
    """
    import threading

    if not batch:
        return []
    now = now or utcnow()
    cfg = current_app.config
    redis = current_app.extensions["redis"]
    plans: list[_Plan] = []
    first_of: dict[str, _Plan] = {}
    repeats: list[tuple[_Plan, _Plan]] = []
    for i, (user, notice) in enumerate(batch):
        p = _Plan(i, notice.key, notice, user.id, user.oa_openid, user.mp_openid, bool(user.subscribed),
                  bool(user.last_interaction_at and now - user.last_interaction_at < CUSTOM_WINDOW))
        if notice.key in first_of:
            repeats.append((p, first_of[notice.key]))  # the same key twice: send it once
            continue
        first_of[notice.key] = p
        plans.append(p)
    users = {user.id: user for user, _ in batch}

    # 1. Claim the keys and take the consents: one commit, before anything is sent.
    _claim_batch(plans, now)
    _take_consents(plans, cfg["MINIAPP_TEMPLATES"])
    db.session.commit()

    # 2. Channels in memory; open windows and spent quotas in one Redis round trip.
    todo = [p for p in plans if p.outcome is None]
    closed = [p for p in todo if p.oa_openid and not p.window_open]
    pipe = redis.pipeline(transaction=False)
    for p in closed:
        pipe.exists(window_key(p.oa_openid))
    apis = ("subscribe", "custom", "template")
    for api in apis:
        pipe.exists(_quota_key(api))
    answers = pipe.execute()
    for p, is_open in zip(closed, answers):
        p.window_open = bool(is_open)
    spent = {api for api, flag in zip(apis, answers[len(closed):]) if flag}

    # 3. Send: a few requests in flight over keep-alive sessions; the first error stops the rest.
    size = max(1, int(concurrency or cfg.get("WECHAT_SEND_CONCURRENCY", 4)))
    sender = _Sender(redis, cfg, spent, size)
    stop = threading.Event()
    if size == 1 or len(todo) == 1:
        for p in todo:
            sender.deliver(p, stop)
    else:
        list(_pool(size).map(lambda p: sender.deliver(p, stop), todo))

    # 4. Record everything in one commit.
    failed = [p for p in todo if p.error is not None]
    _record_batch(plans, todo, failed, users, redis)
    for p, first in repeats:
        p.outcome = first.outcome and replace(first.outcome, duplicate=True)
    outcomes = [None] * len(batch)
    for p in _all(plans, repeats):
        outcomes[p.index] = p.outcome
    if record is not None:
        record(outcomes)
    db.session.commit()
    if failed:
        # Deferred outranks a temporary failure (it says when to come back).
        exc = next((p.error for p in failed if isinstance(p.error, Deferred)), failed[0].error)
        exc.outcomes = outcomes
        exc.failed = [p.index for p in failed]
        raise exc
    return outcomes


def _all(plans, repeats):
    return [*plans, *(p for p, _ in repeats)]


def _record_batch(plans, todo, failed, users, redis) -> None:
    table = OutboundMessage.__table__
    done = [p for p in todo if p.outcome is not None]
    sent_at = utcnow()
    early = {}
    msgids = [p.outcome.msgid for p in done if p.outcome.status == "sent" and p.outcome.msgid]
    if msgids:  # TEMPLATESENDJOBFINISH events that arrived before this bookkeeping
        pipe = redis.pipeline(transaction=False)
        for m in msgids:
            pipe.getdel(f"wechat:template-finish:{m}")
        early = {m: v.decode() for m, v in zip(msgids, pipe.execute()) if v}
    from sqlalchemy import bindparam

    if done:
        rows = []
        for p in done:
            o = p.outcome
            status, errmsg, delivered = o.status, o.reason, None
            if o.msgid in early:
                delivered = early[o.msgid][:40]
                if early[o.msgid] != "success":
                    status, errmsg = "failed", f"TEMPLATESENDJOBFINISH: {early[o.msgid]}"[:300]
            rows.append({"_id": p.row_id, "_status": status, "_channel": o.channel, "_errcode": o.errcode,
                         "_errmsg": errmsg, "_openid": p.oa_openid or p.mp_openid,
                         "_sent_at": sent_at if o.status == "sent" else None,
                         "_msgid": o.msgid if o.status == "sent" else None, "_delivered": delivered})
        db.session.execute(
            update(table).where(table.c.id == bindparam("_id")).values(
                status=bindparam("_status"), channel=bindparam("_channel"), errcode=bindparam("_errcode"),
                errmsg=bindparam("_errmsg"), openid=bindparam("_openid"), sent_at=bindparam("_sent_at"),
                wechat_msgid=bindparam("_msgid"), delivered=bindparam("_delivered"),
                attempts=table.c.attempts + 1), rows)
    if failed:
        db.session.execute(
            update(table).where(table.c.id == bindparam("_id")).values(
                errmsg=bindparam("_errmsg"), attempts=table.c.attempts + 1),
            [{"_id": p.row_id, "_errmsg": str(p.error)[:300]} for p in failed])
    # Consents: given back where the message did not go (it will be retried), zeroed where
    # WeChat said there was none.
    back = [p for p in todo if p.subscribe_template and not p.consent_lost and p.outcome is None]
    lost = [p for p in todo if p.consent_lost]
    ct = SubscribeConsent.__table__
    for group, value in ((back, ct.c.remaining + 1), (lost, 0)):
        if group:
            db.session.execute(update(ct).where(ct.c.wechat_user_id == bindparam("_u"),
                                                ct.c.template_id == bindparam("_t")).values(remaining=value),
                               [{"_u": p.user_id, "_t": p.subscribe_template} for p in group])
    gone = [p.user_id for p in todo if p.unfollowed]
    if gone:
        wt = WechatUser.__table__
        db.session.execute(update(wt).where(wt.c.id.in_(gone)).values(subscribed=False))
        from sqlalchemy.orm.attributes import set_committed_value

        for uid in gone:
            if uid in users:
                set_committed_value(users[uid], "subscribed", False)
