"""WeChat API clients (wechatpy), pointed at WECHAT_API_BASE and sharing one token in Redis.

wechatpy hard-codes WeChat's host in a few places (WECHAT.md §9): the token URL and the
mini-program API group. Both are overridden here so every request reaches the configured
base — the sandbox in the demo and the tests.

Tokens: one per appid, stored in Redis for every process. Refreshing takes a Redis lock
and re-reads the store first, so a crowd of workers seeing 40001 at once makes one fetch
(each /cgi-bin/token call retires the previous token after 5 minutes). A call that meets
40001/40014/42001 refreshes once and retries once — never wechatpy's unbounded recursion.
"""
from __future__ import annotations

import logging

import requests
from flask import current_app
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session.redisstorage import RedisStorage

log = logging.getLogger(__name__)

TOKEN_ERRORS = (40001, 40014, 42001)
# Stop using a token this long before WeChat's expiry, so no process holds a dying one.
TOKEN_MARGIN = 300


class TokenRefreshBusy(RuntimeError):
    """Another process held the refresh lock for too long."""


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

    def fetch_access_token(self, stale: str | None = None) -> str:
        lock = self._redis.lock(f"wechat:token-lock:{self.appid}", timeout=15, blocking_timeout=15)
        if not lock.acquire():
            raise TokenRefreshBusy("等待微信 access_token 刷新超时")
        try:
            current = self.session.get(self.access_token_key)
            if current and current != stale:
                return current  # someone refreshed while we waited
            res = self._http.get(self.api_base + "cgi-bin/token", timeout=self.timeout, params={
                "grant_type": "client_credential", "appid": self.appid, "secret": self.secret})
            res.raise_for_status()
            result = res.json()
            if result.get("errcode"):
                raise WeChatClientException(result["errcode"], result.get("errmsg"), client=self,
                                            request=res.request, response=res)
            ttl = max(int(result.get("expires_in", 7200)) - TOKEN_MARGIN, 60)
            self.session.set(self.access_token_key, result["access_token"], ttl)
            self.expires_at = None
            log.info("wechat: fetched a new access_token for %s", self.appid)
            return result["access_token"]
        finally:
            try:
                lock.release()
            except Exception:  # expired lock: nothing to release
                pass

    def _request(self, method, url_or_endpoint, **kwargs):
        params = kwargs.setdefault("params", {})
        explicit = "access_token" in params
        try:
            return super()._request(method, url_or_endpoint, **kwargs)
        except WeChatClientException as exc:
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


__all__ = ["HeatingWeChatClient", "official_account", "mini_program", "TOKEN_ERRORS", "requests"]
