"""The desk (客户与来电登记): find a household, open its customer page, log a ticket for a
resident at the counter (来访) or on the phone while the phone system's bridge is down.

Same blueprint and rules as ``app.web.console``. Lists show names and numbers masked; the
customer page shows them in full and each opening is recorded (``app.services.privacy``).
A ticket logged here goes through ``app.services.tickets.create_ticket`` — the same rules,
routing and SLA as every other channel — with its source (电话 / 来访) recorded.
"""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from app import phones
from app.errors import ValidationError
from app.extensions import db
from app.models import (
    AccessAction, CallStatus, ConversationStatus, Household, PaymentState, Priority, RefundState, TicketCategory, TicketSource, TicketType,
)
from app.services import customers, privacy
from app.services import tickets as ticket_service
from app.text import clean_optional, clean_text
from app.web import auth
from app.web.console_base import actor, bp

PAYMENT_LABELS = {PaymentState.CREATED: "待支付", PaymentState.PAID: "已支付", PaymentState.CLOSED: "已关闭",
                  PaymentState.REFUNDED: "已退款"}
BILL_LABELS = {"unpaid": "未缴", "partial": "部分缴纳", "paid": "已缴清", "waived": "已减免"}
BINDING_PROOFS = {"owner_name": "户主姓名", "phone_last4": "手机尾号", "qr": "扫账单二维码", "staff": "客服代绑"}


def _household_or_404(household_id: int | None) -> Household:
    found = db.session.get(Household, household_id or 0)
    if found is None:
        abort(404)
    return found


# --- search and the customer page -----------------------------------------------------------------

@bp.route("/customers")
def customers_page():
    q = clean_text(request.args.get("q"))
    rows = customers.search_households(q) if q else []
    return render_template("console/customers.html", q=q, rows=rows)


@bp.route("/customers/<int:household_id>")
def customer_detail(household_id: int):
    household = _household_or_404(household_id)
    view = customers.customer_overview(household)
    privacy.record_access(auth.current_staff(), AccessAction.VIEW_CUSTOMER, household=household,
                          subject=f"户号 {household.account_no}", client_ip=request.remote_addr)
    db.session.commit()
    return render_template("console/customer.html", v=view, h=household, payment_labels=PAYMENT_LABELS,
                           bill_labels=BILL_LABELS, proofs=BINDING_PROOFS, call_labels=CallStatus.LABELS,
                           refund_labels=RefundState.LABELS, conversation_labels=ConversationStatus.LABELS)


# --- 新建工单 -----------------------------------------------------------------------------------------

@bp.route("/tickets/new")
def desk_ticket_new():
    household_id = request.values.get("household_id", type=int)
    household = db.session.get(Household, household_id) if household_id else None
    q = clean_text(request.args.get("q"))
    matches = customers.search_households(q) if q and household is None else []
    return render_template("console/ticket_new.html", household=household, q=q, matches=matches,
                           sources=[(s, TicketSource.LABELS[s]) for s in TicketSource.DESK],
                           categories=TicketCategory.LABELS, priorities=Priority.LABELS, types=TicketType.LABELS)


def _caller_phone(form) -> str | None:
    raw = clean_text(form.get("caller_phone"))
    if not raw:
        return None
    try:
        return phones.normalise(raw)
    except phones.PhoneError as exc:
        raise ValidationError("来电号码有误", fields={"caller_phone": [exc.message]}) from exc


@bp.route("/tickets/new", methods=["POST"])
def desk_ticket_create():
    form = request.form
    description = clean_text(form.get("description"), multiline=True)
    category, priority = form.get("category") or TicketCategory.OTHER, form.get("priority") or None
    # The service's own checks too, so every field's message shows at once (one round).
    errors = ticket_service.ticket_field_errors(actor(), type=form.get("type", ""), source=form.get("source", ""),
                                                category=category, priority=priority, description=description)
    household = None
    if form.get("household_id"):
        household = db.session.get(Household, form.get("household_id", type=int) or 0)
        if household is None:
            errors["household_id"] = ["所选住户不存在，请重新查找"]
    source = form.get("source", "")
    if source not in TicketSource.DESK:
        errors["source"] = ["请选择来源：电话或来访"]
    try:
        caller_phone = _caller_phone(form)
    except ValidationError as exc:
        errors.update(exc.fields)
        caller_phone = None
    if household is None and not errors.get("household_id") and not caller_phone \
            and not clean_text(form.get("address")):
        errors["household_id"] = ["请选择住户，或填写来电号码和地址"]
    if errors:
        raise ValidationError("提交的工单信息有误", fields=errors)
    ticket = ticket_service.create_ticket(
        actor(), type=form.get("type", ""), source=source, description=description, category=category,
        priority=priority, household=household, caller_phone=caller_phone, caller_name=clean_optional(form.get("caller_name")),
        address=clean_optional(form.get("address")))
    db.session.commit()
    crew = f"，已派给{ticket.crew.name}" if ticket.crew else ""
    flash(f"工单 {ticket.number} 已创建（{TicketSource.LABELS[source]}）{crew}", "ok")
    return redirect(url_for("console.ticket_detail", ticket_id=ticket.id))


# --- how personal data is shown -------------------------------------------------------------------

@bp.app_template_filter("mask_name")
def _mask_name(value: str | None) -> str:
    return privacy.mask_name(value) or "—"


@bp.app_template_filter("mask_phone")
def _mask_phone(value: str | None) -> str:
    return phones.masked(value) or "—"


@bp.app_template_filter("phone")
def _phone(value: str | None, extension: str | None = None) -> str:
    return phones.display(value, extension) or "—"
