"""What every official-account page shares: the blueprint factory, the WeChat sign-in
session, the login decorator, error pages in the pages' layout.

A sign-in (``sign_in_wechat``) opens a login family (``app.services.sessions``, the same
revocable rows the mini-program's tokens name) and keeps its id in Flask's signed session
cookie (``SESSION_COOKIE_*`` settings). Every request looks the family up, so a revoked family
(staff deactivated, WeChat unbound) signs the page out at once, and a merge of two WeChat
identities keeps the sign-in for the surviving person.
"""
from __future__ import annotations

import functools

from flask import Blueprint, g, redirect, render_template, request, session, url_for
from marshmallow import ValidationError as SchemaError

from app.errors import UnauthorizedError, ValidationError
from app.extensions import db
from app.http_limits import limit_blueprint
from app.models import Staff, WechatUser
from app.services import access, sessions, staff_auth
from app.web import WEB_BODY_BYTES, auth
from app.web.error_pages import PageWords, install_error_pages
from wechat.web_oauth import is_real_wechat

PAGE_FIELDS = ("csrf_token", "back")   # a form's own fields (CSRF token, where to go back), not the action's
SESSION_KEY = "h5_sid"          # the login family's id, in the signed cookie
HOME_ENDPOINT = "h5_me.me"      # where a sign-in without a `next` lands

# Bottom navigation: (label, path, the endpoints' blueprint prefix that lights it up).
NAV = (("缴费", "/pay", "h5_pay"), ("报修", "/report", "h5_report"), ("工单", "/t", "h5_tickets"),
       ("我的", "/me", "h5_me"))


def h5_blueprint(name: str, import_name: str, **kw) -> Blueprint:
    """A blueprint for official-account pages: CSRF on every POST, the pages' error layout,
    the template globals (``me``, ``csrf_field``, ``nav``, ``sandbox``), forms-sized bodies
    (a view taking photos sets its own ``@body_limit``)."""
    bp = Blueprint(name, import_name, **kw)
    limit_blueprint(bp, WEB_BODY_BYTES)
    bp.before_request(_forget_user)
    bp.before_request(_check_csrf)
    bp.context_processor(template_globals)
    install_error_pages(bp, _h5_error_page, words=H5_WORDS)
    return bp


def _forget_user():
    """Who is asking is looked up per request (an app context — a test's — may outlive one)."""
    g.pop("h5_user", None)


def _check_csrf():
    auth.check_csrf(request)


def template_globals() -> dict:
    return {
        "me": current_wechat_user(),
        "csrf_field": auth.csrf_field,
        "csrf_token": auth.csrf_token,
        "nav": NAV,
        "sandbox": not is_real_wechat(),
    }


# --- who is asking --------------------------------------------------------------------------------

def current_wechat_user() -> WechatUser | None:
    """The signed-in WeChat user of this request (looked up once), or None."""
    if "h5_user" not in g:
        g.h5_user = None
        family_id = session.get(SESSION_KEY)
        if isinstance(family_id, int):
            try:
                _, g.h5_user = sessions.api_session_user(family_id)
            except UnauthorizedError:
                session.pop(SESSION_KEY, None)
    return g.h5_user


def current_crew_staff() -> Staff | None:
    """The active crew member (or crew lead) behind the signed-in WeChat, or None."""
    user = current_wechat_user()
    staff = user.staff if user is not None else None
    return staff if access.is_crew(staff) else None


def sign_in_wechat(user: WechatUser) -> None:
    """Open a fresh sign-in for ``user`` (committed); a sign-in the cookie held is ended."""
    old = session.get(SESSION_KEY)
    if isinstance(old, int):
        try:
            family, _ = sessions.api_session_user(old)
            sessions.revoke_api_session(family, "replaced")
        except UnauthorizedError:
            pass
    family = sessions.open_api_session(user)
    db.session.commit()
    session[SESSION_KEY] = family.id
    session[auth.SESSION_CSRF] = staff_auth.new_csrf_token()
    g.pop("h5_user", None)


def sign_out_wechat() -> None:
    family_id = session.pop(SESSION_KEY, None)
    if isinstance(family_id, int):
        try:
            family, _ = sessions.api_session_user(family_id)
            sessions.revoke_api_session(family, "logout")
            db.session.commit()
        except UnauthorizedError:
            pass
    g.pop("h5_user", None)


def login_url(next_path: str | None = None) -> str:
    """Where to start WeChat's web authorisation, coming back to ``next_path`` (this page)."""
    if next_path is None:
        next_path = request.full_path if request.query_string else request.path
    return url_for("h5.login", next=next_path)


def h5_login_required(view):
    """Pages for signed-in WeChat users: without a sign-in, a GET goes through WeChat's
    authorisation and comes back; a POST (its sign-in ended meanwhile) gets a page asking to
    open it again (its form is not replayed)."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if current_wechat_user() is None:
            if request.method in ("GET", "HEAD"):
                return redirect(login_url())
            return h5_error(401, "登录已过期，请重新打开页面后再操作", again=login_url(request.path))
        return view(*args, **kwargs)

    return wrapped


def load_form(schema, *, exclude=()) -> dict:
    """The posted form checked with an API argument schema (the same limits as the API);
    empty fields and the page's own (``PAGE_FIELDS``) count as left out. A ``ValidationError``
    (Chinese 400 page) otherwise."""
    data = {key: value for key, value in request.form.items() if key not in PAGE_FIELDS and value != ""}
    try:
        return schema(exclude=exclude).load(data)
    except SchemaError as exc:
        raise ValidationError("填写有误，请检查后重试", fields={
            name: messages if isinstance(messages, list) else [str(messages)]
            for name, messages in exc.normalized_messages().items()}) from exc


# --- error pages ----------------------------------------------------------------------------------

def h5_error(status: int, message: str, *, fields: dict | None = None, again: str | None = None,
             title: str | None = None):
    """A Chinese error page in the pages' layout (never JSON)."""
    return render_template("h5/error.html", status=status, message=message, fields=fields, again=again,
                           title=title), status


# Where the pages' words differ from the console's.
H5_WORDS = PageWords(csrf="页面已过期或来源不明（安全校验失败），请返回刷新页面后重试",
                     too_large="上传的内容太大，请减少照片数量或压缩后再试", unexpected="系统繁忙，请稍后再试")


def _h5_error_page(status: int, message: str, fields: dict | None = None):
    return h5_error(status, message, fields=fields)
