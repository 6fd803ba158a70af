"""Sessions, CSRF and roles for the web pages (the rules are in app.services.staff_auth).

The signed-in staff member's id is kept in Flask's signed session cookie and reloaded on
every request, so deactivating someone or changing their role takes effect at once. Every
state-changing request (POST) must carry the session's CSRF token, as a form field
``csrf_token`` or an ``X-CSRF-Token`` header.
"""
from __future__ import annotations

from flask import abort, request, session
from markupsafe import Markup

from app.services import staff_auth

SESSION_STAFF = "staff_id"
SESSION_CSRF = "csrf"


def sign_in(staff) -> None:
    """A fresh session for this person (no fixation: old contents are dropped)."""
    session.clear()
    session[SESSION_STAFF] = staff.id
    session[SESSION_CSRF] = staff_auth.new_csrf_token()
    session.permanent = False


def sign_out() -> None:
    session.clear()


def current_staff():
    """The signed-in staff member for this request (looked up once per request)."""
    cache = request.environ
    if "web.staff" not in cache or cache.get("web.staff_id") != session.get(SESSION_STAFF):
        cache["web.staff_id"] = session.get(SESSION_STAFF)
        cache["web.staff"] = staff_auth.active_staff(session.get(SESSION_STAFF))
    return cache["web.staff"]


def csrf_token() -> str:
    token = session.get(SESSION_CSRF)
    if not token:
        token = session[SESSION_CSRF] = staff_auth.new_csrf_token()
    return token


def csrf_field() -> Markup:
    return Markup(f'<input type="hidden" name="csrf_token" value="{csrf_token()}">')


def check_csrf(req) -> None:
    if req.method in ("GET", "HEAD", "OPTIONS"):
        return
    given = req.form.get("csrf_token") or req.headers.get("X-CSRF-Token")
    if not staff_auth.csrf_matches(session.get(SESSION_CSRF), given):
        abort(400, description="csrf")


def template_globals() -> dict:
    staff = current_staff()
    return {
        "me": staff,
        "csrf_field": csrf_field,
        "csrf_token": csrf_token,
        "can_change": staff_auth.can_change_console(staff),
    }
