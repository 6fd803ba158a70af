"""The leader dashboard (/dashboard): a mobile page with live figures.

Sign-in: WeChat web OAuth (snsapi_base) → the openid's staff member must be a leader or an
admin; on a desktop, a leader may also use the console's password sign-in.

Live updates: ``/dashboard/stream`` is a server-sent-events stream. It checks a cheap
change stamp (``metrics.summary_stamp``) every ``DASHBOARD_POLL_SECONDS`` and pushes the
summary when the stamp moved (the summary itself is cached in Redis per stamp, so all
viewers and processes share one computation). A stream holds one gunicorn thread, so it
ends after ``DASHBOARD_SSE_MAX_SECONDS``; the browser's EventSource reconnects by itself
(``retry:``) and sends Last-Event-ID, so nothing is pushed twice. No database connection is
held between polls.
"""
from __future__ import annotations

import json
import time

from flask import (
    Blueprint, Response, abort, current_app, jsonify, redirect, render_template, request, session,
    stream_with_context, url_for,
)

from app.extensions import db
from app.links import public_url
from app.models import Priority, Ticket, TicketCategory, TicketSource, TicketState, TicketType
from app.phones import masked
from app.services.privacy import mask_name
from app.services import metrics, staff_auth
from app.services import tickets as ticket_service
from app.web import auth
from app.web.error_pages import common_page, install_error_pages
from app.web.redirects import safe_next
from wechat.web_oauth import OAuthError, authorize_url, new_state, openid_for_code

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")
install_error_pages(bp, common_page)

PUBLIC_ENDPOINTS = {"dashboard.login", "dashboard.oauth_callback"}
HEARTBEAT_SECONDS = 15


PUSHED_ENDPOINTS = {"dashboard.stream", "dashboard.summary_json"}   # the wall's scripts: 401, never a redirect

bp.before_request(auth.staff_guard(
    login_endpoint="dashboard.login", public=PUBLIC_ENDPOINTS, may_enter=staff_auth.can_see_dashboard,
    answers_401=lambda req: req.endpoint in PUSHED_ENDPOINTS))


@bp.context_processor
def _globals():
    return {**auth.template_globals(), "TicketState": TicketState, "TicketType": TicketType,
            "TicketCategory": TicketCategory, "TicketSource": TicketSource, "Priority": Priority}


@bp.route("/login")
def login():
    """Inside WeChat: straight through WeChat's (silent, snsapi_base) consent; elsewhere a page
    offering WeChat or the console's password sign-in."""
    state = new_state()
    session["oauth_state"] = state
    session["oauth_next"] = safe_next(request.args.get("next"))
    target = authorize_url(public_url(url_for("dashboard.oauth_callback")), state,
                           sandbox_openid=request.args.get("sandbox_openid"))
    in_wechat = "MicroMessenger" in (request.user_agent.string or "")
    if in_wechat or request.args.get("sandbox_openid"):
        return redirect(target)
    return render_template("dashboard/login.html", authorize=target,
                           password_login=url_for("console.login", next=url_for("dashboard.index")))


@bp.route("/oauth")
def oauth_callback():
    state, code = request.args.get("state"), request.args.get("code")
    expected = session.pop("oauth_state", None)
    next_url = safe_next(session.pop("oauth_next", None)) or url_for("dashboard.index")
    if not code or not staff_auth.csrf_matches(expected, state):
        return render_template("common/error.html", status=400,
                               message="授权已失效，请从公众号菜单重新打开", fields=None), 400
    try:
        openid = openid_for_code(code)
    except OAuthError as exc:
        return render_template("common/error.html", status=502, message=str(exc), fields=None), 502
    staff = staff_auth.staff_for_openid(openid)
    if not staff_auth.can_see_dashboard(staff):
        return render_template("common/error.html", status=403,
                               message="您的微信未绑定公司领导账号，无权查看运营看板", fields=None), 403
    auth.sign_in(staff)
    return redirect(next_url)


@bp.route("/logout", methods=["POST"])
def logout():
    auth.sign_out()
    return render_template("common/error.html", status=200, message="已退出登录", fields=None)


@bp.route("/")
def index():
    if request.args.get("mode") == "wall":
        return redirect(url_for("dashboard.wall"))
    stamp, summary = metrics.cached_summary(current_app.extensions["redis"])
    return render_template("dashboard/index.html", summary=summary, stamp=stamp, mode="normal")


@bp.route("/wall")
def wall():
    """The control-room mode: 1920×1080, big figures, panels that take turns, live."""
    stamp, summary = metrics.cached_summary(current_app.extensions["redis"])
    return render_template("dashboard/wall.html", summary=summary, stamp=stamp, mode="wall",
                           rotate_seconds=current_app.config["DASHBOARD_WALL_ROTATE_SECONDS"])


@bp.route("/tickets/<int:ticket_id>")
def ticket(ticket_id: int):
    """One ticket with its whole timeline, as a leader reads it on a phone."""
    t = db.session.get(Ticket, ticket_id)
    if t is None:
        abort(404)
    # Leaders read the case, not the person: name and phone masked as in every list.
    caller = " ".join(p for p in (mask_name(t.caller_name), masked(t.caller_phone)) if p) or "—"
    return render_template("dashboard/ticket.html", t=t, deadlines=metrics.ticket_deadlines(t), caller=caller,
                           event_labels=ticket_service.EVENT_LABELS, back=request.referrer)


@bp.route("/summary.json")
def summary_json():
    stamp, summary = metrics.cached_summary(current_app.extensions["redis"])
    return jsonify(stamp=stamp, summary=summary)


@bp.route("/stream")
def stream():
    cfg = current_app.config
    max_seconds = float(cfg["DASHBOARD_SSE_MAX_SECONDS"])
    poll = float(cfg["DASHBOARD_POLL_SECONDS"])
    redis = current_app.extensions["redis"]
    last_seen = request.headers.get("Last-Event-ID")

    def events():
        nonlocal last_seen
        started = last_beat = time.monotonic()
        yield f"retry: {int(poll * 1000)}\n\n"
        while True:
            try:
                stamp = metrics.summary_stamp()
                if stamp != last_seen:
                    stamp, summary = metrics.cached_summary(redis, stamp)
                    last_seen = stamp
                    yield f"id: {stamp}\nevent: summary\ndata: {json.dumps(summary, ensure_ascii=False)}\n\n"
                    last_beat = time.monotonic()
            finally:
                db.session.remove()  # hold no connection while sleeping
            now = time.monotonic()
            if now - started >= max_seconds:
                yield "event: bye\ndata: {}\n\n"  # the browser reconnects after `retry`
                return
            if now - last_beat >= HEARTBEAT_SECONDS:
                yield ": ping\n\n"
                last_beat = now
            time.sleep(poll)

    return Response(stream_with_context(events()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@bp.route("/list/<figure>")
@bp.route("/list/<figure>/<key>")
def drill(figure: str, key: str | None = None):
    page = request.args.get("page", 1, type=int)
    result = metrics.drill(figure, key, page=page)
    if result is None:
        abort(404)
    return render_template("dashboard/list.html", result=result, figure=figure, key=key)
