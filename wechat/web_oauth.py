"""WeChat web authorisation (网页授权, WECHAT.md §6): the authorize URL and the code exchange,
through wechatpy's ``WeChatOAuth`` pointed at ``WECHAT_API_BASE`` (the sandbox in the demo and
the tests). Used by the official-account pages' sign-in and the dashboard's.

The consent page lives on open.weixin.qq.com for the real WeChat and under the API base for the
sandbox, whose authorize endpoint also takes ``sandbox_openid=`` (consent at once as that user).
WeChat checks the request before anything else: ``redirect_uri`` must be on the account's
web-authorisation domain (网页授权域名; 10003 otherwise) and ``state`` may only hold a-zA-Z0-9,
at most 128 bytes — ``new_state`` makes a hex one; the callers build the redirect_uri from
PUBLIC_BASE_URL (``app.links.public_url``), never from the host and scheme the request arrived
with, which behind a TLS-terminating proxy are the proxy's ``http://internal:8000``.
"""
from __future__ import annotations

import secrets
from urllib.parse import urlencode

import requests
from flask import current_app
from wechatpy.exceptions import WeChatOAuthException
from wechatpy.oauth import WeChatOAuth

REAL_API_HOST = "api.weixin.qq.com"
REAL_OAUTH_BASE = "https://open.weixin.qq.com/connect/"


class OAuthError(RuntimeError):
    """The code exchange failed: ``errcode`` is WeChat's (40029 invalid or expired code, 40163
    code already used …), None when WeChat could not be reached."""

    def __init__(self, message: str, errcode: int | None = None):
        super().__init__(message)
        self.errcode = errcode


class HeatingWeChatOAuth(WeChatOAuth):
    """wechatpy's web authorisation with our API base and a timeout on every call."""

    def __init__(self, app_id: str, secret: str, redirect_uri: str = "", *, api_base: str, timeout: float,
                 scope: str = "snsapi_base", state: str = ""):
        super().__init__(app_id, secret, redirect_uri, scope=scope, state=state)
        self.API_BASE_URL = api_base
        self.OAUTH_BASE_URL = REAL_OAUTH_BASE if REAL_API_HOST in api_base else api_base + "connect/"
        self.timeout = timeout

    def _request(self, method, url_or_endpoint, **kwargs):
        kwargs.setdefault("timeout", self.timeout)
        return super()._request(method, url_or_endpoint, **kwargs)


def _api_base() -> str:
    return current_app.config["WECHAT_API_BASE"].rstrip("/") + "/"


def is_real_wechat() -> bool:
    return REAL_API_HOST in _api_base()


def _oauth(redirect_uri: str = "", state: str = "") -> HeatingWeChatOAuth:
    cfg = current_app.config
    return HeatingWeChatOAuth(cfg["WECHAT_APPID"], cfg["WECHAT_SECRET"], redirect_uri, api_base=_api_base(),
                              timeout=cfg.get("WECHAT_TIMEOUT", 5.0), state=state)


def new_state() -> str:
    """A fresh state for the authorize URL: 32 hex characters, inside WeChat's a-zA-Z0-9 /
    128-byte rule."""
    return secrets.token_hex(16)


def authorize_url(redirect_uri: str, state: str, *, sandbox_openid: str | None = None) -> str:
    """Where to send the browser for silent authorisation (snsapi_base), coming back to
    ``redirect_uri`` with ``?code=&state=``; in the sandbox ``sandbox_openid`` picks the user."""
    url = _oauth(redirect_uri, state).authorize_url
    if sandbox_openid and not is_real_wechat():
        page, _, fragment = url.partition("#")
        url = f"{page}&{urlencode({'sandbox_openid': sandbox_openid})}#{fragment}"
    return url


def openid_for_code(code: str) -> str:
    """Exchange a one-time code for the user's official-account openid."""
    try:
        answer = _oauth().fetch_access_token(code)
    except WeChatOAuthException as exc:
        raise OAuthError(f"微信授权失败（{exc.errcode}：{exc.errmsg or ''}）", exc.errcode) from exc
    except (requests.RequestException, ValueError, KeyError) as exc:
        raise OAuthError(f"微信授权服务暂时不可用：{exc}") from exc
    if not answer.get("openid"):
        raise OAuthError("微信授权失败（未返回 openid）")
    return answer["openid"]
