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
from dataclasses import dataclass, field
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


def _call(api: str, fn):
    """Run one WeChat call; translate its failure into our classification."""
    redis = current_app.extensions["redis"]
    if redis.exists(_quota_key(api)):
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
