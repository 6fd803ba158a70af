"""回访任务 in the console: follow-up calls customer service owes residents (a rating of 2 or
less, app/services/ratings.py). Listed here and on each ticket's page; recording the visit on
the ticket page (回访) closes them."""
from __future__ import annotations

from flask import render_template

from app.models import FollowUpReason
from app.services import ratings
from app.web.console import bp


@bp.app_template_global("open_follow_ups")
def open_follow_ups_of(ticket=None):
    return ratings.open_follow_ups(ticket)


@bp.route("/follow-ups")
def follow_ups():
    return render_template("console/follow_ups.html", rows=ratings.open_follow_ups(), reasons=FollowUpReason.LABELS)
