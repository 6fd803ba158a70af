"""WeChat web OAuth2 (网页授权) for the dashboard: authorize URL and code exchange.

Two plain HTTP calls (WECHAT.md §6) against ``WECHAT_API_BASE``, so the sandbox serves them
in the demo and the tests. The consent page lives on open.weixin.qq.com for the real
WeChat and under the same base for the sandbox.

WeChat checks the request before anything else: ``redirect_uri`` must be on the account's
web-authorisation domain (网页授权域名; 10003 otherwise) and ``state`` may only hold a-zA-Z0-9,
at most 128 bytes. So the redirect_uri is built from PUBLIC_BASE_URL — never from the host and
scheme this request arrived with, which behind a TLS-terminating proxy are the proxy's
``http://internal:8000`` — and the state is hex.
"""
from __future__ import annotations

import secrets
from urllib.parse import urlencode

import requests
from flask import current_app, url_for

REAL_API_HOST = "api.weixin.qq.com"
REAL_AUTHORIZE_BASE = "https://open.weixin.qq.com/"


class OAuthError(RuntimeError):
    """The code exchange failed: ``errcode`` is WeChat's (40029 invalid or expired code, 40163
    code already used …), None when WeChat could not be reached."""

    def __init__(self, message: str, errcode: int | None = None):
        super().__init__(message)
        self.errcode = errcode


def _api_base() -> str:
    return current_app.config["WECHAT_API_BASE"].rstrip("/") + "/"


def is_real_wechat() -> bool:
    return REAL_API_HOST in _api_base()


def public_url(endpoint: str, **values) -> str:
    """The absolute URL of one of our pages as WeChat and people reach it (PUBLIC_BASE_URL)."""
    return current_app.config["PUBLIC_BASE_URL"] + url_for(endpoint, **values)


def new_state() -> str:
    """A fresh OAuth state: 32 hex characters, inside WeChat's a-zA-Z0-9 / 128-byte rule."""
    return secrets.token_hex(16)


def authorize_url(redirect_uri: str, state: str, *, sandbox_openid: str | None = None) -> str:
    base = REAL_AUTHORIZE_BASE if is_real_wechat() else _api_base()
    params = {"appid": current_app.config["WECHAT_APPID"], "redirect_uri": redirect_uri,
              "response_type": "code", "scope": "snsapi_base", "state": state}
    if sandbox_openid and not is_real_wechat():
        params["sandbox_openid"] = sandbox_openid  # the sandbox consents at once for this user
    return f"{base}connect/oauth2/authorize?{urlencode(params)}#wechat_redirect"


def openid_for_code(code: str) -> str:
    """Exchange a one-time code for the user's official-account openid."""
    cfg = current_app.config
    try:
        res = requests.get(_api_base() + "sns/oauth2/access_token", timeout=cfg.get("WECHAT_TIMEOUT", 5), params={
            "appid": cfg["WECHAT_APPID"], "secret": cfg["WECHAT_SECRET"], "code": code,
            "grant_type": "authorization_code"})
        body = res.json()
    except (requests.RequestException, ValueError) as exc:
        raise OAuthError(f"微信授权服务暂时不可用：{exc}") from exc
    if body.get("errcode") or not body.get("openid"):
        raise OAuthError(f"微信授权失败（{body.get('errcode')}：{body.get('errmsg', '')}）", body.get("errcode"))
    return body["openid"]
