"""The staff console's blueprint and what every console page shares: the sign-in and role
guard (``auth.staff_guard`` with the console's policies), the template globals, the acting
staff member, commit-then-redirect.

The page modules (``console`` — sign-in, queue, tickets — and ``console_*``) import this one and
add their routes to ``bp``; ``console`` imports the others so that registering ``console.bp``
registers them all. Nothing here imports a page module, so the imports point one way.
"""
from __future__ import annotations

from datetime import datetime

from flask import Blueprint, flash, redirect, url_for
from markupsafe import Markup

from app import qrcodes
from app.clock import local_tz as tz  # the pages' time zone
from app.errors import ValidationError
from app.extensions import db
from app.models import Priority, Role, TicketCategory, TicketSource, TicketState, TicketType
from app.services import clusters as cluster_service
from app.services import staff_admin, staff_auth
from app.services.actors import Actor
from app.web import auth

__all__ = ["bp", "tz", "actor", "done", "parse_local_datetime", "qr_svg", "PAGE_SIZE"]

bp = Blueprint("console", __name__, url_prefix="/console")  # its error pages: console_forms

PUBLIC_ENDPOINTS = {"console.login"}
PAGE_SIZE = 20
# POSTs any console user may make (they change nothing of the business).
READ_ONLY_POSTS = {"console.logout", "console.audience_count", "console.affected_count"}


bp.before_request(auth.staff_guard(
    login_endpoint="console.login", public=PUBLIC_ENDPOINTS, answers_401=auth.wants_json,
    may_enter=staff_auth.can_use_console, may_change=staff_auth.can_change_console, read_only_posts=READ_ONLY_POSTS))


@bp.context_processor
def _globals():
    staff = auth.current_staff()
    return {**auth.template_globals(), "TicketState": TicketState, "TicketType": TicketType,
            "Priority": Priority, "TicketCategory": TicketCategory, "TicketSource": TicketSource,
            "Role": Role, "is_admin": staff_admin.can_manage_staff(staff),
            "open_cluster_count": cluster_service.open_cluster_count() if staff is not None else 0}


def actor() -> Actor:
    return Actor.of_staff(auth.current_staff())


def parse_local_datetime(value: str | None, field: str) -> datetime | None:
    """An <input type=datetime-local> value (Beijing time) as an aware datetime."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=tz())
    except ValueError:
        raise ValidationError("时间格式不正确", fields={field: ["时间格式不正确"]})


def done(message: str, endpoint: str, **values):
    """Commit once, tell the person, go back to a page (POST → redirect → GET)."""
    db.session.commit()
    flash(message, "ok")
    return redirect(url_for(endpoint, **values))


def qr_svg(data: str) -> Markup:
    return Markup(qrcodes.svg(data))
