"""Crew endpoints: the task inbox and every action on a task, through the ticket service.

A crew member sees the tasks assigned or forwarded to them; a crew lead also those their
crew holds. Anything else answers 404. Every change goes through ``app.services.tickets``
(which records the timeline event and the outbox notifications) and is committed once.
"""
from __future__ import annotations

from sqlalchemy import and_, case, func, select

from app.errors import ValidationError
from app.extensions import db
from app.models import Crew, Staff, Ticket, TicketState, utcnow
from app.http_limits import body_limit
from app.services import access, staff_admin, tickets, uploads
from app.services.actors import Actor
from mobile_api.auth import current_staff, staff_required
from mobile_api.common import ApiBlueprint, documented, paginate
from mobile_api.schemas import (
    DefectArgs, ForwardArgs, LocationArgs, LocationSchema, NoteArgs, ReplyArgs, TaskDetailSchema, TaskListArgs,
    TaskPageSchema,
)

bp = ApiBlueprint("mobile_crews", __name__, url_prefix="/api/v1",
                  description="维修人员：我的任务、接单、进展、回复、转办、消缺单、位置")

CREW_ROLES = access.CREW_ROLES


def _my_task(ticket_id: int) -> Ticket:
    return access.task_of(current_staff(), ticket_id)


def _with_overdue(ticket: Ticket, now) -> Ticket:
    ticket.overdue = bool(ticket.is_open and ticket.finish_by is not None and ticket.finish_by < now)
    return ticket


def _detail(ticket: Ticket) -> Ticket:
    return _with_overdue(ticket, utcnow())


@bp.route("/tasks", methods=["GET"])
@staff_required(*CREW_ROLES)
@bp.arguments(TaskListArgs, location="query")
@bp.response(200, TaskPageSchema)
@documented(bp, 400, 403)
def list_tasks(args):
    """我的任务：超时的在前，其余按完成时限排序；附按状态计数"""
    staff, now = current_staff(), utcnow()
    base = access.visible_tasks(staff)
    query = base
    if args["state"] == "open":
        query = query.where(Ticket.state.in_(TicketState.OPEN))
    elif args["state"] != "all":
        query = query.where(Ticket.state == args["state"])
    overdue_first = case((and_(Ticket.state.in_(TicketState.OPEN), Ticket.finish_by < now), 0), else_=1)
    query = query.order_by(overdue_first, Ticket.finish_by.is_(None), Ticket.finish_by, Ticket.id)
    page = paginate(query, args["page"], args["per_page"])
    for ticket in page["items"]:
        _with_overdue(ticket, now)
    ids = base.with_only_columns(Ticket.id).subquery()
    counts = dict(db.session.execute(
        select(Ticket.state, func.count()).where(Ticket.id.in_(select(ids.c.id))).group_by(Ticket.state)).all())
    overdue = db.session.scalar(select(func.count()).where(
        Ticket.id.in_(select(ids.c.id)), Ticket.state.in_(TicketState.OPEN), Ticket.finish_by < now))
    return {**page, "counts": counts, "overdue": overdue or 0}


@bp.route("/tasks/<int(max=2147483647):ticket_id>", methods=["GET"])
@staff_required(*CREW_ROLES)
@bp.response(200, TaskDetailSchema)
@documented(bp, 403, 404)
def get_task(ticket_id):
    """任务详情与完整处理进度"""
    return _detail(_my_task(ticket_id))


@bp.route("/tasks/<int(max=2147483647):ticket_id>/accept", methods=["POST"])
@staff_required(*CREW_ROLES)
@bp.response(200, TaskDetailSchema)
@documented(bp, 403, 404, 409)
def accept_task(ticket_id):
    """接单"""
    ticket = _my_task(ticket_id)
    tickets.accept_ticket(ticket, Actor.of_staff(current_staff()))
    db.session.commit()
    return _detail(ticket)


@bp.route("/tasks/<int(max=2147483647):ticket_id>/notes", methods=["POST"])
@body_limit(uploads.MAX_REQUEST_BYTES, per_file=uploads.MAX_BYTES)
@staff_required(*CREW_ROLES)
@bp.arguments(NoteArgs, location="multipart")
@bp.response(200, TaskDetailSchema)
@documented(bp, 400, 403, 404, 409, 413)
def add_note(args, ticket_id):
    """记录进展（文字和/或最多9张照片）"""
    ticket = _my_task(ticket_id)
    photos = uploads.photo_inputs(args["photos"])
    tickets.add_progress_note(ticket, Actor.of_staff(current_staff()), args["note"], photos)
    uploads.commit_or_forget(db.session, photos)
    return _detail(ticket)


@bp.route("/tasks/<int(max=2147483647):ticket_id>/reply", methods=["POST"])
@body_limit(uploads.MAX_REQUEST_BYTES, per_file=uploads.MAX_BYTES)
@staff_required(*CREW_ROLES)
@bp.arguments(ReplyArgs, location="multipart")
@bp.response(200, TaskDetailSchema)
@documented(bp, 400, 403, 404, 409, 413)
def reply_task(args, ticket_id):
    """回复处理结果（可附照片）；住户会收到通知"""
    ticket = _my_task(ticket_id)
    photos = uploads.photo_inputs(args["photos"])
    tickets.reply_ticket(ticket, Actor.of_staff(current_staff()), args["reply"], photos)
    uploads.commit_or_forget(db.session, photos)
    return _detail(ticket)


@bp.route("/tasks/<int(max=2147483647):ticket_id>/forward", methods=["POST"])
@staff_required(*CREW_ROLES)
@bp.arguments(ForwardArgs)
@bp.response(200, TaskDetailSchema)
@documented(bp, 400, 403, 404, 409)
def forward_task(args, ticket_id):
    """转办给其他班组或人员（须填原因，不能转给自己）；新处理人会收到微信通知"""
    ticket = _my_task(ticket_id)
    crew = staff = None
    if args["crew_id"] is not None:
        crew = db.session.get(Crew, args["crew_id"])
        if crew is None:
            raise ValidationError("班组不存在", fields={"crew_id": ["班组不存在"]})
    if args["staff_id"] is not None:
        staff = db.session.get(Staff, args["staff_id"])
        if staff is None:
            raise ValidationError("人员不存在", fields={"staff_id": ["人员不存在"]})
    tickets.forward_ticket(ticket, Actor.of_staff(current_staff()), reason=args["reason"], crew=crew, staff=staff)
    db.session.commit()
    return _detail(ticket)


@bp.route("/tasks/<int(max=2147483647):ticket_id>/defect", methods=["POST"])
@body_limit(uploads.MAX_REQUEST_BYTES, per_file=uploads.MAX_BYTES)
@staff_required(*CREW_ROLES)
@bp.arguments(DefectArgs, location="multipart")
@bp.response(201, TaskDetailSchema)
@documented(bp, 400, 403, 404, 409, 413)
def open_defect(args, ticket_id):
    """开具消缺单（子工单，留在本班组）"""
    parent = _my_task(ticket_id)
    photos = uploads.photo_inputs(args["photos"])
    child = tickets.open_defect_order(parent, Actor.of_staff(current_staff()), args["description"],
                                      category=args["category"], priority=args["priority"], photos=photos)
    uploads.commit_or_forget(db.session, photos)
    return _detail(child)


@bp.route("/location", methods=["POST"])
@staff_required(*CREW_ROLES)
@bp.arguments(LocationArgs)
@bp.response(200, LocationSchema)
@documented(bp, 400, 403)
def update_location(args):
    """上报当前位置"""
    staff = staff_admin.record_location(current_staff(), args["latitude"], args["longitude"], args["label"])
    db.session.commit()
    return staff
