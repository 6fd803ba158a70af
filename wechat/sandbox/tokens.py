"""access_token: issue, check, and the decorator every WeChat JSON API goes through.

The real rule (WECHAT.md §2, trap 2): each /cgi-bin/token call issues a new token valid for
7200 s and retires the previous ones after a 5-minute overlap. stable_token tokens are a
separate family and the same one is returned while it is valid.
"""
from __future__ import annotations

import functools
import json
import secrets

from flask import Blueprint, jsonify, request

from . import faults
from .errors import WeChatError

EXPIRES_IN = 7200
OVERLAP = 300


def credentials(sb) -> dict[str, str]:
    c = sb.config
    return {c["oa_appid"]: c["oa_secret"], c["mp_appid"]: c["mp_secret"]}


def app_kind(sb, appid: str) -> str:
    return "oa" if appid == sb.config["oa_appid"] else "mp"


def check_credentials(sb, appid: str | None, secret: str | None) -> None:
    if not appid:
        raise WeChatError(41002)
    known = credentials(sb)
    if appid not in known:
        raise WeChatError(40013)
    if not secret:
        raise WeChatError(41004)
    if secret != known[appid]:
        raise WeChatError(40001, "invalid credential, AppSecret error or access_token is invalid")


def issue_token(sb, appid: str) -> dict:
    now = sb.now()
    token = secrets.token_urlsafe(96)
    with sb.store.tx() as conn:
        conn.execute(
            "UPDATE tokens SET retired_at = ? WHERE appid = ? AND retired_at IS NULL", (now + OVERLAP, appid)
        )
        conn.execute(
            "INSERT INTO tokens (token, appid, issued_at, expires_at) VALUES (?, ?, ?, ?)",
            (token, appid, now, now + EXPIRES_IN),
        )
        conn.execute("DELETE FROM tokens WHERE expires_at < ?", (now - 86400,))
    return {"access_token": token, "expires_in": EXPIRES_IN}


def issue_stable_token(sb, appid: str, force_refresh: bool) -> dict:
    now = sb.now()
    key = f"stable_token:{appid}"
    with sb.store.tx() as conn:
        row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        current = json.loads(row["value"]) if row else None
        # The platform renews 5 minutes before expiry; force_refresh replaces it at once.
        if current and not force_refresh and current["expires_at"] - now > OVERLAP:
            return {"access_token": current["token"], "expires_in": int(current["expires_at"] - now)}
        token = "stable_" + secrets.token_urlsafe(96)
        if current:
            end = now if force_refresh else min(current["expires_at"], now + OVERLAP)
            conn.execute("UPDATE tokens SET retired_at = ? WHERE token = ?", (end, current["token"]))
        conn.execute(
            "INSERT INTO tokens (token, appid, issued_at, expires_at) VALUES (?, ?, ?, ?)",
            (token, appid, now, now + EXPIRES_IN),
        )
        conn.execute(
            "INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)",
            (key, json.dumps({"token": token, "expires_at": now + EXPIRES_IN})),
        )
    return {"access_token": token, "expires_in": EXPIRES_IN}


def check_token(sb, token: str | None) -> str:
    """The appid the token belongs to, or the error WeChat gives for it."""
    if not token:
        raise WeChatError(41001)
    row = sb.store.one("SELECT * FROM tokens WHERE token = ?", token)
    if row is None:
        raise WeChatError(40001 if len(token) > 100 else 40014)
    now = sb.now()
    if now >= row["expires_at"]:
        raise WeChatError(42001)
    if row["retired_at"] is not None and now >= row["retired_at"]:
        raise WeChatError(40001)
    return row["appid"]


def wechat_api(sb, api: str, app: str | None = None, token: bool = True):
    """Decorate a view of a WeChat JSON API: check the token, then quotas and faults.

    The view receives the caller's appid as its first argument. `app` ("oa" or "mp")
    restricts the API to one kind of account (48001 otherwise).
    """

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            appid = check_token(sb, request.args.get("access_token")) if token else request.args.get("appid", "")
            if app and token and app_kind(sb, appid) != app:
                raise WeChatError(48001)
            faults.guard(sb, api, appid, with_token=token)
            return view(appid, *args, **kwargs)

        return wrapper

    return decorate


def json_body() -> dict:
    """The request's JSON, however it was sent (wechatpy posts bytes with no content type)."""
    raw = request.get_data()
    if not raw.strip():
        raise WeChatError(44002)
    try:
        data = json.loads(raw)
    except ValueError:
        raise WeChatError(47001) from None
    if not isinstance(data, dict):
        raise WeChatError(47001)
    return data


def register(bp: Blueprint, sb) -> None:
    @bp.route("/cgi-bin/token")
    def token():
        if request.args.get("grant_type") != "client_credential":
            raise WeChatError(40002, "invalid grant_type")
        appid = request.args.get("appid")
        check_credentials(sb, appid, request.args.get("secret"))
        faults.guard(sb, "cgi-bin/token", appid, with_token=False)
        return jsonify(issue_token(sb, appid))

    @bp.route("/cgi-bin/stable_token", methods=["POST"])
    def stable_token():
        data = json_body()
        if data.get("grant_type") != "client_credential":
            raise WeChatError(40002, "invalid grant_type")
        appid = data.get("appid")
        check_credentials(sb, appid, data.get("secret"))
        faults.guard(sb, "cgi-bin/stable_token", appid, with_token=False)
        return jsonify(issue_stable_token(sb, appid, bool(data.get("force_refresh"))))
