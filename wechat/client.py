"""WeChat API clients (wechatpy), pointed at WECHAT_API_BASE and sharing one token in Redis.

wechatpy hard-codes WeChat's host in a few places (WECHAT.md §9): the token URL and the
mini-program API group. Both are overridden here so every request reaches the configured
base — the sandbox in the demo and the tests.

Tokens: one per appid, from POST /cgi-bin/stable_token in normal mode (force_refresh false).
Unlike the legacy GET /cgi-bin/token — where anyone else fetching a token for the same appid
(a second deployment, an admin tool, a test console) kills ours five minutes later — the
stable token is the same for every caller while it is valid, and WeChat renews it itself in
its last five minutes. It is stored in Redis for every process until five minutes before its
end. Refreshing takes a Redis lock and re-reads the store first, so a crowd of workers seeing
40001 at once makes one call. A call that meets 40001/40014/42001 refreshes once and retries
once — never wechatpy's unbounded recursion. We never force a refresh: that is for a leaked
token, 20 times a day, and it would cut off every other process using the token.

Configuration errors (the server's IP not in the account's whitelist, a wrong AppSecret or
AppID) raise ``WeChatConfigError`` with what to fix, in Chinese, are logged once, and are
held in Redis for CONFIG_ERROR_HOLD seconds: meanwhile every process gets the same error
without calling WeChat, instead of hammering the token endpoint (and its daily quota) with
retries that cannot succeed until someone changes the settings.
"""
from __future__ import annotations

import json
import logging

import requests
from flask import current_app
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session.redisstorage import RedisStorage

log = logging.getLogger(__name__)

TOKEN_ERRORS = (40001, 40014, 42001)
# A sign-in code (web authorisation, the mini-program's wx.login) WeChat will not exchange:
# invalid or expired, or already used. Each door adds its own (41008 missing, 40226 risky user).
BAD_LOGIN_CODE = (40029, 40163)
# Stop using a token this long before WeChat's expiry, so no process holds a dying one (the
# stable token is renewed by WeChat in its last five minutes: asking then gives the new one).
TOKEN_MARGIN = 300
# Errors of the token endpoint that only a change of settings can cure: what to fix.
CONFIG_ERRORS = {
    40164: "服务器出口 IP 不在公众号/小程序的 IP 白名单中：请在微信公众平台「设置与开发 → 基本配置 → IP白名单」"
           "中加入本服务器的公网出口 IP",
    40125: "AppSecret 无效：请核对 WECHAT_SECRET / MINIAPP_SECRET（在公众平台重置后须同步更新）",
    40001: "AppSecret 错误：请核对 WECHAT_SECRET / MINIAPP_SECRET",
    40013: "AppID 无效：请核对 WECHAT_APPID / MINIAPP_APPID",
    41002: "缺少 AppID：请设置 WECHAT_APPID / MINIAPP_APPID",
    41004: "缺少 AppSecret：请设置 WECHAT_SECRET / MINIAPP_SECRET",
}
CONFIG_ERROR_HOLD = 60  # seconds every process reuses a configuration error before asking again


class TokenRefreshBusy(RuntimeError):
    """Another process held the refresh lock for too long."""


class WeChatConfigError(WeChatClientException):
    """WeChat refuses us until someone changes a setting (IP whitelist, AppID, AppSecret):
    retrying cannot help. ``errmsg`` says, in Chinese, what to fix; ``wechat_errmsg`` is
    WeChat's own words."""

    def __init__(self, errcode: int, wechat_errmsg: str | None, appid: str, **kw):
        self.appid, self.wechat_errmsg = appid, wechat_errmsg or ""
        advice = CONFIG_ERRORS.get(errcode, "微信接口配置错误")
        super().__init__(errcode, f"微信接口配置错误（{errcode}，appid {appid}）：{advice}。微信返回：{self.wechat_errmsg}",
                         **kw)

    def __str__(self) -> str:
        return self.errmsg


class HeatingWeChatClient(WeChatClient):
    def __init__(self, appid: str, secret: str, *, api_base: str, redis, timeout: float = 5.0):
        super().__init__(appid, secret, session=RedisStorage(redis, prefix="wechat:token"),
                         timeout=timeout, auto_retry=False)
        self.api_base = api_base.rstrip("/") + "/"
        self.API_BASE_URL = self.api_base + "cgi-bin/"
        self.wxa.API_BASE_URL = self.api_base
        self._redis = redis

    # wechatpy asks us only when the store has no token (expires_at stays None, so the
    # Redis TTL alone decides, identically in every process).
    @property
    def access_token(self) -> str:
        token = self.session.get(self.access_token_key)
        return token or self.fetch_access_token()

    @property
    def _config_error_key(self) -> str:
        return f"wechat:token-config-error:{self.appid}"

    def _raise_held_config_error(self) -> None:
        held = self._redis.get(self._config_error_key)
        if held:
            data = json.loads(held)
            raise WeChatConfigError(int(data["errcode"]), data.get("errmsg"), self.appid, client=self)

    def fetch_access_token(self, stale: str | None = None) -> str:
        self._raise_held_config_error()
        lock = self._redis.lock(f"wechat:token-lock:{self.appid}", timeout=15, blocking_timeout=15)
        if not lock.acquire():
            raise TokenRefreshBusy("等待微信 access_token 刷新超时")
        try:
            current = self.session.get(self.access_token_key)
            if current and current != stale:
                return current  # someone refreshed while we waited
            self._raise_held_config_error()  # found while we waited
            res = self._http.post(self.api_base + "cgi-bin/stable_token", timeout=self.timeout, json={
                "grant_type": "client_credential", "appid": self.appid, "secret": self.secret,
                "force_refresh": False})
            res.raise_for_status()
            result = res.json()
            errcode = result.get("errcode")
            if errcode in CONFIG_ERRORS:
                self._hold_config_error(errcode, result.get("errmsg"))
                raise WeChatConfigError(errcode, result.get("errmsg"), self.appid, client=self,
                                        request=res.request, response=res)
            if errcode:
                raise WeChatClientException(errcode, result.get("errmsg"), client=self,
                                            request=res.request, response=res)
            ttl = max(int(result.get("expires_in", 7200)) - TOKEN_MARGIN, 60)
            self.session.set(self.access_token_key, result["access_token"], ttl)
            self.expires_at = None
            log.info("wechat: got the stable access_token for %s (%s s left)", self.appid, result.get("expires_in"))
            return result["access_token"]
        finally:
            try:
                lock.release()
            except Exception:  # expired lock: nothing to release
                pass

    def _hold_config_error(self, errcode: int, errmsg: str | None) -> None:
        """Share the error with every process for a while; say it loudly once per hold."""
        first = self._redis.set(self._config_error_key, json.dumps({"errcode": errcode, "errmsg": errmsg}),
                                ex=CONFIG_ERROR_HOLD, nx=True)
        if first:
            log.error("wechat: %s", WeChatConfigError(errcode, errmsg, self.appid))

    def _request(self, method, url_or_endpoint, **kwargs):
        params = kwargs.setdefault("params", {})
        explicit = "access_token" in params
        try:
            return super()._request(method, url_or_endpoint, **kwargs)
        except WeChatClientException as exc:
            if exc.errcode == 40164 and not isinstance(exc, WeChatConfigError):
                # An API that checks the IP whitelist as well: a setting to change, not a retry.
                log.error("wechat: %s refused %s: %s", url_or_endpoint, self.appid, exc.errmsg)
                raise WeChatConfigError(exc.errcode, exc.errmsg, self.appid, client=self,
                                        request=exc.request, response=exc.response) from exc
            if exc.errcode not in TOKEN_ERRORS or explicit:
                raise
            stale = params.get("access_token")
            params["access_token"] = self.fetch_access_token(stale=stale)
            return super()._request(method, url_or_endpoint, **kwargs)


def _make(appid_key: str, secret_key: str) -> HeatingWeChatClient:
    cfg = current_app.config
    cache = current_app.extensions.setdefault("wechat_clients", {})
    key = (cfg[appid_key], cfg["WECHAT_API_BASE"])
    if key not in cache:
        cache[key] = HeatingWeChatClient(cfg[appid_key], cfg[secret_key], api_base=cfg["WECHAT_API_BASE"],
                                         redis=current_app.extensions["redis"],
                                         timeout=cfg.get("WECHAT_TIMEOUT", 5.0))
    return cache[key]


def official_account() -> HeatingWeChatClient:
    return _make("WECHAT_APPID", "WECHAT_SECRET")


def mini_program() -> HeatingWeChatClient:
    return _make("MINIAPP_APPID", "MINIAPP_SECRET")


__all__ = ["HeatingWeChatClient", "WeChatConfigError", "TokenRefreshBusy", "official_account", "mini_program",
           "TOKEN_ERRORS", "requests"]
