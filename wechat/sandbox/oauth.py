"""Mini-program login (jscode2session) and web OAuth2 for H5 pages (WECHAT.md §6).

/connect/oauth2/authorize stands in for the consent screen: with `sandbox_openid` (any of a
user's openids) it redirects at once; without it, it shows a page to pick a user. Like
WeChat it first checks the request: the redirect_uri must be on the account's
web-authorisation domain (网页授权域名, the ``oauth_domain`` setting: the same full host name,
no parent or sibling domain; a port only when the setting names one), else the error page
with 10003; and `state` may only hold a-zA-Z0-9, at most 128 bytes.
"""
from __future__ import annotations

import html
import re
import secrets
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, jsonify, redirect, request

from . import faults, people
from .core import user_json
from .errors import ControlError, WeChatError
from .tokens import EXPIRES_IN, check_credentials

CODE_LIFETIME = 300
STATE = re.compile(r"[a-zA-Z0-9]{0,128}")


def _error_page(message: str, code: int | None = None) -> Response:
    """WeChat's in-app error page for a bad authorize request (shown, never redirected)."""
    detail = f"<p>错误码：{code}</p>" if code else ""
    body = ('<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>微信授权</title>'
            f"<body style='font-family:sans-serif;padding:16px'><h3>Oops! Something went wrong:(</h3>"
            f"<p>{html.escape(message)}</p>{detail}</body></html>")
    return Response(body, status=400, content_type="text/html; charset=utf-8")


def redirect_uri_problem(sb, redirect_uri: str) -> Response | None:
    """10003 unless redirect_uri is an http(s) URL on a configured web-authorisation domain."""
    parts = urlsplit(redirect_uri)
    host = (parts.hostname or "").lower()
    if parts.scheme in ("http", "https") and host:
        hostport = f"{host}:{parts.port}" if parts.port else host
        for domain in faults.oauth_domains(sb):
            domain = domain.lower()
            if (hostport if ":" in domain else host) == domain:
                return None
    return _error_page("redirect_uri域名与后台配置不一致", 10003)


def _use_code(sb, code: str | None, kind: str):
    """Spend a one-time code: 40029 unknown or expired, 40163 already used."""
    if not code:
        raise WeChatError(41008)
    now = sb.now()
    with sb.store.tx() as conn:
        row = conn.execute("SELECT * FROM codes WHERE code = ? AND kind = ?", (code, kind)).fetchone()
        if row is None or now - row["created_at"] > CODE_LIFETIME:
            raise WeChatError(40029)
        if row["used_at"] is not None:
            raise WeChatError(40163)
        conn.execute("UPDATE codes SET used_at = ? WHERE code = ?", (now, code))
    return row


def register(bp: Blueprint, sb) -> None:
    @bp.route("/sns/jscode2session")
    def jscode2session():
        appid = request.args.get("appid")
        check_credentials(sb, appid, request.args.get("secret"))
        if appid != sb.config["mp_appid"]:
            raise WeChatError(40013)
        faults.guard(sb, "sns/jscode2session", appid, with_token=False)
        row = _use_code(sb, request.args.get("js_code"), "jscode")
        user = sb.find_user(row["openid"])
        return jsonify({
            "openid": user["mp_openid"],
            "session_key": secrets.token_urlsafe(16)[:22] + "==",
            "unionid": user["unionid"],
        })

    @bp.route("/connect/oauth2/authorize")
    def authorize():
        args = request.args
        if not args.get("appid"):
            return _error_page("appid不能为空", 10012)
        if args["appid"] != sb.config["oa_appid"]:
            return _error_page("参数错误：appid 不正确")
        if not args.get("redirect_uri"):
            return _error_page("redirect_uri不能为空", 10011)
        problem = redirect_uri_problem(sb, args["redirect_uri"])
        if problem is not None:
            return problem
        if not STATE.fullmatch(args.get("state", "")):
            return _error_page("参数错误：state 只能是 a-zA-Z0-9，最多128字节")
        scope = args.get("scope", "snsapi_base")
        if scope not in ("snsapi_base", "snsapi_userinfo"):
            return _error_page("scope 参数错误")
        chosen = args.get("sandbox_openid")
        if not chosen:
            return _chooser(sb, args)
        user = sb.user_or_404(chosen)
        code = secrets.token_hex(16)
        sb.store.run(
            "INSERT INTO codes (code, kind, openid, scope, created_at) VALUES (?, 'oauth', ?, ?, ?)",
            code, user["oa_openid"], scope, sb.now(),
        )
        uri = args["redirect_uri"]
        separator = "&" if "?" in uri else "?"
        return redirect(uri + separator + urlencode({"code": code, "state": args.get("state", "")}))

    @bp.route("/users/<openid>/web")
    def open_pages(openid):
        """The sandbox page's "打开公众号页面" (and the links in a phone's messages): the backend's
        pages in this browser as that user — its web sign-in entry with ``next`` (``path`` on its
        site, default /me, or the path of a ``url`` on its site) and ``sandbox_openid``, so the
        sign-in goes through /connect/oauth2/authorize consenting as them (the browser's earlier
        sign-in, as somebody else, is replaced). A ``url`` elsewhere opens as it is."""
        user = sb.user_or_404(openid)
        path = request.args.get("path") or "/me"
        url = request.args.get("url")
        if url:   # a link from a message: on the backend's site through its sign-in, else as it is
            target, site = urlsplit(url), urlsplit(web_entry_url(sb))
            if target.scheme not in ("http", "https"):
                raise ControlError(400, "url must be an http(s) link")
            if (target.scheme, target.netloc) != (site.scheme, site.netloc):
                return redirect(url)
            path = target.path + (f"?{target.query}" if target.query else "")
        if not path.startswith("/") or path.startswith("//") or "\\" in path:
            raise ControlError(400, "path must be a path on the backend's site, e.g. /me")
        return redirect(f"{web_entry_url(sb)}?{urlencode({'next': path, 'sandbox_openid': user['oa_openid']})}")

    @bp.route("/sns/oauth2/access_token")
    def oauth_access_token():
        appid = request.args.get("appid")
        check_credentials(sb, appid, request.args.get("secret"))
        faults.guard(sb, "sns/oauth2/access_token", appid, with_token=False)
        row = _use_code(sb, request.args.get("code"), "oauth")
        user = sb.find_user(row["openid"])
        token = secrets.token_urlsafe(64)
        sb.store.run(
            "INSERT INTO web_tokens (token, openid, scope, expires_at) VALUES (?, ?, ?, ?)",
            token, user["oa_openid"], row["scope"], sb.now() + EXPIRES_IN,
        )
        answer = {
            "access_token": token, "expires_in": EXPIRES_IN, "refresh_token": secrets.token_urlsafe(64),
            "openid": user["oa_openid"], "scope": row["scope"],
        }
        if row["scope"] == "snsapi_userinfo":
            answer["unionid"] = user["unionid"]
        return jsonify(answer)

    def _web_token():
        row = sb.store.one("SELECT * FROM web_tokens WHERE token = ?", request.args.get("access_token", ""))
        if row is None:
            raise WeChatError(40001)
        if sb.now() >= row["expires_at"]:
            raise WeChatError(42001)
        if request.args.get("openid") and request.args["openid"] != row["openid"]:
            raise WeChatError(40003)
        return row

    @bp.route("/sns/userinfo")
    def userinfo():
        row = _web_token()
        if row["scope"] != "snsapi_userinfo":
            raise WeChatError(48001)
        user = user_json(sb.find_user(row["openid"]))
        return jsonify({
            "openid": user["openid"], "nickname": user["nickname"], "sex": 0, "province": "",
            "city": "", "country": "", "headimgurl": "", "privilege": [], "unionid": user["unionid"],
        })

    @bp.route("/sns/auth")
    def auth_check():
        _web_token()
        return jsonify({"errcode": 0, "errmsg": "ok"})


def web_entry_url(sb) -> str:
    """Where the backend starts its web sign-in (setting ``web_entry_url``, else on the
    callback URL's site)."""
    if sb.config.get("web_entry_url"):
        return sb.config["web_entry_url"]
    parts = urlsplit(sb.config["callback_url"])
    return f"{parts.scheme}://{parts.netloc}/h5/login"


CHOOSER_LIMIT = 50


def _chooser(sb, args) -> Response:
    """The consent screen's stand-in: search the simulated users (?q=, the other parameters
    kept), staff-looking nicknames first, at most CHOOSER_LIMIT of them."""
    q = args.get("q", "").strip()[: people.MAX_QUERY_LENGTH]
    rows = people.find_users(sb, q=q or None, limit=CHOOSER_LIMIT + 1, staff_first=True)
    more = len(rows) > CHOOSER_LIMIT
    kept = {key: value for key, value in args.items() if key not in ("q", "sandbox_openid")}
    links = "".join(
        f'<li><a href="?{html.escape(urlencode({**kept, "sandbox_openid": r["oa_openid"]}))}">'
        f'{html.escape(r["nickname"])}</a> <small>{"已关注" if r["subscribed"] else "未关注"} · '
        f'{html.escape(r["oa_openid"][:10])}…</small></li>'
        for r in rows[:CHOOSER_LIMIT]
    )
    if not links:
        links = (f"<li>没有昵称或 openid 含“{html.escape(q)}”的用户，换个关键词试试</li>" if q
                 else "<li>还没有模拟用户，请先在沙箱创建用户</li>")
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(key)}" value="{html.escape(value)}">' for key, value in kept.items()
    )
    note = (f"<p><small>只显示前 {CHOOSER_LIMIT} 位，请输入昵称或 openid 缩小范围。</small></p>" if more else "")
    body = (
        '<!doctype html><html lang="zh-CN"><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        "<title>微信授权（沙箱）</title><body style='font-family:sans-serif;padding:16px'>"
        "<h3>微信授权（沙箱模拟）</h3><p>沙箱模拟：选择以哪位微信用户身份授权</p>"
        f'<form method="get" action=""><input type="search" name="q" value="{html.escape(q)}" maxlength="64"'
        ' placeholder="搜索昵称或 openid，如 leader1、crew1_m1、张伟" style="width:70%;padding:6px">'
        f"{hidden} <button type=\"submit\">搜索</button></form>"
        f"<ul>{links}</ul>{note}</body></html>"
    )
    return Response(body, content_type="text/html; charset=utf-8")
