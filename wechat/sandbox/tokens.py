"""access_token: issue, check, and the decorator every WeChat JSON API goes through.

The real rules (WECHAT.md §2, trap 2; doc/service/api/base/api_getstableaccesstoken):
- each GET /cgi-bin/token issues a new token valid for 7200 s and retires the previous ones of
  the appid after a 5-minute overlap — whoever else fetches one breaks yours;
- POST /cgi-bin/stable_token is a separate family, untouched by /cgi-bin/token: in normal mode
  (force_refresh false) it returns the same token while more than 5 minutes remain (with the
  seconds left as expires_in) and a new one in the last 5 minutes, the old one still valid
  until its end; force_refresh true retires the current token at once, at most 20 times a day
  (45009 beyond) and at least 30 s apart (sooner: nothing is refreshed, the current token is
  returned); JSON POST only (43002 otherwise), wrong secret 40125, 10,000 calls a minute and
  500,000 a day;
- both token endpoints refuse callers outside the IP whitelist (40164) when one is set
  (the sandbox's ``ip_whitelist`` setting or fault).
"""
from __future__ import annotations

import functools
import json
import secrets
from contextvars import ContextVar

from flask import Blueprint, jsonify, request

from . import faults
from .errors import WeChatError

EXPIRES_IN = 7200
OVERLAP = 300
FORCE_REFRESH_PER_DAY = 20
FORCE_REFRESH_INTERVAL = 30


def credentials(sb) -> dict[str, str]:
    c = sb.config
    return {c["oa_appid"]: c["oa_secret"], c["mp_appid"]: c["mp_secret"]}


def app_kind(sb, appid: str) -> str:
    return "oa" if appid == sb.config["oa_appid"] else "mp"


def check_credentials(sb, appid: str | None, secret: str | None, *, stable: bool = False) -> None:
    if not appid:
        raise WeChatError(41002)
    known = credentials(sb)
    if appid not in known:
        raise WeChatError(40013)
    if not secret:
        raise WeChatError(41004)
    if secret != known[appid]:
        if stable:  # stable_token's own error table says 40125
            raise WeChatError(40125)
        raise WeChatError(40001, "invalid credential, AppSecret error or access_token is invalid")


def caller_ip() -> str:
    return request.remote_addr or ""


def check_ip(sb) -> None:
    """40164 for a caller outside the IP whitelist, worded as WeChat words it."""
    allowed = faults.ip_whitelist(sb)
    if allowed is None:
        return
    ip = caller_ip()
    if ip not in allowed:
        shown = f"{ip} ipv6 ::ffff:{ip}" if ":" not in ip else ip
        raise WeChatError(40164, f"invalid ip {shown}, not in whitelist")


def _stable_key(appid: str) -> str:
    return f"stable_token:{appid}"


def issue_token(sb, appid: str) -> dict:
    now = sb.now()
    token = secrets.token_urlsafe(96)
    with sb.store.tx() as conn:
        # The previous /cgi-bin/token tokens die 5 minutes from now; the stable family is
        # another world (its current token is the only one of it not yet retired).
        row = conn.execute("SELECT value FROM kv WHERE key = ?", (_stable_key(appid),)).fetchone()
        stable = json.loads(row["value"])["token"] if row else ""
        conn.execute(
            "UPDATE tokens SET retired_at = ? WHERE appid = ? AND retired_at IS NULL AND token != ?",
            (now + OVERLAP, appid, stable),
        )
        conn.execute(
            "INSERT INTO tokens (token, appid, issued_at, expires_at) VALUES (?, ?, ?, ?)",
            (token, appid, now, now + EXPIRES_IN),
        )
        conn.execute("DELETE FROM tokens WHERE expires_at < ?", (now - 86400,))
    return {"access_token": token, "expires_in": EXPIRES_IN}


def issue_stable_token(sb, appid: str, force_refresh: bool) -> dict:
    now = sb.now()
    key = _stable_key(appid)
    day = sb.beijing_now().strftime("%Y-%m-%d")
    with sb.store.tx() as conn:
        row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        current = json.loads(row["value"]) if row else None
        valid = current is not None and current["expires_at"] > now

        def same() -> dict:
            return {"access_token": current["token"], "expires_in": int(current["expires_at"] - now)}

        if force_refresh:
            forced = current.get("forced", {}) if current else {}
            if valid and now - forced.get("last", float("-inf")) < FORCE_REFRESH_INTERVAL:
                return same()  # "连续使用该模式时……间隔至少为30s，否则不会刷新"
            if forced.get("day") == day and forced.get("count", 0) >= FORCE_REFRESH_PER_DAY:
                raise WeChatError(45009)
            forced = {"day": day, "count": (forced.get("count", 0) if forced.get("day") == day else 0) + 1,
                      "last": now}
        else:
            # The platform renews in the last 5 minutes; until then the same token.
            if valid and current["expires_at"] - now > OVERLAP:
                return same()
            forced = current.get("forced", {}) if current else {}
        token = secrets.token_urlsafe(96)
        if current:
            end = now if force_refresh else min(current["expires_at"], now + OVERLAP)
            conn.execute("UPDATE tokens SET retired_at = ? WHERE token = ?", (end, current["token"]))
        conn.execute(
            "INSERT INTO tokens (token, appid, issued_at, expires_at) VALUES (?, ?, ?, ?)",
            (token, appid, now, now + EXPIRES_IN),
        )
        conn.execute(
            "INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)",
            (key, json.dumps({"token": token, "expires_at": now + EXPIRES_IN, "forced": forced})),
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


def wechat_api(sb, api: str, app: str | None = None, token: bool = True, counted_by_view: bool = False):
    """Decorate a view of a WeChat JSON API: check the token, then quotas and faults.

    The view receives the caller's appid as its first argument. `app` ("oa" or "mp")
    restricts the API to one kind of account (48001 otherwise). ``counted_by_view``: the
    view counts the call itself with ``count_pending`` in the write transaction it takes
    anyway (one write per call); it must do so before any write of its own.
    """

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            with sb.snapshot():
                appid = check_token(sb, request.args.get("access_token")) if token else request.args.get("appid", "")
                if app and token and app_kind(sb, appid) != app:
                    raise WeChatError(48001)
                if not counted_by_view:
                    faults.guard(sb, api, appid, with_token=token)
                    return view(appid, *args, **kwargs)
                faults.guard(sb, api, appid, with_token=token, count=False)
                pending = _PENDING.set((api, appid))
                try:
                    return view(appid, *args, **kwargs)
                except Exception:
                    # Refused before it counted the call: count it now; 45011/45009 outrank
                    # the view's own error, as if counted first.
                    over = _count_if_pending(sb)
                    if over:
                        raise WeChatError(over) from None
                    raise
                finally:
                    _count_if_pending(sb)
                    _PENDING.reset(pending)

        return wrapper

    return decorate


_PENDING: ContextVar[tuple[str, str] | None] = ContextVar("sandbox_uncounted_call", default=None)


def count_pending(sb, conn) -> int | None:
    """In a ``counted_by_view`` view's write transaction: count the call (45011/45009 when it
    is over its limit: the view commits the count, writes nothing else and raises it)."""
    pending = _PENDING.get()
    if pending is None:
        return None
    _PENDING.set(None)
    return faults.count_call(sb, conn, pending[0], pending[1])


def _count_if_pending(sb) -> int | None:
    if _PENDING.get() is None:
        return None
    with sb.store.tx() as conn:
        return count_pending(sb, conn)


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
        check_ip(sb)
        faults.guard(sb, "cgi-bin/token", appid, with_token=False)
        return jsonify(issue_token(sb, appid))

    @bp.route("/cgi-bin/stable_token", methods=["GET", "POST"])
    def stable_token():
        if request.method != "POST":
            raise WeChatError(43002, "require POST method")
        data = json_body()
        if data.get("grant_type") != "client_credential":
            raise WeChatError(40002, "invalid grant_type")
        appid = data.get("appid")
        check_credentials(sb, appid, data.get("secret"), stable=True)
        check_ip(sb)
        faults.guard(sb, "cgi-bin/stable_token", appid, with_token=False)
        # A JSON boolean, as documented: only true forces a refresh.
        return jsonify(issue_stable_token(sb, appid, data.get("force_refresh") is True))
