"""The staff console (/console): sign-in, the ticket queue and ticket pages.

Every page needs a signed-in agent, admin or leader; every POST needs the session's CSRF
token and a role that may change things (agents and admins — leaders read only). Ticket
changes go through ``app.services.tickets`` with the signed-in staff member as the actor;
each view commits once.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from flask import (
    Response, abort, current_app, redirect, render_template, request, send_from_directory, url_for,
)
from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import selectinload

from app import phones
from app.errors import DomainError
from app.extensions import db
from app.models import (
    AccessAction, Community, Crew, District, Household, Priority, Staff, Ticket, TicketPhoto, TicketState, TicketType,
    utcnow,
)
from app.services import exports, privacy, ratings, sla, staff_auth
from app.services.uploads import upload_dir
from app.services import tickets as ticket_service
from app.text import clean_text
from app.links import task_url
from app.web import auth
from app.web.console_base import PAGE_SIZE, actor, bp, done, qr_svg, tz
from app.web.redirects import safe_next

# --- sign-in ----------------------------------------------------------------------------------

@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    next_url = safe_next(request.values.get("next"))
    if request.method == "POST":
        try:
            staff = staff_auth.authenticate(request.form.get("username", ""), request.form.get("password", ""),
                                            redis=current_app.extensions["redis"],
                                            requester=request.remote_addr)  # the client, via TRUSTED_PROXIES
        except DomainError as exc:
            error = exc.message
            return render_template("console/login.html", error=error, next=next_url), exc.status
        auth.sign_in(staff)
        target = next_url
        if target and target.startswith("/dashboard") and not staff_auth.can_see_dashboard(staff):
            target = None
        return redirect(target or url_for("console.tickets"))
    return render_template("console/login.html", error=error, next=next_url)


@bp.route("/logout", methods=["POST"])
def logout():
    auth.sign_out()
    return redirect(url_for("console.login"))


@bp.route("/")
def home():
    return redirect(url_for("console.tickets"))


# --- the ticket queue -------------------------------------------------------------------------

def _queue_query(args, now: datetime):
    conds = []
    state = args.get("state", "open")
    if state == "open":
        conds.append(Ticket.state.in_(TicketState.OPEN))
    elif state in TicketState.ALL:
        conds.append(Ticket.state == state)
    if args.get("type") in TicketType.ALL:
        conds.append(Ticket.type == args["type"])
    if args.get("priority") in Priority.ALL:
        conds.append(Ticket.priority == args["priority"])
    community_id = args.get("community_id", type=int)
    district_id = args.get("district_id", type=int)
    if community_id:
        conds.append(Ticket.household_id.in_(select(Household.id).where(Household.community_id == community_id)))
    elif district_id:
        conds.append(Ticket.household_id.in_(select(Household.id).where(Household.district_id == district_id)))
    crew_id = args.get("crew_id", type=int)
    if crew_id:
        conds.append(Ticket.crew_id == crew_id)
    for name, op in (("date_from", "ge"), ("date_to", "lt")):
        raw = args.get(name)
        if raw:
            try:
                day = date.fromisoformat(raw)
            except ValueError:
                continue
            if op == "lt":
                day += timedelta(days=1)
            bound = datetime.combine(day, time(0), tzinfo=tz())
            conds.append(Ticket.created_at >= bound if op == "ge" else Ticket.created_at < bound)
    overdue = args.get("overdue")
    if overdue == "response":
        conds.append(sla.response_overdue(now))
    elif overdue == "any":
        conds.append(or_(sla.response_overdue(now), sla.finish_overdue(now)))
    elif overdue:  # "finish" (and "1", the old checkbox)
        conds.append(sla.finish_overdue(now))
    q = clean_text(args.get("q"))
    if q:
        like = f"%{q}%"
        fragment = phones.search_fragment(q)
        conds.append(or_(Ticket.number.ilike(like), Ticket.caller_phone.ilike(like), Ticket.address.ilike(like),
                         Ticket.description.ilike(like), Ticket.caller_name.ilike(like),
                         Ticket.external_id == q,
                         *([Ticket.caller_phone.contains(fragment, autoescape=True)] if fragment else [])))
    return conds


def _queue_order():
    return Ticket.created_at.desc() if request.args.get("sort") == "new" else Ticket.finish_by.asc().nulls_last()


@bp.route("/tickets")
def tickets():
    now = utcnow()
    conds = _queue_query(request.args, now)
    page = max(request.args.get("page", 1, type=int), 1)
    total, late_response, late_finish = db.session.execute(select(
        func.count(Ticket.id), func.coalesce(func.sum(case((sla.response_overdue(now), 1), else_=0)), 0),
        func.coalesce(func.sum(case((sla.finish_overdue(now), 1), else_=0)), 0)).where(*conds)).one()
    rows = db.session.scalars(
        select(Ticket).where(*conds).order_by(_queue_order(), Ticket.id.desc())
        .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    ).all()
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template("console/tickets.html", rows=rows, total=total, page=page, pages=pages, args=args,
                           now=now, districts=_districts(), communities=_communities(), crews=_crews(),
                           late_response=int(late_response), late_finish=int(late_finish),
                           response_late=sla.is_response_overdue, finish_late=sla.is_finish_overdue)


@bp.route("/tickets.xlsx")
def tickets_xlsx():
    """The filtered list as an Excel workbook (names and numbers masked as on the page);
    every export is recorded with its filters and row count."""
    now = utcnow()
    conds = _queue_query(request.args, now)
    rows = db.session.scalars(select(Ticket).where(*conds).order_by(_queue_order(), Ticket.id.desc())
                              .options(selectinload(Ticket.household), selectinload(Ticket.crew),
                                       selectinload(Ticket.assignee))
                              .limit(exports.MAX_ROWS + 1)).all()
    filters = {k: v for k, v in request.args.items() if v}
    described = exports.describe_filters(filters)
    data = exports.tickets_workbook(rows[:exports.MAX_ROWS], now=now, tz=tz(), truncated=len(rows) > exports.MAX_ROWS,
                                    filters=described)
    privacy.record_access(auth.current_staff(), AccessAction.EXPORT_TICKETS, subject=f"工单列表（{described}）",
                          detail=filters, rows=min(len(rows), exports.MAX_ROWS), client_ip=request.remote_addr)
    db.session.commit()
    filename = f"tickets-{now.astimezone(tz()).strftime('%Y%m%d-%H%M')}.xlsx"
    return Response(data, mimetype=exports.XLSX_MIMETYPE,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _districts():
    return db.session.scalars(select(District).order_by(District.name)).all()


def _communities():
    return db.session.scalars(select(Community).order_by(Community.district_id, Community.name)).all()


def _crews():
    return db.session.scalars(select(Crew).order_by(Crew.id)).all()


def _field_staff():
    return db.session.scalars(select(Staff).where(Staff.role.in_(ticket_service.FIELD_ROLES), Staff.active.is_(True))
                              .order_by(Staff.crew_id, Staff.id)).all()


def _ticket_or_404(ticket_id: int, for_update: bool = False) -> Ticket:
    try:
        return ticket_service.get_ticket(ticket_id, for_update=for_update)
    except DomainError:
        abort(404)


@bp.route("/tickets/<int:ticket_id>")
def ticket_detail(ticket_id: int):
    """The ticket; the caller's name and number masked unless staff ask to see them (logged)."""
    ticket = _ticket_or_404(ticket_id)
    children = db.session.scalars(select(Ticket).where(Ticket.parent_id == ticket.id)).all()
    reveal = request.method == "GET" and request.args.get("reveal") == "1"
    if reveal:
        privacy.record_access(auth.current_staff(), AccessAction.VIEW_CUSTOMER, household=ticket.household,
                              subject=f"工单 {ticket.number} 的联系人", client_ip=request.remote_addr)
        db.session.commit()
    now = utcnow()
    return render_template("console/ticket.html", t=ticket, now=now, crews=_crews(), field_staff=_field_staff(),
                           children=children, action_labels=ticket_service.ACTION_LABELS,
                           event_labels=ticket_service.EVENT_LABELS, reveal=reveal,
                           late_response=sla.is_response_overdue(ticket, now),
                           late_finish=sla.is_finish_overdue(ticket, now))




@bp.route("/tickets/<int:ticket_id>/close", methods=["POST"])
def ticket_close(ticket_id: int):
    ticket = _ticket_or_404(ticket_id, for_update=True)
    ticket_service.close_ticket(ticket, actor(), request.form.get("final_answer", ""))
    return done("已办结，答复已发送给用户", "console.ticket_detail", ticket_id=ticket_id)


@bp.route("/tickets/<int:ticket_id>/visit", methods=["POST"])
def ticket_visit(ticket_id: int):
    ticket = _ticket_or_404(ticket_id, for_update=True)
    satisfied = {"yes": True, "no": False}.get(request.form.get("satisfied", ""))
    ratings.record_visit(ticket, actor(), request.form.get("result", ""), satisfied=satisfied)
    return done("回访结果已记录", "console.ticket_detail", ticket_id=ticket_id)


@bp.route("/tickets/<int:ticket_id>/reopen", methods=["POST"])
def ticket_reopen(ticket_id: int):
    ticket = _ticket_or_404(ticket_id, for_update=True)
    ticket_service.reopen_ticket(ticket, actor(), request.form.get("reason", ""))
    return done("工单已重新打开", "console.ticket_detail", ticket_id=ticket_id)


@bp.route("/tickets/<int:ticket_id>/cancel", methods=["POST"])
def ticket_cancel(ticket_id: int):
    ticket = _ticket_or_404(ticket_id, for_update=True)
    ticket_service.cancel_ticket(ticket, actor(), request.form.get("reason", ""))
    return done("工单已撤销", "console.ticket_detail", ticket_id=ticket_id)


@bp.route("/tickets/<int:ticket_id>/reassign", methods=["POST"])
def ticket_reassign(ticket_id: int):
    """派单/改派: a new or assigned ticket is (re)assigned; one a crew holds is forwarded (reason)."""
    ticket = _ticket_or_404(ticket_id, for_update=True)
    crew = db.session.get(Crew, request.form.get("crew_id", type=int) or 0)
    staff = db.session.get(Staff, request.form.get("staff_id", type=int) or 0)
    note = request.form.get("note", "")
    if ticket.state in (TicketState.NEW, TicketState.ASSIGNED):
        first = ticket.crew_id is None and ticket.assignee_id is None
        ticket_service.assign_ticket(ticket, actor(), crew=crew, staff=staff, note=note)
        message = "已派单" if first else "已改派"
    else:
        ticket_service.forward_ticket(ticket, actor(), reason=note, crew=crew, staff=staff)
        message = "已转办"
    # By id: the relationships may still hold the previous crew until the session expires them.
    crew, person = db.session.get(Crew, ticket.crew_id or 0), db.session.get(Staff, ticket.assignee_id or 0)
    holder = "，".join(x.name for x in (crew, person) if x is not None)
    return done(f"{message}：{holder}" if holder else message, "console.ticket_detail", ticket_id=ticket_id)


@bp.route("/photos/<int:photo_id>")
def photo(photo_id: int):
    """A stored ticket photo, for signed-in staff only (files live outside the code tree)."""
    found = db.session.get(TicketPhoto, photo_id)
    if found is None or not found.path:
        abort(404)
    response = send_from_directory(upload_dir(), found.path, mimetype=found.content_type or None)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


# --- the printable work order ------------------------------------------------------------------

@bp.route("/tickets/<int:ticket_id>/print")
def work_order(ticket_id: int):
    ticket = _ticket_or_404(ticket_id)
    url = task_url(ticket)
    return render_template("console/work_order.html", t=ticket, qr=qr_svg(url), task_url=url, now=utcnow())


from app.web import console_ops  # noqa: E402,F401  (announcements, outages, FAQ, ops, reports)
from app.web import console_intents  # noqa: E402,F401  (知识库 → 意图词库)
from app.web import console_staff  # noqa: E402,F401  (staff administration, admins only)
from app.web import console_pay  # noqa: E402,F401  (refunds and reconciliation)
from app.web import console_templates  # noqa: E402,F401  (message templates, read-only)
from app.web import console_chat  # noqa: E402,F401  (会话: live chat with residents)
from app.web import console_desk  # noqa: E402,F401  (customers, 新建工单)
from app.web import console_households  # noqa: E402,F401  (住户: the household list and its export)
from app.web import console_admin  # noqa: E402,F401  (admin pages: SLA, evidence rules, settings, access log)
from app.web import console_follow_ups  # noqa: E402,F401  (回访任务: follow-ups after low ratings)
from app.web import console_forms  # noqa: E402,F401  (inline validation; last: its error handlers win)
