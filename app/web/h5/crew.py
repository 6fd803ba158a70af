"""Crew pages inside WeChat: the task a work order's QR code or a crew push opens, and the inbox.

    GET  /mp/task?id=<ticket id>&no=<number>     the task (the work-order QR URL, ``app.web.console.task_url``)
    GET  /mp/tasks                               my tasks still to do, soonest deadline first
    POST /mp/tasks/<id>/accept | notes | reply | forward | defect      the crew API's actions
    POST /mp/location                            where I am (browser geolocation, or typed in)

The same rules as the crew API (``mobile_api.crews``): who sees which task is
``app.services.access`` (assigned or forwarded to them; a crew lead also their crew's), every
change goes through ``app.services.tickets`` with ``Actor.of_staff`` and is committed once, the
forms are checked with the API's argument schemas, photos with the API's upload rules. A
resident, an inactive staff member, or a crew member of another crew opening a task link gets a
polite refusal page, never the task.
"""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, send_file, url_for
from sqlalchemy import select

from app.errors import NotFoundError, ValidationError
from app.extensions import db
from app.http_limits import body_limit
from app.models import Crew, Priority, Staff, TicketCategory, TicketPhoto, TicketState, TicketType, utcnow
from app.services import access, staff_admin, tickets, uploads
from app.services.actors import Actor
from app.web.h5.core import current_crew_staff, h5_blueprint, h5_error, h5_login_required, load_form
from mobile_api.schemas import DefectArgs, ForwardArgs, LocationArgs, NoteArgs, ReplyArgs

bp = h5_blueprint("h5_crew", __name__)

NOT_CREW = ("此链接为维修任务页面，仅供负责的维修人员查看。如您是住户，可在“工单”中查看您的报修进度。")
NOT_YOURS = ("无法查看该任务：它没有派给您或您的班组，或已被撤销。如有疑问请联系班组长或客服。")


def _crew():
    staff = current_crew_staff()
    if staff is None:
        return None, h5_error(403, NOT_CREW, title="无权查看")
    return staff, None


def _task(staff: Staff, ticket_id: int, *, for_update: bool = False):
    try:
        return access.task_of(staff, ticket_id, for_update=for_update)
    except NotFoundError:
        return None


def _done(ticket_id: int, message: str):
    flash(message, "success")
    return redirect(url_for("h5_crew.task", id=ticket_id), code=303)


@bp.route("/mp/task")
@h5_login_required
def task():
    staff, refusal = _crew()
    if refusal:
        return refusal
    raw = request.args.get("id", "")
    ticket = _task(staff, int(raw)) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else None
    number = request.args.get("no")
    if ticket is None or (number and number != ticket.number):
        return h5_error(404, NOT_YOURS, title="无法查看该任务")
    now = utcnow()
    return render_template(
        "h5/crew_task.html", t=ticket, staff=staff, now=now,
        overdue=ticket.is_open and ticket.finish_by is not None and ticket.finish_by < now,
        action_labels=tickets.ACTION_LABELS, event_labels=tickets.EVENT_LABELS,
        crews=list(db.session.scalars(select(Crew).order_by(Crew.id))),
        field_staff=list(db.session.scalars(select(Staff).where(
            Staff.active.is_(True), Staff.role.in_(access.CREW_ROLES), Staff.id != staff.id).order_by(Staff.id))),
        categories=TicketCategory.LABELS, priorities=Priority.LABELS, states=TicketState.LABELS,
        types=TicketType.LABELS)


@bp.route("/mp/tasks/<int(max=2147483647):ticket_id>/photos/<int(max=2147483647):photo_id>")
@h5_login_required
def photo(ticket_id: int, photo_id: int):
    """A photo of a task the crew member may see (the resident's report, colleagues' replies)."""
    staff, refusal = _crew()
    if refusal:
        return refusal
    row = db.session.get(TicketPhoto, photo_id)
    if row is None or row.ticket_id != ticket_id or _task(staff, ticket_id) is None:
        abort(404)
    path = uploads.stored_file(row.path)
    if path is None:
        abort(404)
    return send_file(path, mimetype=row.content_type or "application/octet-stream", max_age=3600)


@bp.route("/mp/tasks")
@h5_login_required
def tasks():
    staff, refusal = _crew()
    if refusal:
        return refusal
    return render_template("h5/crew_tasks.html", tasks=access.open_tasks(staff), staff=staff, now=utcnow(),
                           states=TicketState.LABELS, categories=TicketCategory.LABELS)


def _acting(ticket_id: int):
    """(staff, task locked for the change) or a refusal page."""
    staff, refusal = _crew()
    if refusal:
        return None, None, refusal
    ticket = _task(staff, ticket_id, for_update=True)
    if ticket is None:
        return None, None, h5_error(404, NOT_YOURS, title="无法操作该任务")
    return staff, ticket, None


@bp.route("/mp/tasks/<int(max=2147483647):ticket_id>/accept", methods=["POST"])
@h5_login_required
def accept(ticket_id: int):
    staff, ticket, refusal = _acting(ticket_id)
    if refusal:
        return refusal
    tickets.accept_ticket(ticket, Actor.of_staff(staff))
    db.session.commit()
    return _done(ticket_id, "已接单")


@bp.route("/mp/tasks/<int(max=2147483647):ticket_id>/notes", methods=["POST"])
@body_limit(uploads.MAX_REQUEST_BYTES, per_file=uploads.MAX_BYTES)
@h5_login_required
def notes(ticket_id: int):
    staff, ticket, refusal = _acting(ticket_id)
    if refusal:
        return refusal
    args = load_form(NoteArgs, exclude=("photos",))
    photos = uploads.photo_inputs(request.files.getlist("photos"))
    tickets.add_progress_note(ticket, Actor.of_staff(staff), args.get("note"), photos)
    uploads.commit_or_forget(db.session, photos)
    return _done(ticket_id, "进展已记录")


@bp.route("/mp/tasks/<int(max=2147483647):ticket_id>/reply", methods=["POST"])
@body_limit(uploads.MAX_REQUEST_BYTES, per_file=uploads.MAX_BYTES)
@h5_login_required
def reply(ticket_id: int):
    staff, ticket, refusal = _acting(ticket_id)
    if refusal:
        return refusal
    args = load_form(ReplyArgs, exclude=("photos",))
    photos = uploads.photo_inputs(request.files.getlist("photos"))
    tickets.reply_ticket(ticket, Actor.of_staff(staff), args["reply"], photos)
    uploads.commit_or_forget(db.session, photos)
    return _done(ticket_id, "处理结果已提交，住户会收到通知")


@bp.route("/mp/tasks/<int(max=2147483647):ticket_id>/forward", methods=["POST"])
@h5_login_required
def forward(ticket_id: int):
    staff, ticket, refusal = _acting(ticket_id)
    if refusal:
        return refusal
    args = load_form(ForwardArgs)
    crew = db.session.get(Crew, args["crew_id"]) if args["crew_id"] else None
    target = db.session.get(Staff, args["staff_id"]) if args["staff_id"] else None
    if args["crew_id"] and crew is None:
        raise ValidationError("班组不存在", fields={"crew_id": ["班组不存在"]})
    if args["staff_id"] and target is None:
        raise ValidationError("人员不存在", fields={"staff_id": ["人员不存在"]})
    tickets.forward_ticket(ticket, Actor.of_staff(staff), reason=args["reason"], crew=crew, staff=target)
    db.session.commit()
    flash("已转办", "success")
    # Forwarded away, the task may no longer be this person's: back to the inbox.
    return redirect(url_for("h5_crew.tasks"), code=303)


@bp.route("/mp/tasks/<int(max=2147483647):ticket_id>/defect", methods=["POST"])
@body_limit(uploads.MAX_REQUEST_BYTES, per_file=uploads.MAX_BYTES)
@h5_login_required
def defect(ticket_id: int):
    staff, ticket, refusal = _acting(ticket_id)
    if refusal:
        return refusal
    args = load_form(DefectArgs, exclude=("photos",))
    photos = uploads.photo_inputs(request.files.getlist("photos"))
    child = tickets.open_defect_order(ticket, Actor.of_staff(staff), args["description"],
                                      category=args["category"], priority=args["priority"], photos=photos)
    uploads.commit_or_forget(db.session, photos)
    return _done(child.id, f"已开具消缺单 {child.number}")


@bp.route("/mp/location", methods=["POST"])
@h5_login_required
def location():
    staff, refusal = _crew()
    if refusal:
        return refusal
    args = load_form(LocationArgs)
    staff_admin.record_location(staff, args["latitude"], args["longitude"], args["label"])
    db.session.commit()
    flash("位置已上报", "success")
    back = request.form.get("back", "")
    if back.isascii() and back.isdigit() and len(back) <= 9:
        return redirect(url_for("h5_crew.task", id=int(back)), code=303)
    return redirect(url_for("h5_crew.tasks"), code=303)
