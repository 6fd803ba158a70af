"""One way to reach a person: pick the channel WeChat allows, send once, record the outcome.

Channels, in order of preference (WECHAT.md §3, §7):
1. mini-program subscribe message — where the user gave a one-time consent for the template;
2. customer-service message — inside 48 hours of the user's last message to us (it spends
   no template quota, which broadcasts need); 45015/45047 fall through to
3. official-account template message — to followers.

Errors are classified as WeChat documents them: −1 and timeouts are retried by the caller
(RQ backoff); 45011 waits for the next minute and 45009 until the daily reset (``Deferred``,
never a hot loop); 43004/43101/45015 end that channel for this user with the reason.

Templates (wechat/templates.py): each kind of notice has its template and subscribe template,
whose keys are filled from the notice's values, each shaped to its key's rule. 40037, 47003,
41030, 48001 and 40003 are configuration errors of the kind — the template id or its data —
and so is a value that cannot be shaped (``TemplateDataError``, found before WeChat is
called): each is logged as an error and kept per kind and channel for the console
(``templates.problems``), the next channel is tried (a subscribe consent not used is given
back), and the notice is recorded failed, with the kind, the template and WeChat's words,
only if no channel carried it. A notification has a unique key: it is sent at most once
(template messages also carry ``client_msg_id`` so WeChat itself drops a repeat within 10
minutes).

When the answer is lost (DESIGN §5). Right before WeChat is called, the outbound row is
committed as ``sending`` with the channel. If the process dies during the call, or WeChat
does not answer in time, nobody knows whether the message arrived. Such a send is repeated
only as a template message with the same ``client_msg_id``, while WeChat still drops the
repeat (``RESEND_WITHIN``); a customer-service or subscribe message (no such key), or a
template message found too late, becomes ``unknown`` — shown to staff, who may resend it.
"""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import requests
from flask import current_app
from sqlalchemy import String, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from wechatpy.exceptions import WeChatClientException

from app.clock import BEIJING
from app.dbutil import insert_or_skip
from app.extensions import db
from app.models import OutboundMessage, SubscribeConsent, WechatUser, utcnow
from app.models.messages import OutboundStatus
from app.queue import Deferred
from wechat import client as wechat_client
from wechat import templates

log = logging.getLogger(__name__)

CUSTOM_WINDOW = timedelta(hours=48)
RETRYABLE = (-1,)
NOT_FOLLOWING, NO_CONSENT, WINDOW_CLOSED, OUT_OF_COUNT = 43004, 43101, 45015, 45047
MINUTE_LIMIT, DAILY_QUOTA = 45011, 45009
INVALID_OPENID = 40003
# The errors of a kind's template itself (its id, its data, its page): the same for every
# recipient of the kind, reported per kind.
TEMPLATE_ERRORS = (40037, 47003, 41030, 48001)
# Not sent, and no retry will change that: the template's errors, or the recipient's openid.
CONFIG_ERRORS = (*TEMPLATE_ERRORS, INVALID_OPENID)
# This channel is closed for this user now; the next channel may still reach them.
CHANNEL_CLOSED = (WINDOW_CLOSED, OUT_OF_COUNT)

# What WeChat's answers mean, in the words staff read (the console shows these for each
# recipient not reached; REASONS is the one table of them — look words up with reason_text).
REASONS = {
    NOT_FOLLOWING: "用户未关注公众号",
    NO_CONSENT: "用户拒收（未授权订阅消息）",
    WINDOW_CLOSED: "超出48小时客服消息窗口",
    OUT_OF_COUNT: "客服消息条数已达上限",
    INVALID_OPENID: "openid 无效（不是本公众号/小程序的用户）",
    DAILY_QUOTA: "今日微信消息额度已用完（次日0点恢复）",
    MINUTE_LIMIT: "微信接口调用过于频繁",
    -1: "微信系统繁忙",
    40037: "模板ID无效（模板配置错误）",
    47003: "模板数据不符合要求（模板配置错误）",
    41030: "小程序页面路径无效（模板配置错误）",
    48001: "公众号未获得该接口权限",
    "no_channel": "用户未关注公众号、无订阅授权且不在48小时互动窗口内",
}


def reason_text(errcode: int | None, stored: str | None = None) -> str:
    """Staff's words for an outcome: WeChat's errcode through REASONS, else the reason stored."""
    if errcode is not None and errcode in REASONS:
        return REASONS[errcode]
    return stored or ("微信返回错误码 %s" % errcode if errcode is not None else "")

# WeChat sends one message per openid + client_msg_id within 10 minutes (WECHAT.md §3). A
# template message whose answer was lost is sent again with the same id only well inside
# that window; later it is "unknown".
CLIENT_MSG_ID_WINDOW = timedelta(minutes=10)
RESEND_WITHIN = CLIENT_MSG_ID_WINDOW - timedelta(minutes=2)  # clocks and queues: keep a margin
UNKNOWN_REASONS = {
    "interrupted": "发送过程中断，无法确认对方是否收到",
    "timeout": "微信接口未及时应答，无法确认对方是否收到",
    "too_late": "发送过程中断，且已超过微信模板消息去重时限，无法确认对方是否收到",
}


class TemporaryFailure(RuntimeError):
    """−1, timeouts, HTTP errors: the caller retries with backoff.

    ``maybe_sent``: the request may have reached WeChat and been carried out (a read timeout,
    a connection dropped before the answer, a gateway error); then it is repeated only as a
    template message with its client_msg_id, never through another channel."""

    def __init__(self, message: str, *, maybe_sent: bool = False):
        super().__init__(message)
        self.maybe_sent = maybe_sent


@dataclass
class Notice:
    """What to tell a person, independent of the channel that carries it.

    ``values`` are the kind's fields (``wechat.templates.KINDS``) as plain values —
    strings, datetimes, ``Fen`` amounts, (start, end) pairs — from which each channel takes
    what it shows: a template or subscribe message the keys of the kind's template, each
    shaped to its rule; a customer-service message every field with its label."""

    key: str                                  # unique per notification and recipient
    kind: str                                 # a kind of wechat.templates.KINDS
    title: str                                # first line of the text, e.g. "您有新的维修任务"
    values: dict[str, Any] = field(default_factory=dict)  # field -> value
    remark: str | None = None                 # last lines of the text (not in templates)
    url: str | None = None                    # H5 link
    mp_page: str | None = None                # mini-program page path

    def as_text(self) -> str:
        kind = templates.KINDS.get(self.kind)
        names = [n for n, _ in kind.fields] if kind else []
        names += [n for n in self.values if n not in names]
        lines = [self.title] + [f"{kind.label_of(n) if kind else n}：{templates.display(self.values[n])}"
                                for n in names if self.values.get(n) not in (None, "", self.title)]
        if self.remark:
            lines.append(self.remark)
        if self.url:
            lines.append(f'<a href="{self.url}">查看详情</a>')
        return "\n".join(lines)

    def to_payload(self) -> dict:
        """The notice as JSON, kept on its outbound row: a recovery or a resend sends the same."""
        return {"key": self.key, "kind": self.kind, "title": self.title,
                "values": templates.encode_values(self.values), "remark": self.remark, "url": self.url,
                "mp_page": self.mp_page}

    @classmethod
    def from_payload(cls, data: dict, **changes) -> "Notice":
        remark = data.get("remark")
        if "values" not in data and data.get("fields"):
            # Kept before the template registry: its labelled rows become text (no template
            # can be filled from them, so it goes only where text goes).
            rows = "\n".join(f"{k}：{v}" for k, v in data["fields"])
            remark = f"{rows}\n{remark}" if remark else rows
        notice = cls(key=data["key"], kind=data["kind"], title=data["title"],
                     values=templates.decode_values(data.get("values") or {}), remark=remark,
                     url=data.get("url"), mp_page=data.get("mp_page"))
        return replace(notice, **changes)


@dataclass
class Outcome:
    status: str                 # sent | skipped | failed | unknown
    channel: str | None = None
    errcode: int | None = None
    reason: str | None = None
    msgid: str | None = None
    duplicate: bool = False     # this key was handled before; nothing was sent now
    data_error: bool = False    # the kind's values could not fill its template (not sent)

    @property
    def config_problem(self) -> bool:
        """WeChat refused the template or its data (40037, 47003, …), or the values could not
        be shaped to it: a configuration error of the kind, the same for everyone."""
        return self.status == "failed" and (self.data_error or self.errcode in TEMPLATE_ERRORS)

    @property
    def next_channel_may_help(self) -> bool:
        """Refused by this channel for a reason of its own (its template, an openid of this
        app): another channel may still carry the notice."""
        return self.status == "failed" and (self.data_error or self.errcode in CONFIG_ERRORS)


def window_key(openid: str) -> str:
    """Redis key that exists while the user's 48-hour customer-service window is open
    (set by the callback on every message, expiring with the window)."""
    return f"wechat:window:{openid}"


def _quota_key(api: str) -> str:
    return f"wechat:quota-spent:{api}"


def next_beijing_midnight(now: datetime | None = None) -> datetime:
    # WeChat's daily quotas reset at Beijing midnight, whatever our TIMEZONE.
    local = (now or utcnow()).astimezone(BEIJING)
    return (local + timedelta(days=1)).replace(hour=0, minute=0, second=5, microsecond=0).astimezone(timezone.utc)


def _next_minute(now: datetime | None = None) -> datetime:
    now = now or utcnow()
    return now.replace(second=1, microsecond=0) + timedelta(minutes=1)


def may_resend_in_doubt(channel: str | None, sending_at: datetime | None, now: datetime) -> bool:
    """Whether a send whose answer was lost may be made again: only a template message (WeChat
    drops the repeat by its client_msg_id), and only while WeChat still remembers the id."""
    return channel == "template" and sending_at is not None and now - sending_at < RESEND_WITHIN


def in_doubt_outcome(channel: str | None) -> Outcome:
    """What a send whose answer was lost becomes when it may not be made again."""
    reason = "too_late" if channel == "template" else "interrupted"
    return Outcome(OutboundStatus.UNKNOWN, channel, None, UNKNOWN_REASONS[reason])


def _reached_wechat(exc: Exception) -> bool:
    """Whether a failed call may have been carried out by WeChat: False only when it surely
    was not (no connection was made, or WeChat answered with an error code)."""
    import urllib3

    if isinstance(exc, requests.ConnectTimeout):
        return False
    if isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        if isinstance(reason, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)):
            return False
    if isinstance(exc, WeChatClientException) and exc.errcode is None:
        response = getattr(exc, "response", None)  # HTTP error status: a gateway may have passed it on
        return response is None or response.status_code >= 500
    if isinstance(exc, WeChatClientException):
        return False  # WeChat's own answer
    return True


def _claim(user: WechatUser, notice: Notice, now: datetime) -> tuple[OutboundMessage, bool] | Outcome:
    """Insert the outbound row for this key, or report what became of it earlier.

    Returns ``(row, in_doubt)``; ``in_doubt`` when an earlier attempt was cut off during a
    template message that may still be repeated with its client_msg_id. An earlier attempt
    cut off on another channel (or too long ago) is settled here as unknown."""
    row = OutboundMessage(dedupe_key=notice.key, wechat_user_id=user.id, status=OutboundStatus.PENDING,
                          payload={"kind": notice.kind, "title": notice.title, "notice": notice.to_payload()})
    db.session.add(row)
    try:
        db.session.commit()
        return row, False
    except IntegrityError:
        db.session.rollback()
    row = db.session.scalar(select(OutboundMessage).where(OutboundMessage.dedupe_key == notice.key))
    if row.status in OutboundStatus.FINAL:
        return Outcome(row.status, row.channel, row.errcode, row.errmsg, duplicate=True)
    if row.status == OutboundStatus.SENDING:
        if may_resend_in_doubt(row.channel, row.sending_at, now):
            return row, True
        outcome = in_doubt_outcome(row.channel)
        db.session.execute(update(OutboundMessage).where(
            OutboundMessage.id == row.id, OutboundMessage.status == OutboundStatus.SENDING)
            .values(status=outcome.status, errmsg=outcome.reason))
        db.session.commit()
        return outcome
    return row, False  # pending: the attempt before sent nothing; try again


def _mark_sending(row: OutboundMessage, channel: str, in_doubt_since: datetime | None) -> None:
    """Commit "sending" with the channel, right before the call (DESIGN §5)."""
    row.status, row.channel = OutboundStatus.SENDING, channel
    row.sending_at = in_doubt_since or utcnow()
    db.session.commit()


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
            raise TemporaryFailure(f"微信接口暂时不可用 ({code}): {exc.errmsg}",
                                   maybe_sent=_reached_wechat(exc)) from exc
        if code == MINUTE_LIMIT:
            raise Deferred(_next_minute(), f"{api} 触发每分钟频率限制 (45011)") from exc
        if code == DAILY_QUOTA:
            until = next_beijing_midnight()
            redis.set(_quota_key(api), 1, exat=int(until.timestamp()))
            raise Deferred(until, f"{api} 今日调用额度已用完 (45009)") from exc
        raise
    except requests.RequestException as exc:
        raise TemporaryFailure(f"调用微信接口超时或网络错误: {type(exc).__name__}",
                               maybe_sent=_reached_wechat(exc)) from exc


def _ready(client) -> None:
    """Have the access token before the call is marked "sending": a failure to get one
    sends nothing, and must not make the message's outcome unknown."""
    try:
        client.access_token
    except (requests.RequestException, WeChatClientException) as exc:
        raise TemporaryFailure(f"获取微信 access_token 失败: {type(exc).__name__}") from exc


def _consume_consent(user: WechatUser, template_id: str) -> bool:
    """Take one consent (committed with the "sending" mark that follows)."""
    res = db.session.execute(
        update(SubscribeConsent)
        .where(SubscribeConsent.wechat_user_id == user.id, SubscribeConsent.template_id == template_id,
               SubscribeConsent.remaining > 0)
        .values(remaining=SubscribeConsent.remaining - 1))
    return res.rowcount == 1


# --- templates: the kind's template, its data, and refusals reported per kind --------------------

CHANNEL_NAMES = {"subscribe": "订阅消息", "template": "模板消息", "custom": "客服消息"}


def _kind_label(kind: str) -> str:
    k = templates.KINDS.get(kind)
    return f"{k.label}（{kind}）" if k else kind


def _errmsg(exc: WeChatClientException) -> str:
    return re.sub(r"\s*rid:.*$", "", str(exc.errmsg or "")).strip()


def _refused(channel: str, kind: str, template_id: str, exc: WeChatClientException) -> Outcome:
    """WeChat refused the template itself or its data (a configuration error of this kind), or
    this app's openid of the person (40003: the recipient's, not the template's)."""
    if exc.errcode == INVALID_OPENID:
        return Outcome("failed", channel, exc.errcode, f"{REASONS[INVALID_OPENID]}（{CHANNEL_NAMES[channel]}，40003）")
    reason = (f"{CHANNEL_NAMES[channel]}被微信拒绝（{exc.errcode} {_errmsg(exc)}）："
              f"{_kind_label(kind)}，模板 {template_id}")
    return Outcome("failed", channel, exc.errcode, reason[:300])


def _unshaped(channel: str, exc: templates.TemplateDataError) -> Outcome:
    return Outcome("failed", channel, None, f"{CHANNEL_NAMES[channel]}未发送，数据不符合模板规则：{exc}"[:300],
                   data_error=True)


def _report(redis, outcome: Outcome, kind: str, template_id: str | None, now: datetime | None = None) -> None:
    """Tell the operators: an error in the log, and the latest problem of this kind's
    template kept for the console (wechat.templates.problems)."""
    log.error("wechat: %s of kind %s (template %s) not sent: %s", outcome.channel, kind, template_id, outcome.reason)
    templates.record_problem(redis, outcome.channel, kind, template_id, outcome.errcode, outcome.reason or "",
                             now or utcnow())


def _give_back_consent(user: WechatUser, template_id: str) -> None:
    db.session.rollback()
    db.session.execute(update(SubscribeConsent).where(
        SubscribeConsent.wechat_user_id == user.id, SubscribeConsent.template_id == template_id)
        .values(remaining=SubscribeConsent.remaining + 1))
    db.session.commit()


def _try_subscribe(user: WechatUser, notice: Notice, now: datetime, mark) -> Outcome | None:
    template = templates.registry().subscribe(notice.kind)
    if not (template and user.mp_openid and _consume_consent(user, template.template_id)):
        return None
    redis = current_app.extensions["redis"]
    try:
        data = template.render(templates.KINDS[notice.kind], notice.values)
    except templates.TemplateDataError as exc:
        db.session.rollback()  # the consent taken above was not committed: it stays
        outcome = _unshaped("subscribe", exc)
        _report(redis, outcome, notice.kind, template.template_id)
        return outcome
    mp = wechat_client.mini_program()
    _ready(mp)
    mark("subscribe")
    try:
        _call("subscribe", lambda: mp.wxa.send_subscribe_message(
            user.mp_openid, template.template_id, data, page=notice.mp_page))
    except (TemporaryFailure, Deferred) as exc:
        if getattr(exc, "maybe_sent", False):
            raise  # the consent may have been used: it is not given back
        _give_back_consent(user, template.template_id)  # not sent: kept for the retry
        raise
    except WeChatClientException as exc:
        if exc.errcode == NO_CONSENT:
            db.session.execute(update(SubscribeConsent).where(
                SubscribeConsent.wechat_user_id == user.id, SubscribeConsent.template_id == template.template_id)
                .values(remaining=0))
            db.session.commit()
            return None  # WeChat says no consent after all: try the next channel
        if exc.errcode in CONFIG_ERRORS:
            _give_back_consent(user, template.template_id)  # WeChat sent nothing
            outcome = _refused("subscribe", notice.kind, template.template_id, exc)
            if outcome.config_problem:
                _report(redis, outcome, notice.kind, template.template_id)
            return outcome  # another channel may still carry it
        raise
    templates.clear_problems(redis, [("subscribe", notice.kind)])
    return Outcome("sent", "subscribe")


def _try_template(user: WechatUser, notice: Notice, now: datetime, mark, *, in_doubt: bool = False) -> Outcome | None:
    template = templates.registry().template(notice.kind)
    # A repeat of a cut-off template message goes out even if we have since heard the user
    # unfollowed: WeChat answers for this client_msg_id (43004, or the earlier msgid).
    if not (template and user.oa_openid and (user.subscribed or in_doubt)):
        return None
    redis = current_app.extensions["redis"]
    try:
        data = template.render(templates.KINDS[notice.kind], notice.values)
    except templates.TemplateDataError as exc:
        outcome = _unshaped("template", exc)
        _report(redis, outcome, notice.kind, template.template_id)
        # A cut-off send that cannot be repeated may still have arrived: unknown, not failed.
        return Outcome(OutboundStatus.UNKNOWN, "template", None, UNKNOWN_REASONS["interrupted"]) if in_doubt \
            else outcome
    body = {
        "touser": user.oa_openid, "template_id": template.template_id, "data": data,
        "client_msg_id": hashlib.sha1(notice.key.encode()).hexdigest()[:32],
    }
    if notice.url:
        body["url"] = notice.url
    if notice.mp_page:
        body["miniprogram"] = {"appid": current_app.config["MINIAPP_APPID"], "pagepath": notice.mp_page}
    oa = wechat_client.official_account()
    _ready(oa)
    mark("template")
    try:
        result = _call("template", lambda: oa.post("message/template/send", data=body))
    except WeChatClientException as exc:
        if exc.errcode == NOT_FOLLOWING:
            user.subscribed = False
            db.session.commit()
            return Outcome("skipped", "template", NOT_FOLLOWING, REASONS[NOT_FOLLOWING])
        if exc.errcode in CONFIG_ERRORS:
            outcome = _refused("template", notice.kind, template.template_id, exc)
            if outcome.config_problem:
                _report(redis, outcome, notice.kind, template.template_id)
            return outcome
        raise
    templates.clear_problems(redis, [("template", notice.kind)])
    return Outcome("sent", "template", msgid=str(result.get("msgid", "")) or None)


def _try_custom(user: WechatUser, notice: Notice, now: datetime, mark) -> Outcome | None:
    if not user.oa_openid:
        return None
    recent = user.last_interaction_at and now - user.last_interaction_at < CUSTOM_WINDOW
    if not (recent or current_app.extensions["redis"].exists(window_key(user.oa_openid))):
        return None
    oa = wechat_client.official_account()
    _ready(oa)
    mark("custom")
    try:
        _call("custom", lambda: oa.message.send_text(user.oa_openid, notice.as_text()))
    except WeChatClientException as exc:
        if exc.errcode in (WINDOW_CLOSED, OUT_OF_COUNT, NOT_FOLLOWING):
            return Outcome("skipped", "custom", exc.errcode, REASONS[exc.errcode])
        if exc.errcode in CONFIG_ERRORS:
            return Outcome("failed", "custom", exc.errcode,
                           f"客服消息发送失败：{reason_text(exc.errcode, _errmsg(exc))}")
        raise
    return Outcome("sent", "custom")


def send_custom_message(openid: str, *, text: str | None = None, media_id: str | None = None) -> Outcome:
    """One customer-service message (text, or an image already uploaded) — live chat (会话).

    No other channel is tried: an agent's reply outside WeChat's window is not turned into a
    template message. 45015/45047/43004 are ``skipped`` with the reason, other refusals
    ``failed``; raises ``TemporaryFailure`` (``maybe_sent`` when the answer was lost) or
    ``Deferred`` (45011/45009), as the other senders do."""
    oa = wechat_client.official_account()
    _ready(oa)
    try:
        if media_id:
            _call("custom", lambda: oa.message.send_image(openid, media_id))
        else:
            _call("custom", lambda: oa.message.send_text(openid, text))
    except WeChatClientException as exc:
        if exc.errcode in (WINDOW_CLOSED, OUT_OF_COUNT, NOT_FOLLOWING):
            return Outcome("skipped", "custom", exc.errcode, REASONS[exc.errcode])
        return Outcome("failed", "custom", exc.errcode, f"客服消息发送失败（{exc.errcode}）：{_errmsg(exc)}"[:300])
    return Outcome("sent", "custom")


def upload_image(data: bytes, filename: str, content_type: str) -> str:
    """Upload an image as temporary media (3 days) for a customer-service message: its media_id."""
    oa = wechat_client.official_account()
    _ready(oa)
    result = _call("media_upload", lambda: oa.media.upload("image", (filename, data, content_type)))
    return result["media_id"]


def send_notice(user: WechatUser, notice: Notice, *, now: datetime | None = None) -> Outcome:
    """Send ``notice`` to ``user`` through the best channel, at most once per ``notice.key``.

    Commits its own bookkeeping (the outbound row) — call it from a job, not inside a
    request's transaction. The row is committed as "sending" with its channel right before
    each call. Raises ``TemporaryFailure`` (retry with backoff) or ``Deferred`` (retry at
    ``until``); everything else ends in an ``Outcome`` recorded with its errcode — ``unknown``
    when a customer-service or subscribe message got no answer (it may have arrived).
    """
    now = now or utcnow()
    claimed = _claim(user, notice, now)
    if isinstance(claimed, Outcome):
        return claimed
    row, in_doubt = claimed
    in_doubt_since = row.sending_at if in_doubt else None
    channel = None

    def mark(name: str) -> None:
        nonlocal channel
        channel = name
        _mark_sending(row, name, in_doubt_since)

    if in_doubt:  # cut off during a template message: only that, with the same client_msg_id
        attempts = (lambda u, n, t, m: _try_template(u, n, t, m, in_doubt=True),)
    else:
        attempts = (_try_subscribe, _try_custom, _try_template)
    try:
        outcome = failure = None
        for attempt in attempts:
            result = attempt(user, notice, now, mark)
            if result is None:
                continue
            outcome = result
            if result.status == "sent":
                break
            if result.next_channel_may_help:
                failure = result  # e.g. this channel's template is broken: the next may carry it
            elif result.errcode not in CHANNEL_CLOSED:
                break  # a failure that another channel would not fix
        if outcome is None or outcome.status != "sent":
            outcome = failure or outcome or Outcome("skipped", None, None, REASONS["no_channel"])
    except (TemporaryFailure, Deferred, WeChatClientException) as exc:
        db.session.rollback()
        row = db.session.get(OutboundMessage, row.id)
        maybe_sent = getattr(exc, "maybe_sent", False)
        if maybe_sent and channel != "template":
            # It may have arrived, and this channel has no key WeChat dedupes: never again.
            return _finish(row, Outcome(OutboundStatus.UNKNOWN, channel, None, UNKNOWN_REASONS["timeout"]),
                           user.oa_openid or user.mp_openid)
        row.attempts += 1
        row.errmsg = str(exc)[:300]
        if not (in_doubt or maybe_sent):  # WeChat surely did not send it: a plain retry later
            row.status, row.channel, row.sending_at = OutboundStatus.PENDING, None, None
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
# Every item is marked "sending" with its channel in the claim's commit, before any call; a
# channel that turns someone away (43101, 45015, 45047) sends them through the next one in
# another round, marked again first.

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
    chain: list[str] = field(default_factory=list)  # channels to try, in order
    pos: int = 0                            # the channel being tried
    next_round: bool = False                # turned away by this channel: try the next one
    last: Outcome | None = None             # what the channel that turned us away said
    in_doubt_since: datetime | None = None  # an earlier template send was cut off then
    maybe_sent: bool = False                # this call's answer was lost
    data: dict = field(default_factory=dict)  # channel -> the template data it sends
    failure: Outcome | None = None          # a channel whose template is broken (kept if none carries it)
    consent_back: bool = False              # the consent taken was not used: give it back

    @property
    def channel(self) -> str | None:
        return self.chain[self.pos] if self.pos < len(self.chain) else None

    @property
    def held(self) -> bool:
        """No outcome, but a template message may have gone out: stays "sending", and is
        repeated only with its client_msg_id."""
        return self.outcome is None and (self.in_doubt_since is not None or self.maybe_sent)


def template_message(openid: str, notice: Notice, template_id: str, data: dict, mp_appid: str) -> dict:
    """The body of message/template/send for this notice; its client_msg_id comes from the
    notice's key, so WeChat drops a repeat of it within 10 minutes."""
    body = {"touser": openid, "template_id": template_id, "data": data,
            "client_msg_id": hashlib.sha1(notice.key.encode()).hexdigest()[:32]}
    if notice.url:
        body["url"] = notice.url
    if notice.mp_page:
        body["miniprogram"] = {"appid": mp_appid, "pagepath": notice.mp_page}
    return body


class _Sender:
    """The HTTP side of one batch: no database, safe to run in threads. One call per item
    and round, through the item's current channel."""

    def __init__(self, redis, config, spent: set[str], size: int, registry: templates.Registry):
        self.redis, self.config, self.spent = redis, config, spent
        self.oa = wechat_client.official_account()
        self.mp = wechat_client.mini_program()
        self.registry = registry
        self.mp_appid = config["MINIAPP_APPID"]
        self.timeout = float(config["WECHAT_TIMEOUT"])
        self.size = size
        self._token = None
        self._send = None  # POST to message/template/send on the host's keep-alive pool
        self._timeout = None
        self._ready: set[int] = set()  # clients whose token was read for this batch

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
        if self._send is None:
            manager = _http_pool(url, self.size)
            if type(manager) is urllib3.PoolManager:
                # No proxy: the host's connection pool itself, without the manager's per-call
                # work (pool key, URL parsing); it is the same pool the manager hands out.
                pool = manager.connection_from_url(url)
                self._send = lambda target, **kw: pool.urlopen("POST", urllib3.util.parse_url(target).request_uri, **kw)
            else:
                self._send = lambda target, **kw: manager.urlopen("POST", target, **kw)
            self._timeout = urllib3.Timeout(connect=self.timeout, read=self.timeout)
        try:
            res = self._send(url, body=_json.dumps(body, ensure_ascii=False).encode(),
                             headers={"Content-Type": "application/json"}, retries=False, timeout=self._timeout)
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
        n = p.notice
        try:
            self.call("subscribe", lambda: self.mp.wxa.send_subscribe_message(
                p.mp_openid, p.subscribe_template, p.data["subscribe"], page=n.mp_page))
        except WeChatClientException as exc:
            if exc.errcode == NO_CONSENT:
                p.consent_lost = True
                return None  # WeChat says no consent after all: try the next channel
            if exc.errcode in CONFIG_ERRORS:
                p.consent_back = True  # WeChat sent nothing
                return _refused("subscribe", n.kind, p.subscribe_template, exc)
            raise
        return Outcome("sent", "subscribe")

    def custom(self, p: _Plan) -> Outcome | None:
        try:
            self.call("custom", lambda: self.oa.message.send_text(p.oa_openid, p.notice.as_text()))
        except WeChatClientException as exc:
            if exc.errcode in (WINDOW_CLOSED, OUT_OF_COUNT, NOT_FOLLOWING):
                return Outcome("skipped", "custom", exc.errcode, REASONS[exc.errcode])
            if exc.errcode in CONFIG_ERRORS:
                return Outcome("failed", "custom", exc.errcode,
                           f"客服消息发送失败：{reason_text(exc.errcode, _errmsg(exc))}")
            raise
        return Outcome("sent", "custom")

    def template(self, p: _Plan) -> Outcome | None:
        n = p.notice
        template_id = self.registry.template(n.kind).template_id
        body = template_message(p.oa_openid, n, template_id, p.data["template"], self.mp_appid)
        try:
            result = self.call("template", lambda: self._post_template(body))
        except WeChatClientException as exc:
            if exc.errcode == NOT_FOLLOWING:
                p.unfollowed = True
                return Outcome("skipped", "template", NOT_FOLLOWING, REASONS[NOT_FOLLOWING])
            if exc.errcode in CONFIG_ERRORS:
                return _refused("template", n.kind, template_id, exc)
            raise
        return Outcome("sent", "template", msgid=str(result.get("msgid", "")) or None)

    def ready(self, channel: str) -> None:
        """The access token, before the call: failing to get one sends nothing."""
        client = self.mp if channel == "subscribe" else self.oa
        if id(client) in self._ready:
            return
        try:
            client.access_token
            self._ready.add(id(client))
        except (requests.RequestException, WeChatClientException) as exc:
            raise TemporaryFailure(f"获取微信 access_token 失败: {type(exc).__name__}") from exc

    def deliver(self, p: _Plan, stop) -> None:
        """One call through ``p``'s current channel; what came of it lands on ``p``."""
        p.next_round = False
        if stop.is_set():
            return  # an earlier item stopped the batch: this one is not sent now
        channel = p.channel
        try:
            if channel != "template":  # the template path reads its token inside the call
                self.ready(channel)
            result = getattr(self, channel)(p)
        except (TemporaryFailure, Deferred, WeChatClientException) as exc:
            p.error = exc
            if getattr(exc, "maybe_sent", False):
                p.maybe_sent = True
                if channel != "template":  # may have arrived; no key WeChat dedupes: never again
                    p.outcome = Outcome(OutboundStatus.UNKNOWN, channel, None, UNKNOWN_REASONS["timeout"])
            stop.set()
            return
        except Exception as exc:  # an error we do not classify: stop, and assume the worst
            p.error, p.maybe_sent = exc, True
            if channel != "template":
                p.outcome = Outcome(OutboundStatus.UNKNOWN, channel, None, UNKNOWN_REASONS["interrupted"])
            stop.set()
            return
        if result is not None and result.next_channel_may_help:
            p.failure = result  # e.g. this channel's template is broken: the next channel may carry it
        elif result is not None and (result.status == "sent" or result.errcode not in CHANNEL_CLOSED):
            p.outcome = result
            return
        else:
            # This channel turned the person away (WeChat's answer: nothing was sent); the next may not.
            p.last = result or p.last
        p.pos += 1
        if p.channel is None:
            p.outcome = p.failure or p.last or Outcome("skipped", None, None, REASONS["no_channel"])
            if p.outcome.config_problem:
                stop.set()  # the kind's template is wrong for everyone: the rest stay pending
        else:
            p.next_round = True


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
    """Claim every key in one statement. Keys finished earlier get their outcome (duplicate);
    a key left "sending" by a run that was cut off is repeated as a template message with its
    client_msg_id if it may be, else settled as unknown (in this transaction)."""
    table = OutboundMessage.__table__
    stmt = insert_or_skip(table, conflict=["dedupe_key"]).returning(table.c.id, table.c.dedupe_key)
    claimed = dict((k, i) for i, k in db.session.execute(stmt, [
        {"dedupe_key": p.key, "wechat_user_id": p.user_id, "status": OutboundStatus.PENDING, "attempts": 0,
         "payload": {"kind": p.notice.kind, "title": p.notice.title}, "created_at": now} for p in plans]).all())
    others = [p.key for p in plans if p.key not in claimed]
    earlier = {}
    if others:
        earlier = {r.dedupe_key: r for r in db.session.execute(
            select(table.c.id, table.c.dedupe_key, table.c.status, table.c.channel, table.c.errcode,
                   table.c.errmsg, table.c.attempts, table.c.sending_at).where(table.c.dedupe_key.in_(others)))}
    settle = []
    for p in plans:
        if p.key in claimed:
            p.row_id = claimed[p.key]
            continue
        row = earlier[p.key]
        if row.status in OutboundStatus.FINAL:
            p.outcome = Outcome(row.status, row.channel, row.errcode, row.errmsg, duplicate=True)
            continue
        p.row_id, p.attempts = row.id, row.attempts  # a run that did not finish
        if row.status == OutboundStatus.SENDING:
            if may_resend_in_doubt(row.channel, row.sending_at, now):
                p.in_doubt_since = row.sending_at
            else:
                p.outcome = in_doubt_outcome(row.channel)
                settle.append({"_id": row.id, "_status": p.outcome.status, "_errmsg": p.outcome.reason})
    if settle:
        db.session.execute(update(table).where(table.c.id == bindparam("_id"),
                                               table.c.status == OutboundStatus.SENDING)
                           .values(status=bindparam("_status"), errmsg=bindparam("_errmsg")), settle)


def _take_consents(plans: list[_Plan], registry: templates.Registry) -> None:
    """Take one subscribe consent per (user, template) where one is left — one UPDATE per template."""
    by_template: dict[str, list[_Plan]] = {}
    for p in plans:
        template = registry.subscribe(p.notice.kind)
        if p.outcome is None and p.in_doubt_since is None and template and p.mp_openid:
            by_template.setdefault(template.template_id, []).append(p)
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


def _render(cache: dict, channel: str, template: templates.Template, notice: Notice):
    """The template's data for this notice — once per batch for notices sharing their values
    (a broadcast's) — or the ``TemplateDataError`` that stops it."""
    key = (channel, template.template_id, notice.kind, id(notice.values))
    if key not in cache:
        try:
            cache[key] = template.render(templates.KINDS[notice.kind], notice.values)
        except templates.TemplateDataError as exc:
            cache[key] = exc
    return cache[key]


def _chain(p: _Plan, registry: templates.Registry, cache: dict) -> list[str]:
    """The channels ``send_notice`` would try for this person, in its order, with the data of
    the template channels; a channel whose template the values cannot fill is left out (its
    failure kept in case no other channel carries the notice)."""
    n = p.notice
    template = registry.template(n.kind)
    if p.in_doubt_since is not None:  # the only channel WeChat deduplicates (client_msg_id)
        data = _render(cache, "template", template, n) if template else None
        if isinstance(data, dict):
            p.data["template"] = data
            return ["template"]
        # It may have arrived, and it cannot be repeated: unknown, for staff.
        p.outcome = Outcome(OutboundStatus.UNKNOWN, "template", None, UNKNOWN_REASONS["interrupted"])
        if not isinstance(data, dict) and data is not None:
            p.failure = _unshaped("template", data)  # reported with the batch's problems
        return []
    chain = []
    if p.subscribe_template:
        data = _render(cache, "subscribe", registry.subscribe(n.kind), n)
        if isinstance(data, dict):
            p.data["subscribe"] = data
            chain.append("subscribe")
        else:
            p.consent_back, p.failure = True, _unshaped("subscribe", data)
    if p.oa_openid and p.window_open:
        chain.append("custom")
    if template and p.oa_openid and p.subscribed:
        data = _render(cache, "template", template, n)
        if isinstance(data, dict):
            p.data["template"] = data
            chain.append("template")
        else:
            p.failure = p.failure or _unshaped("template", data)
    return chain


def _report_batch(redis, plans: list[_Plan], registry: templates.Registry, now: datetime) -> None:
    """Problems of templates met in this batch, once per channel and kind; the ones whose
    channel and kind went through are over."""
    seen, sent = {}, set()
    for p in plans:
        for o in (p.failure, p.outcome):
            if o is not None and o.config_problem and o.channel in ("subscribe", "template"):
                seen.setdefault((o.channel, p.notice.kind), o)
        if p.outcome is not None and p.outcome.status == "sent" and p.outcome.channel in ("subscribe", "template"):
            sent.add((p.outcome.channel, p.notice.kind))
    templates.clear_problems(redis, sent - set(seen))
    for (channel, kind), o in seen.items():
        t = registry.subscribe(kind) if channel == "subscribe" else registry.template(kind)
        _report(redis, o, kind, t.template_id if t else None, now)


def _mark_sending_batch(group: list[_Plan], now: datetime, on_sending, repeats) -> None:
    """Each item "sending" through its current channel (one statement), and the caller's rows
    (``on_sending``) in the same transaction; the caller commits."""
    if not group:
        return
    table = OutboundMessage.__table__
    db.session.execute(
        update(table).where(table.c.id == bindparam("_id")).values(
            status=OutboundStatus.SENDING, channel=bindparam("_channel"), sending_at=bindparam("_at")),
        [{"_id": p.row_id, "_channel": p.channel, "_at": p.in_doubt_since or now} for p in group])
    if on_sending is not None:
        first = {id(p) for p in group}
        marks = [(p.index, p.channel) for p in group]
        marks += [(r.index, f.channel) for r, f in repeats if id(f) in first]
        on_sending(marks)


def send_notices(batch: list[tuple[WechatUser, Notice]], *, now: datetime | None = None,
                 record=None, on_sending=None, concurrency: int | None = None) -> list[Outcome]:
    """``send_notice`` for many (user, notice) pairs at once, with the same rules.

    Returns one ``Outcome`` per pair (``duplicate`` where the key was handled before). Two
    commits per batch: the claim (with the consents it takes, and every item marked "sending"
    with its channel) before anything is sent, every outcome after — plus one more, marking
    again, for each round of people a channel turned away. ``on_sending([(index, channel)])``
    runs in those marking transactions and ``record(outcomes, held)`` in the last one, so the
    caller's own rows (delivery status) are stored in the same commits. ``held`` holds the
    indexes without an outcome that stay "sending": a template message may have gone out,
    and is repeated only with its client_msg_id.

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

    # 1. Open windows and spent quotas in one Redis round trip.
    closed = [p for p in plans if p.oa_openid and not p.window_open]
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

    # 2. Claim the keys, take the consents, choose the channels and mark every item
    #    "sending": one commit, before anything is sent.
    _claim_batch(plans, now)
    todo = [p for p in plans if p.outcome is None]
    registry = templates.registry()
    _take_consents(todo, registry)
    rendered: dict = {}
    for p in todo:
        p.chain = _chain(p, registry, rendered)
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
    _mark_sending_batch(calls, now, on_sending, repeats)
    db.session.commit()

    # 3. Send: a few requests in flight over keep-alive sessions; the first error stops the
    #    rest. People a channel turned away go through the next one, marked again first.
    size = max(1, int(concurrency or cfg.get("WECHAT_SEND_CONCURRENCY", 4)))
    sender = _Sender(redis, cfg, spent, size, registry)
    group = calls
    while group:
        if size == 1 or len(group) == 1:
            for p in group:
                sender.deliver(p, stop)
        else:
            list(_pool(size).map(lambda p: sender.deliver(p, stop), group))
        group = [p for p in group if p.next_round and not stop.is_set()]
        if group:
            _mark_sending_batch(group, utcnow(), on_sending, repeats)
            db.session.commit()

    # 4. Record everything in one commit.
    failed = [p for p in todo if p.error is not None]
    _record_batch(plans, todo, failed, users, redis)
    for p, first in repeats:
        p.outcome = first.outcome and replace(first.outcome, duplicate=True)
    outcomes = [None] * len(batch)
    for p in _all(plans, repeats):
        outcomes[p.index] = p.outcome
    held = {p.index for p in todo if p.held}
    held |= {r.index for r, f in repeats if f.index in held}
    if record is not None:
        record(outcomes, held)
    db.session.commit()
    _report_batch(redis, todo, registry, now)
    if failed:
        # Deferred outranks a temporary failure (it says when to come back).
        exc = next((p.error for p in failed if isinstance(p.error, Deferred)), failed[0].error)
        exc.outcomes = outcomes
        exc.failed = [p.index for p in failed if p.outcome is None]
        exc.held = held
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
    # No outcome: a template message that may have gone out stays "sending" (repeated later
    # with its client_msg_id); anything else surely did not go out and is pending again.
    held = [p for p in todo if p.held]
    back = [p for p in todo if p.outcome is None and not p.held]
    for group, values in ((held, {}), (back, {"status": OutboundStatus.PENDING, "channel": None,
                                              "sending_at": None})):
        if group:
            db.session.execute(
                update(table).where(table.c.id == bindparam("_id")).values(
                    errmsg=func.coalesce(bindparam("_errmsg", type_=String(300)), table.c.errmsg),
                    attempts=table.c.attempts + bindparam("_tried"), **values),
                [{"_id": p.row_id, "_errmsg": str(p.error)[:300] if p.error is not None else None,
                  "_tried": 1 if p.error is not None else 0} for p in group])
    # Consents: given back where the message did not go (it will be retried), zeroed where
    # WeChat said there was none.
    back = [p for p in todo if p.subscribe_template and not p.consent_lost and (p.outcome is None or p.consent_back)]
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
