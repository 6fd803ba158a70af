"""WeChat web OAuth2 (网页授权) for the dashboard: authorize URL and code exchange.

Two plain HTTP calls (WECHAT.md §6) against ``WECHAT_API_BASE``, so the sandbox serves them
in the demo and the tests. The consent page lives on open.weixin.qq.com for the real
WeChat and under the same base for the sandbox.
"""
from __future__ import annotations

from urllib.parse import urlencode

import requests
from flask import current_app

REAL_API_HOST = "api.weixin.qq.com"
REAL_AUTHORIZE_BASE = "https://open.weixin.qq.com/"


class OAuthError(RuntimeError):
    pass


def _api_base() -> str:
    return current_app.config["WECHAT_API_BASE"].rstrip("/") + "/"


def is_real_wechat() -> bool:
    return REAL_API_HOST in _api_base()


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
        raise OAuthError(f"微信授权失败（{body.get('errcode')}：{body.get('errmsg', '')}）")
    return body["openid"]
