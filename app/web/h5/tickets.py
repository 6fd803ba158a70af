"""工单 and 报修: a resident's tickets (``/t``, ``/t/<工单号>``) and reporting a repair (``/report``).

The same services and rules as the mini-program's API (``mobile_api.residents``): who sees a
ticket is ``app.services.access``; reporting is ``tickets.create_ticket`` with the API's
``RepairArgs`` and its photo rules (``uploads``: content checked by Pillow, size limited while
the body is read; a refused photo stores nothing); cancelling, rating and "still cold" are the
ticket services, which check the person and the state again.
"""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, send_file, url_for
from sqlalchemy import func, select

from app.errors import DomainError
from app.extensions import db
from app.http_limits import body_limit
from app.models import Ticket, TicketCategory, TicketPhoto, TicketSource, TicketState, TicketType
from app.services import access, binding, outage_linking, outages as outage_service, ratings, tickets, uploads
from app.services.actors import Actor, ActorKind
from app.web.h5.core import current_wechat_user, h5_blueprint, h5_login_required, load_form
from mobile_api.schemas import CancelArgs, RateArgs, RepairArgs, StillColdArgs

bp = h5_blueprint("h5_tickets", __name__)
report_bp = h5_blueprint("h5_report", __name__)

PER_PAGE = 10
# What a resident chooses from when reporting (the rest are for staff and the phone system).
REPORT_CATEGORIES = (TicketCategory.NO_HEAT, TicketCategory.LOW_TEMPERATURE, TicketCategory.LEAK, TicketCategory.BURST_PIPE,
                     TicketCategory.RADIATOR, TicketCategory.VALVE, TicketCategory.NOISE, TicketCategory.OTHER)



# --- 工单 ----------------------------------------------------------------------------------------

@bp.route("/t")
@h5_login_required
def my_tickets():
    user = current_wechat_user()
    page = max(1, request.args.get("page", 1, type=int) or 1)
    query = access.visible_tickets(user)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max(1, -(-total // PER_PAGE))
    page = min(page, pages)
    rows = list(db.session.scalars(query.order_by(Ticket.created_at.desc(), Ticket.id.desc())
                                   .limit(PER_PAGE).offset((page - 1) * PER_PAGE)))
    return render_template("h5/tickets.html", tickets=rows, page=page, pages=pages, total=total,
                           states=TicketState.LABELS, categories=TicketCategory.LABELS)


@bp.route("/t/<string:number>")
@h5_login_required
def ticket(number: str):
    user = current_wechat_user()
    found = access.ticket_numbered(user, number)
    return _detail(user, found)


def _detail(user, found, *, form_errors: dict | None = None, status: int = 200):
    outage_note = None
    if tickets.waits_on_outage(found):
        outage = found.outage
        if outage.status == outage_service.OutageStatus.RESTORED:
            outage_note = (f"已于{outage_service.local_time(outage.actual_end_at)}恢复供热。如"
                           f"{outage_service.local_time(outage_service.still_cold_until(outage))}前家中仍不热，"
                           "请点击“还冷”，我们将派维修人员上门。")
        else:
            outage_note = outage_service.linked_message(outage)
    photos = [p for p in found.photos if p.uploaded_by_kind == ActorKind.RESIDENT and p.path]
    return render_template(
        "h5/ticket.html", ticket=found, photos=photos, outage_note=outage_note,
        events=sorted(found.events, key=lambda e: (e.created_at, e.id)),
        labels=tickets.EVENT_LABELS, states=TicketState.LABELS, categories=TicketCategory.LABELS,
        can_cancel=access.can_cancel(user, found), can_rate=access.can_rate(user, found),
        can_still_cold=access.can_report_still_cold(user, found), form_errors=form_errors or {},
    ), status


def _locked(number: str):
    user = current_wechat_user()
    found = access.ticket_numbered(user, number)
    return user, access.ticket_of(user, found.id, for_update=True)


def _back(number: str, message: str):
    flash(message, "success")
    return redirect(url_for("h5_tickets.ticket", number=number), code=303)


@bp.route("/t/<string:number>/cancel", methods=["POST"])
@h5_login_required
def cancel(number: str):
    user, found = _locked(number)
    args = load_form(CancelArgs)
    tickets.cancel_ticket(found, Actor.of_resident(user), args["reason"])
    db.session.commit()
    return _back(number, "报修已撤销")


@bp.route("/t/<string:number>/rate", methods=["POST"])
@h5_login_required
def rate(number: str):
    user, found = _locked(number)
    args = load_form(RateArgs)
    ratings.rate_ticket(found, args["rating"], args["comment"], source=ratings.RatingSource.PAGE, by=user)
    db.session.commit()
    return _back(number, "感谢您的评价")


@bp.route("/t/<string:number>/still-cold", methods=["POST"])
@h5_login_required
def still_cold(number: str):
    user, found = _locked(number)
    args = load_form(StillColdArgs)
    outage_linking.report_still_cold(found, Actor.of_resident(user), note=args["note"])
    db.session.commit()
    return _back(number, "已收到您的反馈，我们将尽快安排维修人员上门")


@bp.route("/t/<string:number>/photos/<int(max=2147483647):photo_id>")
@h5_login_required
def photo(number: str, photo_id: int):
    user = current_wechat_user()
    found = access.ticket_numbered(user, number)
    row = db.session.get(TicketPhoto, photo_id)
    if row is None or row.ticket_id != found.id or not access.may_see_photo(user, row):
        abort(404)
    path = uploads.stored_file(row.path)
    if path is None:
        abort(404)
    return send_file(path, mimetype=row.content_type or "application/octet-stream", max_age=3600)


# --- 报修 ----------------------------------------------------------------------------------------

@report_bp.route("/report", methods=["GET"])
@h5_login_required
def report_form():
    user = current_wechat_user()
    return _report_page(binding.bound_households(user), {})


def _report_page(households, form: dict, error: DomainError | None = None, status: int = 200):
    return render_template("h5/report.html", households=households, form=form, error=error,
                           categories=[(c, TicketCategory.LABELS[c]) for c in REPORT_CATEGORIES],
                           max_photos=uploads.MAX_PHOTOS, max_mb=uploads.MAX_BYTES // (1024 * 1024)), status


@report_bp.route("/report", methods=["POST"])
@body_limit(uploads.MAX_REQUEST_BYTES, per_file=uploads.MAX_BYTES)
@h5_login_required
def report():
    user = current_wechat_user()
    households = binding.bound_households(user)
    form = {key: request.form.get(key, "") for key in ("household_id", "category", "description", "location")}
    files = [f for f in request.files.getlist("photos") if f and f.filename]
    photos = []
    try:
        args = load_form(RepairArgs, exclude=("photos",))
        household = access.household_of(user, args["household_id"])
        photos = uploads.photo_inputs(files)
        ticket_row = tickets.create_ticket(
            Actor.of_resident(user), type=TicketType.REPAIR, source=TicketSource.OFFICIAL_ACCOUNT,
            description=args["description"], category=args["category"], household=household,
            address=(f"{household.address} {args['location']}" if args["location"] else None),
            latitude=args["latitude"], longitude=args["longitude"], photos=photos)
    except DomainError as exc:   # bad input, a refused photo: nothing kept, the form shown again
        db.session.rollback()
        uploads.remove_stored([p.path for p in photos])
        return _report_page(households, form, exc, exc.status)
    uploads.commit_or_forget(db.session, photos)
    flash("报修已提交" if not ticket_row.outage_id else outage_service.linked_message(ticket_row.outage), "success")
    return redirect(url_for("h5_tickets.ticket", number=ticket_row.number), code=303)
