"""The calls to WeChat that carry a notice, and what WeChat's answers mean (WECHAT.md §3, §7).

No database here: one ``Transport`` per batch holds the two clients (wechatpy), the access
tokens read once, and the keep-alive pool template messages are posted on; it is safe to use
from the batch's threads. Each channel's call ends in an ``Outcome`` for the answers WeChat
documents (sent, skipped with the reason, failed with the reason) or raises:

- ``TemporaryFailure`` for −1, timeouts and HTTP errors (the caller retries with backoff;
  ``maybe_sent`` when the request may have been carried out);
- ``Deferred`` for 45011 (the next minute) and 45009 (the daily reset at Beijing midnight,
  remembered per API in Redis so nobody calls again before it);
- ``WeChatClientException`` for an answer no rule here classifies.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import requests
import urllib3
from flask import current_app
from requests.utils import get_environ_proxies
from wechatpy.exceptions import WeChatClientException

from app.clock import BEIJING
from app.models import utcnow
from app.queue import Deferred
from wechat import client as wechat_client
from wechat import templates

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
CHANNEL_NAMES = {"subscribe": "订阅消息", "template": "模板消息", "custom": "客服消息"}
APIS = ("subscribe", "custom", "template")


def reason_text(errcode: int | None, stored: str | None = None) -> str:
    """Staff's words for an outcome: WeChat's errcode through REASONS, else the reason stored."""
    if errcode is not None and errcode in REASONS:
        return REASONS[errcode]
    return stored or ("微信返回错误码 %s" % errcode if errcode is not None else "")


class TemporaryFailure(RuntimeError):
    """−1, timeouts, HTTP errors: the caller retries with backoff.

    ``maybe_sent``: the request may have reached WeChat and been carried out (a read timeout,
    a connection dropped before the answer, a gateway error); then it is repeated only as a
    template message with its client_msg_id, never through another channel."""

    def __init__(self, message: str, *, maybe_sent: bool = False):
        super().__init__(message)
        self.maybe_sent = maybe_sent


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


# --- quotas and limits -----------------------------------------------------------------------------

def quota_key(api: str) -> str:
    """Redis key that exists while ``api``'s daily quota is spent (until Beijing midnight)."""
    return f"wechat:quota-spent:{api}"


def next_beijing_midnight(now: datetime | None = None) -> datetime:
    # WeChat's daily quotas reset at Beijing midnight, whatever our TIMEZONE.
    local = (now or utcnow()).astimezone(BEIJING)
    return (local + timedelta(days=1)).replace(hour=0, minute=0, second=5, microsecond=0).astimezone(timezone.utc)


def _next_minute(now: datetime | None = None) -> datetime:
    now = now or utcnow()
    return now.replace(second=1, microsecond=0) + timedelta(minutes=1)


# --- one call, its failure classified ----------------------------------------------------------------

def reached_wechat(exc: Exception) -> bool:
    """Whether a failed call may have been carried out by WeChat: False only when it surely
    was not (no connection was made, or WeChat answered with an error code)."""
    not_connected = (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)
    if isinstance(exc, requests.ConnectTimeout):
        return False
    if isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        if isinstance(reason, not_connected) or isinstance(exc.__cause__, not_connected):
            return False  # (the template poster's urllib3 error is the cause)
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return exc.response.status_code >= 500  # the template poster's HTTP error status
    if isinstance(exc, WeChatClientException) and exc.errcode is None:
        response = getattr(exc, "response", None)  # HTTP error status: a gateway may have passed it on
        return response is None or response.status_code >= 500
    if isinstance(exc, WeChatClientException):
        return False  # WeChat's own answer
    return True


def call(api: str, fn, *, redis=None, check_quota: bool = True):
    """Run one WeChat call; translate its failure into our classification."""
    redis = redis or current_app.extensions["redis"]
    if check_quota and redis.exists(quota_key(api)):
        raise Deferred(next_beijing_midnight(), f"{api} 今日调用额度已用完 (45009)")
    try:
        return fn()
    except WeChatClientException as exc:
        code = exc.errcode
        if code is None or code in RETRYABLE:
            raise TemporaryFailure(f"微信接口暂时不可用 ({code}): {exc.errmsg}",
                                   maybe_sent=reached_wechat(exc)) from exc
        if code == MINUTE_LIMIT:
            raise Deferred(_next_minute(), f"{api} 触发每分钟频率限制 (45011)") from exc
        if code == DAILY_QUOTA:
            until = next_beijing_midnight()
            redis.set(quota_key(api), 1, exat=int(until.timestamp()))
            raise Deferred(until, f"{api} 今日调用额度已用完 (45009)") from exc
        raise
    except requests.RequestException as exc:
        raise TemporaryFailure(f"调用微信接口超时或网络错误: {type(exc).__name__}",
                               maybe_sent=reached_wechat(exc)) from exc


def ready(client) -> None:
    """Have the access token before the call is marked "sending": a failure to get one
    sends nothing, and must not make the message's outcome unknown."""
    try:
        client.access_token
    except (requests.RequestException, WeChatClientException) as exc:
        raise TemporaryFailure(f"获取微信 access_token 失败: {type(exc).__name__}") from exc


# --- WeChat's refusals, in staff's words ---------------------------------------------------------------

def _kind_label(kind: str) -> str:
    k = templates.KINDS.get(kind)
    return f"{k.label}（{kind}）" if k else kind


def errmsg(exc: WeChatClientException) -> str:
    return re.sub(r"\s*rid:.*$", "", str(exc.errmsg or "")).strip()


def refused(channel: str, kind: str, template_id: str, exc: WeChatClientException) -> Outcome:
    """WeChat refused the template itself or its data (a configuration error of this kind), or
    this app's openid of the person (40003: the recipient's, not the template's)."""
    if exc.errcode == INVALID_OPENID:
        return Outcome("failed", channel, exc.errcode, f"{REASONS[INVALID_OPENID]}（{CHANNEL_NAMES[channel]}，40003）")
    reason = (f"{CHANNEL_NAMES[channel]}被微信拒绝（{exc.errcode} {errmsg(exc)}）："
              f"{_kind_label(kind)}，模板 {template_id}")
    return Outcome("failed", channel, exc.errcode, reason[:300])


def template_message(openid: str, notice, template_id: str, data: dict, mp_appid: str) -> dict:
    """The body of message/template/send for this notice; its client_msg_id comes from the
    notice's key, so WeChat drops a repeat of it within 10 minutes."""
    body = {"touser": openid, "template_id": template_id, "data": data,
            "client_msg_id": hashlib.sha1(notice.key.encode()).hexdigest()[:32]}
    if notice.url:
        body["url"] = notice.url
    if notice.mp_page:
        body["miniprogram"] = {"appid": mp_appid, "pagepath": notice.mp_page}
    return body


# --- the three channels ----------------------------------------------------------------------------------

class Transport:
    """The HTTP side of one batch: no database, safe to run in threads. Each channel's verb
    makes one call and answers with its ``Outcome`` — ``skipped``/``failed`` with WeChat's
    errcode where WeChat refused this person on this channel (43101 on a subscribe message is
    ``skipped`` with that errcode: the caller's consent record was wrong) — or raises."""

    def __init__(self, redis, config, spent: set[str], size: int):
        self.redis, self.config, self.spent = redis, config, spent
        self.oa = wechat_client.official_account()
        self.mp = wechat_client.mini_program()
        self.mp_appid = config["MINIAPP_APPID"]
        self.timeout = float(config["WECHAT_TIMEOUT"])
        self.size = size
        self._token = None
        self._send = None  # POST to message/template/send on the host's keep-alive pool
        self._timeout = None
        self._ready: set[int] = set()  # clients whose token was read for this batch

    def ready(self, channel: str) -> None:
        """The access token, before the call: failing to get one sends nothing."""
        client = self.mp if channel == "subscribe" else self.oa
        if id(client) in self._ready:
            return
        ready(client)
        self._ready.add(id(client))

    def call(self, api: str, fn):
        if api in self.spent:  # known spent at the start of the batch, or by an earlier item
            raise Deferred(next_beijing_midnight(), f"{api} 今日调用额度已用完 (45009)")
        try:
            # The spent-quota flags were read for the whole batch at its start.
            return call(api, fn, redis=self.redis, check_quota=False)
        except Deferred as exc:
            if exc.until - utcnow() > timedelta(minutes=5):
                self.spent.add(api)
            raise

    def subscribe(self, openid: str, notice, template_id: str, data: dict) -> Outcome:
        try:
            self.call("subscribe", lambda: self.mp.wxa.send_subscribe_message(
                openid, template_id, data, page=notice.mp_page))
        except WeChatClientException as exc:
            if exc.errcode == NO_CONSENT:  # WeChat says no consent after all
                return Outcome("skipped", "subscribe", NO_CONSENT, REASONS[NO_CONSENT])
            if exc.errcode in CONFIG_ERRORS:
                return refused("subscribe", notice.kind, template_id, exc)  # WeChat sent nothing
            raise
        return Outcome("sent", "subscribe")

    def custom(self, openid: str, notice) -> Outcome:
        try:
            self.call("custom", lambda: self.oa.message.send_text(openid, notice.as_text()))
        except WeChatClientException as exc:
            if exc.errcode in (WINDOW_CLOSED, OUT_OF_COUNT, NOT_FOLLOWING):
                return Outcome("skipped", "custom", exc.errcode, REASONS[exc.errcode])
            if exc.errcode in CONFIG_ERRORS:
                return Outcome("failed", "custom", exc.errcode,
                               f"客服消息发送失败：{reason_text(exc.errcode, errmsg(exc))}")
            raise
        return Outcome("sent", "custom")

    def template(self, openid: str, notice, template_id: str, data: dict) -> Outcome:
        body = template_message(openid, notice, template_id, data, self.mp_appid)
        try:
            result = self.call("template", lambda: self.post_template(body))
        except WeChatClientException as exc:
            if exc.errcode == NOT_FOLLOWING:
                return Outcome("skipped", "template", NOT_FOLLOWING, REASONS[NOT_FOLLOWING])
            if exc.errcode in CONFIG_ERRORS:
                return refused("template", notice.kind, template_id, exc)
            raise
        return Outcome("sent", "template", msgid=str(result.get("msgid", "")) or None)

    def post_template(self, body: dict) -> dict:
        """POST message/template/send on a keep-alive connection, without requests' per-call
        work (environment proxies, hooks): about a third of the CPU of ``oa.post``. The token
        is read once per batch; a token error goes the regular way (``oa.post`` refreshes once
        and retries once), as does anything this lean path does not handle."""
        if self._token is None:
            self._token = self.oa.access_token
        url = f"{self.oa.API_BASE_URL}message/template/send?access_token={quote(self._token)}"
        if self._send is None:
            manager = http_pool(url, self.size)
            if type(manager) is urllib3.PoolManager:
                # No proxy: the host's connection pool itself, without the manager's per-call
                # work (pool key, URL parsing); it is the same pool the manager hands out.
                pool = manager.connection_from_url(url)
                self._send = lambda target, **kw: pool.urlopen("POST", urllib3.util.parse_url(target).request_uri, **kw)
            else:
                self._send = lambda target, **kw: manager.urlopen("POST", target, **kw)
            self._timeout = urllib3.Timeout(connect=self.timeout, read=self.timeout)
        try:
            res = self._send(url, body=json.dumps(body, ensure_ascii=False).encode(),
                             headers={"Content-Type": "application/json"}, retries=False, timeout=self._timeout)
        except urllib3.exceptions.HTTPError as exc:
            raise requests.ConnectionError(f"{type(exc).__name__}: {exc}") from exc
        if res.status >= 400:
            response = requests.Response()
            response.status_code = res.status
            raise requests.HTTPError(f"HTTP {res.status}", response=response)
        result = json.loads(res.data.decode("utf-8", "ignore"), strict=False)
        code = int(result.get("errcode") or 0)
        if code in wechat_client.TOKEN_ERRORS:
            self._token = None
            return self.oa.post("message/template/send", data=body)
        if code:
            raise WeChatClientException(code, result.get("errmsg"), client=self.oa)
        return result


_POOLS: dict[tuple, object] = {}


def http_pool(url: str, size: int):
    """A keep-alive connection pool per process (a forked work horse builds its own); through
    the proxy the environment names for this URL, as requests would use."""
    key = (os.getpid(), "http", url.split("/", 3)[2])
    if key not in _POOLS:
        proxy = get_environ_proxies(url).get(url.split(":", 1)[0])
        kw = {"maxsize": max(size, 4), "block": False, "retries": False}
        _POOLS[key] = urllib3.ProxyManager(proxy, **kw) if proxy else urllib3.PoolManager(**kw)
    return _POOLS[key]


def thread_pool(size: int) -> ThreadPoolExecutor:
    """The threads a batch's calls run in, per process (a forked work horse builds its own)."""
    key = (os.getpid(), size)
    if key not in _POOLS:
        _POOLS[key] = ThreadPoolExecutor(max_workers=size, thread_name_prefix="wechat-send")
    return _POOLS[key]


# --- live chat: one customer-service message, no other channel -------------------------------------------

def send_custom_message(openid: str, *, text: str | None = None, media_id: str | None = None) -> Outcome:
    """One customer-service message (text, or an image already uploaded) — live chat (会话).

    No other channel is tried: an agent's reply outside WeChat's window is not turned into a
    template message. 45015/45047/43004 are ``skipped`` with the reason, other refusals
    ``failed``; raises ``TemporaryFailure`` (``maybe_sent`` when the answer was lost) or
    ``Deferred`` (45011/45009), as the other senders do."""
    oa = wechat_client.official_account()
    ready(oa)
    try:
        if media_id:
            call("custom", lambda: oa.message.send_image(openid, media_id))
        else:
            call("custom", lambda: oa.message.send_text(openid, text))
    except WeChatClientException as exc:
        if exc.errcode in (WINDOW_CLOSED, OUT_OF_COUNT, NOT_FOLLOWING):
            return Outcome("skipped", "custom", exc.errcode, REASONS[exc.errcode])
        return Outcome("failed", "custom", exc.errcode, f"客服消息发送失败（{exc.errcode}）：{errmsg(exc)}"[:300])
    return Outcome("sent", "custom")


def upload_image(data: bytes, filename: str, content_type: str) -> str:
    """Upload an image as temporary media (3 days) for a customer-service message: its media_id."""
    oa = wechat_client.official_account()
    ready(oa)
    result = call("media_upload", lambda: oa.media.upload("image", (filename, data, content_type)))
    return result["media_id"]
