"""Sessions, CSRF and roles for the web pages (the rules are in app.services.staff_auth and
app.services.sessions).

A sign-in opens a server-side session (``StaffSession``) whose random key is kept in Flask's
signed session cookie; every request looks the key up, with the staff member, so signing out,
a deactivation, a password reset or a role change takes effect at once — a copy of the cookie
opens nothing after that. Every state-changing request (POST) must carry the session's CSRF
token, as a form field ``csrf_token`` or an ``X-CSRF-Token`` header.
"""
from __future__ import annotations

from collections.abc import Callable, Collection

from flask import Request, abort, redirect, request, session, url_for
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


def wants_json(req: Request) -> bool:
    """A script asking (JSON preferred, or a ``.json`` address), not a person's browser."""
    return req.accept_mimetypes.best == "application/json" or req.path.endswith(".json")


def staff_guard(*, login_endpoint: str, public: Collection[str], may_enter: Callable,
                answers_401: Callable[[Request], bool], may_change: Callable | None = None,
                read_only_posts: Collection[str] = ()) -> Callable:
    """The ``before_request`` of a staff area (console, dashboard), its policies as arguments.

    Every POST carries the CSRF token (400 otherwise). Outside the ``public`` endpoints the
    caller is a signed-in staff member — else 401 where ``answers_401(request)`` (a script
    asking), the sign-in page ``login_endpoint`` with ``next`` for a person — whom
    ``may_enter(staff)`` lets in (403 otherwise); with ``may_change``, a POST outside
    ``read_only_posts`` also needs ``may_change(staff)`` (403: read-only roles).
    """

    def guard():
        check_csrf(request)
        if request.endpoint in public:
            return None
        staff = current_staff()
        if staff is None:
            if answers_401(request):
                abort(401)
            return redirect(url_for(login_endpoint, next=request.full_path))
        if not may_enter(staff):
            abort(403)
        if may_change is not None and request.method == "POST" and request.endpoint not in read_only_posts \
                and not may_change(staff):
            abort(403)
        return None

    return guard


def template_globals() -> dict:
    staff = current_staff()
    return {
        "me": staff,
        "csrf_field": csrf_field,
        "csrf_token": csrf_token,
        "can_change": staff_auth.can_change_console(staff),
    }
