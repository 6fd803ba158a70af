"""回访任务 in the console: follow-up calls customer service owes residents (a rating of 2 or
less of a ticket or of a live-chat conversation, app/services/ratings.py). Listed here; a
ticket's also on its page, where recording the visit (回访) closes it; a conversation's is
recorded here."""
from __future__ import annotations

from flask import render_template, request

from app.models import FollowUpReason
from app.services import ratings
from app.web.console_base import actor, bp, done
from app.web.console_forms import FORM_PAGES

FORM_PAGES.update({"console.follow_up_visit": "console.follow_ups"})


@bp.app_template_global("open_follow_ups")
def open_follow_ups_of(ticket=None):
    return ratings.open_follow_ups(ticket)


@bp.route("/follow-ups")
def follow_ups():
    return render_template("console/follow_ups.html", rows=ratings.open_follow_ups(), reasons=FollowUpReason.LABELS)


@bp.route("/follow-ups/<int:task_id>/visit", methods=["POST"])
def follow_up_visit(task_id: int):
    """The visit of a low-rated conversation: its result closes the task."""
    ratings.record_conversation_visit(ratings.get_follow_up(task_id), actor(), request.form.get("result", ""))
    return done("回访结果已记录", "console.follow_ups")
