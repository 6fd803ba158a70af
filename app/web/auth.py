"""Sessions, CSRF and roles for the web pages (the rules are in app.services.staff_auth and
app.services.sessions).

A sign-in opens a server-side session (``StaffSession``) whose random key is kept in Flask's
signed session cookie; every request looks the key up, with the staff member, so signing out,
a deactivation, a password reset or a role change takes effect at once — a copy of the cookie
opens nothing after that. Every state-changing request (POST) must carry the session's CSRF
token, as a form field ``csrf_token`` or an ``X-CSRF-Token`` header.
"""
from __future__ import annotations

from flask import abort, request, session
from markupsafe import Markup

from app.extensions import db
from app.services import sessions, staff_auth

SESSION_KEY = "sid"
SESSION_CSRF = "csrf"


def sign_in(staff) -> None:
    """A fresh server-side session for this person, committed (no fixation: the cookie's old
    contents are dropped, and a session it named is ended)."""
    sessions.end_staff_session(session.get(SESSION_KEY), "replaced")
    key = sessions.open_staff_session(staff)
    db.session.commit()
    session.clear()
    session[SESSION_KEY] = key
    session[SESSION_CSRF] = staff_auth.new_csrf_token()
    session.permanent = False


def sign_out() -> None:
    """End the session on the server (committed) and forget the cookie."""
    sessions.end_staff_session(session.get(SESSION_KEY), "logout")
    db.session.commit()
    session.clear()


def current_staff():
    """The signed-in staff member for this request (looked up once per request)."""
    cache = request.environ
    if "web.staff" not in cache or cache.get("web.session_key") != session.get(SESSION_KEY):
        cache["web.session_key"] = session.get(SESSION_KEY)
        cache["web.staff"] = sessions.staff_for_session(session.get(SESSION_KEY))
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
