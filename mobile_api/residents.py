"""Resident endpoints: households, bills, payments and receipts, repairs, outages,
announcements and subscribe-message consent.

A resident sees only households bound to their WeChat, the bills of those households,
their own payments, and tickets they reported or that belong to their households. Anything
else answers 404 (we do not say whether it exists).
"""
from __future__ import annotations


from flask import current_app, send_file
from sqlalchemy import select

from app import qrcodes
from app.errors import ConflictError, NotFoundError, ValidationError
from app.extensions import db
from app.http_limits import body_limit
from app.models import (
    Bill, HeatingSeason, Payment, PaymentState, Refund, RefundState,
    Ticket, TicketPhoto, TicketSource, TicketState, TicketType,
)
from app.services import access, binding, billing, consents, outage_linking, payments, ratings, tickets, uploads
from app.services.actors import Actor
from app.services.receipts import receipt_number, receipt_token, receipt_url  # noqa: F401 (receipt_number: mobile_api.receipts)
from mobile_api.auth import current_user, login_required
from mobile_api.common import ApiBlueprint, PageArgs, documented, paginate, paginate_list
from mobile_api.schemas import (
    AnnouncementPageSchema, BillArgs, BillPageSchema, BindArgs, CancelArgs, ConsentArgs, ConsentListSchema,
    HouseholdPageSchema, HouseholdSchema, OutagePageSchema, PaymentArgs, PaymentCreatedSchema,
    PaymentPageSchema, PaymentSchema, RateArgs, ReceiptSchema, RepairArgs, StillColdArgs, TicketDetailSchema,
    TicketListArgs, TicketPageSchema,
)
from wechat import pay as wechat_pay
from wechat import templates as wechat_templates

bp = ApiBlueprint("mobile_residents", __name__, url_prefix="/api/v1",
                  description="住户：绑定户号、账单、缴费、报修、停热、公告、订阅消息授权")


# --- households -----------------------------------------------------------------------------------

@bp.route("/households", methods=["GET"])
@login_required
@bp.arguments(PageArgs, location="query")
@bp.response(200, HouseholdPageSchema)
@documented(bp, 400)
def list_households(args):
    """我绑定的户"""
    return paginate_list(binding.bound_households(current_user()), args["page"], args["per_page"])


@bp.route("/households/bind", methods=["POST"])
@login_required
@bp.arguments(BindArgs)
@bp.response(201, HouseholdSchema)
@documented(bp, 400, 409, 429)
def bind_household(args):
    """绑定户号：户号 + 户主姓名或预留手机号后四位（失败次数受限）"""
    row = binding.bind_household(current_user(), args["account_no"], owner_name=args["owner_name"],
                                 phone_last4=args["phone_last4"],
                                 attempts=binding.bind_attempts(current_app.extensions["redis"]))
    db.session.commit()
    return row.household


@bp.route("/households/<int(max=2147483647):household_id>", methods=["DELETE"])
@login_required
@bp.response(204)
@documented(bp, 404)
def unbind_household(household_id):
    """解除绑定"""
    binding.unbind_household(current_user(), household_id)
    db.session.commit()


@bp.route("/households/<int(max=2147483647):household_id>/bills", methods=["GET"])
@login_required
@bp.arguments(BillArgs, location="query")
@bp.response(200, BillPageSchema)
@documented(bp, 400, 404)
def list_bills(args, household_id):
    """某户的账单（可按供暖季筛选），含截至今日的滞纳金与欠费合计"""
    household = access.household_of(current_user(), household_id)
    today = billing.local_today()
    query = (select(Bill).join(Bill.season).where(Bill.household_id == household.id)
             .order_by(HeatingSeason.starts_on.desc(), Bill.id))
    if args["season"]:
        query = query.where(HeatingSeason.code == args["season"])
    page = paginate(query, args["page"], args["per_page"])
    for bill in page["items"]:
        bill.late_fee_fen = billing.late_fee_fen(bill, today)
        bill.total_due_fen = bill.outstanding_fen + bill.late_fee_fen
    arrears = billing.household_arrears(household.id, today)
    return {**page, "household_id": household.id, "as_of": today,
            "arrears_principal_fen": arrears.total_principal_fen,
            "arrears_late_fee_fen": arrears.total_late_fee_fen, "arrears_total_fen": arrears.total_due_fen}


# --- payments ---------------------------------------------------------------------------------------

@bp.route("/payments", methods=["POST"])
@login_required
@bp.arguments(PaymentArgs)
@bp.response(201, PaymentCreatedSchema)
@bp.alt_response(200, schema=PaymentCreatedSchema,
                 description="这些账单已有您的同一笔待支付订单：返回该订单（新的 wx.requestPayment 参数）")
@documented(bp, 400, 404, 409, 503)
def create_payment(args):
    """为同一户的一张或多张未缴账单下单（微信支付 JSAPI），返回 wx.requestPayment 参数

    One pending order per bill (``billing.plan_order``): the same request again answers the
    pending order (200); a request that differs (other bills, another payer) first closes the
    old order at WeChat Pay, then makes a new one (201). A paid bill is 409. Two requests at
    once make one order: the loser's INSERT hits the unique ``pending_bill_id`` and plans again.

    The order is committed before WeChat Pay is called, so a notification can never arrive
    for an order we do not know; if the prepay fails the order is closed again.
    """
    user = current_user()
    household = access.household_of(user, args["household_id"])
    if not user.mp_openid:
        raise ValidationError("请在小程序中登录后缴费", code="mini_program_login_required")
    gateway = wechat_pay.JsapiGateway.mini_program()
    ordered = payments.order_bills(user, household, args["bill_ids"], payer_openid=user.mp_openid,
                                   gateway=gateway, unit=db.session)
    payment = ordered.payment
    payment.pay_params = gateway.pay_params(ordered.prepay_id)
    return (payment, 201) if ordered.created else (payment, 200)


@bp.route("/payments", methods=["GET"])
@login_required
@bp.arguments(PageArgs, location="query")
@bp.response(200, PaymentPageSchema)
@documented(bp, 400)
def list_payments(args):
    """我的缴费记录"""
    query = (select(Payment).where(Payment.wechat_user_id == current_user().id)
             .order_by(Payment.created_at.desc(), Payment.id.desc()))
    return paginate(query, args["page"], args["per_page"])


@bp.route("/payments/<string:out_trade_no>", methods=["GET"])
@login_required
@bp.response(200, PaymentSchema)
@documented(bp, 404)
def get_payment(out_trade_no):
    """订单状态；未确认的订单向微信支付查询，已支付则入账（与支付通知只入账一次）"""
    # Uncertain answers from WeChat Pay leave it as we know it; the notification settles it.
    payment = access.payment_of(current_user(), out_trade_no)
    return payments.refresh_state(payment, wechat_pay.JsapiGateway.mini_program(), db.session)


@bp.route("/payments/<string:out_trade_no>/receipt", methods=["GET"])
@login_required
@bp.response(200, ReceiptSchema)
@documented(bp, 404, 409)
def get_receipt(out_trade_no):
    """电子收据（本金、滞纳金、合计，及重复缴费的退款），含指向核验页的二维码"""
    payment = access.payment_of(current_user(), out_trade_no)
    if payment.state not in (PaymentState.PAID, PaymentState.REFUNDED):
        raise ConflictError("订单尚未支付成功，暂无收据", code="not_paid")
    household = payment.items[0].bill.household
    verify_url = receipt_url(out_trade_no)
    refunds = list(db.session.scalars(select(Refund).where(Refund.payment_id == payment.id).order_by(Refund.id)))
    return {"out_trade_no": payment.out_trade_no, "transaction_id": payment.transaction_id,
            "amount_fen": payment.amount_fen, "principal_fen": sum(i.principal_fen for i in payment.items),
            "late_fee_fen": sum(i.late_fee_fen for i in payment.items),
            "refunded_fen": sum(r.amount_fen for r in refunds if r.state == RefundState.SUCCESS),
            "refunds": refunds, "state": payment.state,
            "paid_at": payment.paid_at, "account_no": household.account_no,
            "address": household.address, "items": payment.items, "verify_url": verify_url,
            "qr_code": qrcodes.png_data_url(verify_url)}


# --- repairs --------------------------------------------------------------------------------------------

@bp.route("/repairs", methods=["POST"])
@body_limit(uploads.MAX_REQUEST_BYTES, per_file=uploads.MAX_BYTES)
@login_required
@bp.arguments(RepairArgs, location="multipart")
@bp.response(201, TicketDetailSchema)
@documented(bp, 400, 403, 404, 413)
def create_repair(args):
    """报修（multipart/form-data：household_id、category、description、location，最多9张照片 photos）

    所在区域正在停热时，不热/温度偏低的报修关联到该停热（outage、message 给出预计恢复时间），不单独派单。
    """
    user = current_user()
    household = access.household_of(user, args["household_id"])
    photos = uploads.photo_inputs(args["photos"])
    try:
        ticket = tickets.create_ticket(
            Actor.of_resident(user), type=TicketType.REPAIR, source=TicketSource.MINI_PROGRAM,
            description=args["description"], category=args["category"], household=household,
            address=(f"{household.address} {args['location']}" if args["location"] else None),
            latitude=args["latitude"], longitude=args["longitude"], photos=photos)
    except Exception:
        uploads.remove_stored([p.path for p in photos])
        raise
    uploads.commit_or_forget(db.session, photos)
    return ticket


@bp.route("/repairs", methods=["GET"])
@login_required
@bp.arguments(TicketListArgs, location="query")
@bp.response(200, TicketPageSchema)
@documented(bp, 400)
def list_repairs(args):
    """我的报修（本人提交或本人绑定户的工单），最新在前"""
    query = access.visible_tickets(current_user()).order_by(Ticket.created_at.desc(), Ticket.id.desc())
    if args["state"] == "open":
        query = query.where(Ticket.state.in_(TicketState.OPEN))
    elif args["state"] != "all":
        query = query.where(Ticket.state == args["state"])
    return paginate(query, args["page"], args["per_page"])


@bp.route("/repairs/<int(max=2147483647):ticket_id>", methods=["GET"])
@login_required
@bp.response(200, TicketDetailSchema)
@documented(bp, 404)
def get_repair(ticket_id):
    """报修详情与完整处理进度"""
    return access.ticket_of(current_user(), ticket_id)


@bp.route("/repairs/<int(max=2147483647):ticket_id>/cancel", methods=["POST"])
@login_required
@bp.arguments(CancelArgs)
@bp.response(200, TicketDetailSchema)
@documented(bp, 400, 403, 404, 409)
def cancel_repair(args, ticket_id):
    """撤销报修（维修人员接单前）"""
    user = current_user()
    ticket = access.ticket_of(user, ticket_id, for_update=True)
    tickets.cancel_ticket(ticket, Actor.of_resident(user), args["reason"])
    db.session.commit()
    return ticket


@bp.route("/repairs/<int(max=2147483647):ticket_id>/still-cold", methods=["POST"])
@login_required
@bp.arguments(StillColdArgs)
@bp.response(200, TicketDetailSchema)
@documented(bp, 400, 403, 404, 409)
def still_cold(args, ticket_id):
    """仍不热：停热恢复供热后，在反馈期内转为维修工单，派给负责班组"""
    user = current_user()
    ticket = access.ticket_of(user, ticket_id, for_update=True)
    outage_linking.report_still_cold(ticket, Actor.of_resident(user), note=args["note"])
    db.session.commit()
    return ticket


@bp.route("/repairs/<int(max=2147483647):ticket_id>/rate", methods=["POST"])
@login_required
@bp.arguments(RateArgs)
@bp.response(200, TicketDetailSchema)
@documented(bp, 400, 403, 404, 409)
def rate_repair(args, ticket_id):
    """评价（办结后，1–5分和评语，一次）"""
    user = current_user()
    ticket = access.ticket_of(user, ticket_id, for_update=True)
    ratings.rate_ticket(ticket, args["rating"], args["comment"], source=ratings.RatingSource.API, by=user)
    db.session.commit()
    return ticket


@bp.route("/photos/<int(max=2147483647):photo_id>", methods=["GET"])
@login_required
@bp.response(200, {"format": "binary", "type": "string"}, content_type="image/jpeg",
             description="照片（JPEG/PNG/GIF）")
@documented(bp, 404)
def get_photo(photo_id):
    """工单照片（住户：本人可见的工单；维修人员：自己的任务）"""
    photo = db.session.get(TicketPhoto, photo_id)
    if not access.may_see_photo(current_user(), photo):
        raise NotFoundError("照片不存在", code="photo_not_found")
    path = uploads.stored_file(photo.path)
    if path is None:
        raise NotFoundError("照片不存在", code="photo_not_found")
    return send_file(path, mimetype=photo.content_type or "application/octet-stream", max_age=0)


# --- outages, announcements, consent ---------------------------------------------------------------------

@bp.route("/outages", methods=["GET"])
@login_required
@bp.arguments(PageArgs, location="query")
@bp.response(200, OutagePageSchema)
@documented(bp, 400)
def list_outages(args):
    """影响我绑定户的停热（计划中与停热中）"""
    user = current_user()
    rows = [{"id": outage.id, "title": outage.title, "kind": outage.kind, "reason": outage.reason,
             "status": outage.status, "starts_at": outage.starts_at, "expected_end_at": outage.expected_end_at,
             "actual_end_at": outage.actual_end_at, "household_ids": [h.id for h in households]}
            for outage, households in access.outages_of(user)]
    return paginate_list(rows, args["page"], args["per_page"])


@bp.route("/announcements", methods=["GET"])
@login_required
@bp.arguments(PageArgs, location="query")
@bp.response(200, AnnouncementPageSchema)
@documented(bp, 400)
def list_announcements(args):
    """公告（已发布的：面向全部用户的，及发给我的），最新在前"""
    return paginate(access.visible_announcements(current_user()), args["page"], args["per_page"])


@bp.route("/subscriptions", methods=["POST"])
@login_required
@bp.arguments(ConsentArgs)
@bp.response(200, ConsentListSchema)
@documented(bp, 400)
def record_consent(args):
    """记录订阅消息授权：用户“允许”的每个模板可发送一次"""
    rows = consents.record_consent(current_user(), args["template_ids"], known=wechat_templates.registry().subscribe_ids())
    db.session.commit()
    return {"items": rows}
