"""停热 and 公告: outage notices (``/outages/<id>``, and ``/outages`` — those touching my bound
addresses) and announcements (``/announcements/<id>``, for the people in its audience).

An outage notice is public information about an area, so any signed-in person may open one;
the page says whether it touches their own households. An announcement is shown to the people
of its audience only (``access.may_see_announcement``): anyone else gets a polite refusal.
"""
from __future__ import annotations

from flask import render_template

from app.errors import NotFoundError, PermissionDeniedError
from app.extensions import db
from app.models import Announcement, Outage, OutageKind, OutageStatus
from app.services import access, binding, outages as outage_service
from app.web.h5.core import current_wechat_user, h5_blueprint, h5_login_required

bp = h5_blueprint("h5_outages", __name__)
announcements_bp = h5_blueprint("h5_announcements", __name__)


def _labels() -> dict:
    return {"kinds": OutageKind.LABELS, "statuses": OutageStatus.LABELS, "area_text": outage_service.area_text}


@bp.route("/outages")
@h5_login_required
def my_outages():
    user = current_wechat_user()
    households = binding.bound_households(user)
    return render_template("h5/outages.html", households=households,
                           found=access.outages_of(user, households), **_labels())


@bp.route("/outages/<int(max=2147483647):outage_id>")
@h5_login_required
def outage(outage_id: int):
    user = current_wechat_user()
    row = db.session.get(Outage, outage_id)
    if row is None:
        raise NotFoundError("该停热通知不存在或已被删除", code="outage_not_found")
    mine = [h for o, hs in access.outages_of(user) if o.id == row.id for h in hs]
    return render_template("h5/outage.html", outage=row, mine=mine, **_labels())


@announcements_bp.route("/announcements/<int(max=2147483647):announcement_id>")
@h5_login_required
def announcement(announcement_id: int):
    user = current_wechat_user()
    row = db.session.get(Announcement, announcement_id)
    if row is None or row.status not in access.PUBLISHED:
        raise NotFoundError("该公告不存在或已撤回", code="announcement_not_found")
    if not access.may_see_announcement(user, row):
        raise PermissionDeniedError("这条公告只发给部分住户，您不在发送范围内，无法查看。如有疑问请联系客服。",
                                    code="announcement_forbidden")
    return render_template("h5/announcement.html", announcement=row)
