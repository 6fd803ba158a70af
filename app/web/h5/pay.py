"""缴费 (/pay): the official account's payment pages, for WeChat's in-app browser.

    GET  /pay                          bound households, bills by season with late fees as of today
    POST /pay/orders                   order the chosen bills of one household (app.services.payments)
    GET  /pay/orders/<out_trade_no>    the order's 微信支付 button: WeixinJSBridge getBrandWCPayRequest
    GET  /pay/result/<out_trade_no>    paid / being confirmed / closed, polling …/state while unsure
    GET  /pay/orders/<no>/state        {"state": "paid" | "pending" | "closed"} for that polling
    GET  /pay/receipt/<out_trade_no>   the receipt with the QR code of its public page (/r/<token>)

The order is made by the same service as the mini-program's ``POST /api/v1/payments`` with the
official account's appid and the resident's official-account openid (WeChat Pay requires the
appid of the openid's app); one difference of channel: a bill another payer is paying right now
is refused here (``others="refuse"``) instead of replacing that payer's order. Access is
``app.services.access`` (a household not bound to this WeChat, someone else's order: a Chinese
"not found" page, nothing changed). Outside real WeChat the page includes the sandbox's
WeixinJSBridge stand-in (``/sandbox/jsbridge.js``, wechat/sandbox/jsbridge.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from app.errors import ValidationError
from app.extensions import db
from app.models import Bill, BillStatus, HeatingSeason, Household, Payment, PaymentState, Refund, RefundState
from app.services import access, billing, binding, payments
from app.services.receipts import receipt_url
from app.web.console_base import qr_svg
from app.web.h5.core import current_wechat_user, h5_blueprint, h5_error, h5_login_required
from wechat.web_oauth import is_real_wechat
from wechat.pay import JsapiGateway

bp = h5_blueprint("h5_pay", __name__)

MAX_BILLS = 20      # a household has one bill per season


@dataclass
class BillRow:
    bill: Bill
    late_fee_fen: int
    total_fen: int
    payable: bool
    pending: str | None       # "mine" | "other": held by a pending order


def bill_rows(household: Household, user) -> list[BillRow]:
    """The household's bills, newest season first, with the late fee as of today (app.clock)."""
    today = billing.local_today()
    bills = list(db.session.scalars(select(Bill).join(Bill.season).where(Bill.household_id == household.id)
                                    .order_by(HeatingSeason.starts_on.desc(), Bill.id)))
    held = {}
    for order in billing.pending_orders_for(b.id for b in bills):
        for item in order.items:
            held[item.bill_id] = "mine" if order.wechat_user_id == user.id else "other"
    rows = []
    for bill in bills:
        payable = bill.status in BillStatus.OPEN and bill.outstanding_fen > 0
        late = billing.late_fee_fen(bill, today) if payable else 0
        rows.append(BillRow(bill, late, (bill.outstanding_fen + late) if payable else 0, payable,
                            held.get(bill.id) if payable else None))
    return rows


@bp.route("/pay")
@h5_login_required
def bills():
    user = current_wechat_user()
    today = billing.local_today()
    households = [(h, bill_rows(h, user), billing.household_arrears(h.id, today))
                  for h in binding.bound_households(user)]
    return render_template("h5/pay.html", households=households, today=today)


def _chosen_bill_ids() -> list[int]:
    raw = request.form.getlist("bill_ids")
    if not raw:
        raise ValidationError("请选择要缴纳的账单", fields={"bill_ids": ["至少选择一张账单"]})
    if len(raw) > MAX_BILLS or not all(value.isascii() and value.isdigit() and len(value) <= 9 for value in raw):
        raise ValidationError("所选账单有误，请返回刷新后重新选择", fields={"bill_ids": ["账单编号无效"]})
    return [int(value) for value in raw]


@bp.route("/pay/orders", methods=["POST"])
@h5_login_required
def create_order():
    user = current_wechat_user()
    household_id = request.form.get("household_id", "")
    if not (household_id.isascii() and household_id.isdigit() and len(household_id) <= 9):
        raise ValidationError("请选择要缴费的户号")
    household = access.household_of(user, int(household_id))
    bill_ids = _chosen_bill_ids()
    if not user.oa_openid:
        raise ValidationError("请在微信中打开本页面后缴费")
    ordered = payments.order_bills(user, household, bill_ids, payer_openid=user.oa_openid,
                                   gateway=JsapiGateway.official_account(), unit=db.session, others="refuse")
    return redirect(url_for("h5_pay.order", out_trade_no=ordered.payment.out_trade_no, go=1), code=303)


@bp.route("/pay/orders/<string:out_trade_no>")
@h5_login_required
def order(out_trade_no: str):
    payment = access.payment_of(current_wechat_user(), out_trade_no)
    if payment.state != PaymentState.CREATED:
        return redirect(url_for("h5_pay.result", out_trade_no=out_trade_no))
    if not payment.prepay_id:
        return h5_error(409, "该订单未能提交到微信支付，请返回账单重新缴费", again=url_for("h5_pay.bills"))
    params = JsapiGateway.official_account().pay_params(payment.prepay_id)
    return render_template("h5/pay_order.html", payment=payment, household=_household(payment), params=params,
                           autostart=request.args.get("go") == "1",
                           jsbridge=_jsbridge_url())


def _household(payment: Payment) -> Household:
    return payment.items[0].bill.household


def _jsbridge_url() -> str | None:
    """The sandbox's WeixinJSBridge stand-in, when WeChat is the sandbox (real WeChat has its own)."""
    if is_real_wechat():
        return None
    return current_app.config["WECHAT_API_BASE"].rstrip("/") + "/jsbridge.js"


def _state(payment: Payment) -> str:
    if payment.state in (PaymentState.PAID, PaymentState.REFUNDED):
        return "paid"
    return "pending" if payment.state == PaymentState.CREATED else "closed"


def _refreshed(out_trade_no: str) -> Payment:
    """The person's own order, asked about at WeChat Pay while it is unconfirmed."""
    payment = access.payment_of(current_wechat_user(), out_trade_no)
    return payments.refresh_state(payment, JsapiGateway.official_account(), db.session)


@bp.route("/pay/result/<string:out_trade_no>")
@h5_login_required
def result(out_trade_no: str):
    payment = _refreshed(out_trade_no)
    return render_template("h5/pay_result.html", payment=payment, state=_state(payment),
                           household=_household(payment))


@bp.route("/pay/orders/<string:out_trade_no>/state")
@h5_login_required
def state(out_trade_no: str):
    response = jsonify({"state": _state(_refreshed(out_trade_no))})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/pay/receipt/<string:out_trade_no>")
@h5_login_required
def receipt(out_trade_no: str):
    payment = access.payment_of(current_wechat_user(), out_trade_no)
    if payment.state not in (PaymentState.PAID, PaymentState.REFUNDED):
        return h5_error(409, "该订单尚未支付成功，暂无收据", again=url_for("h5_pay.result", out_trade_no=out_trade_no))
    refunds = [r for r in db.session.scalars(select(Refund).where(Refund.payment_id == payment.id).order_by(Refund.id))
               if r.state != RefundState.FAILED]
    link = receipt_url(out_trade_no)
    return render_template("h5/pay_receipt.html", payment=payment, household=_household(payment), refunds=refunds,
                           principal=sum(i.principal_fen for i in payment.items),
                           late_fee=sum(i.late_fee_fen for i in payment.items), verify_url=link, qr=qr_svg(link))
