"""Paying bills with a WeChat Pay JSAPI order, the same way from every channel: the
mini-program (``mobile_api.residents``, its appid and the payer's mini-program openid) and the
official account's pages (``app.web.h5.pay``, the account's appid and its openid). WeChat Pay
requires the order's appid to be the app the payer's openid belongs to, so each channel brings
its own :class:`PayGateway` (``wechat.pay.JsapiGateway``) and openid; the rules are here.

Rules (billing.py holds the bookkeeping):
- one pending order per bill (``billing.plan_order``): the same payer asking for exactly the
  same bills gets the pending order again; any other request for one of its bills first closes
  the old order at WeChat Pay, then here, then makes a new one. With ``others="refuse"`` a
  pending order of another payer is not replaced: :class:`OrderHeldByOther` (409) and nothing
  changes (the official account's pages: someone else in the family is paying right now);
- a pending order found paid while being closed is credited, and the request is planned again
  (its bills are paid now: 409 ``bill_not_open``);
- the order is committed before WeChat Pay hears of it, so a notification never arrives for an
  order we do not know; a prepay that fails closes the order again (503);
- two requests at once make one order: the loser's INSERT hits the unique ``pending_bill_id``
  and plans again (and answers the winner's order).

The work needs commits between the calls to WeChat Pay, so the caller hands in its unit of work
(``db.session``: ``commit``/``rollback``) — the service decides when, the boundary owns it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select, update

from app.errors import ConflictError, NotFoundError, ServiceUnavailableError
from app.extensions import db
from app.models import Bill, Household, Payment, PaymentState, WechatUser
from app.services import billing

log = logging.getLogger(__name__)

PLAN_ATTEMPTS = 4       # re-plans when a concurrent request or a late payment moved things
UNAVAILABLE = "微信支付暂时不可用，请稍后再试"


class GatewayUnavailable(ServiceUnavailableError):
    """WeChat Pay could not be reached or refused the call: nothing is known to have changed there."""


class OrderHeldByOther(ConflictError):
    code = "pending_order_exists"


class PayGateway(Protocol):
    """WeChat Pay's JSAPI orders for one app (its appid). Errors: :class:`GatewayUnavailable`."""

    appid: str

    def prepay(self, payment: Payment, payer_openid: str, household: Household) -> str:
        """Create (or re-create with identical parameters) the order; its prepay_id."""

    def close(self, out_trade_no: str) -> str:
        """Close an unpaid order: "closed", "paid" (too late) or "missing"."""

    def settle_paid(self, out_trade_no: str) -> None:
        """Ask WeChat Pay about an order and credit it if it was paid (no commit)."""


class UnitOfWork(Protocol):
    def commit(self) -> None: ...

    def rollback(self) -> None: ...


@dataclass
class Ordered:
    payment: Payment
    prepay_id: str
    created: bool           # False: the pending order for exactly these bills, answered again


def order_bills(user: WechatUser, household: Household, bill_ids, *, payer_openid: str, gateway: PayGateway,
                unit: UnitOfWork, others: str = "replace") -> Ordered:
    """The pending order (and a fresh prepay_id) for ``bill_ids`` of ``household``, paid by
    ``payer_openid`` in ``gateway``'s app. The caller has checked that ``user`` may pay for
    ``household``. ``others``: "replace" or "refuse" another payer's pending order (see above)."""
    wanted = set(bill_ids)
    for _ in range(PLAN_ATTEMPTS):
        bills = list(db.session.scalars(select(Bill).where(Bill.id.in_(wanted), Bill.household_id == household.id)))
        if len(bills) != len(wanted):
            raise NotFoundError("账单不存在", code="bill_not_found")
        plan = billing.plan_order(user, bills)
        if plan.reuse is not None:
            payment = plan.reuse
            prepay_id = payment.prepay_id or _prepay(payment, user, household, payer_openid, gateway, unit)
            return Ordered(payment, prepay_id, created=False)
        if others == "refuse" and any(order.wechat_user_id != user.id for order in plan.replace):
            raise OrderHeldByOther("所选账单正在由其他微信用户支付，请待其完成或2小时后再试")
        if not _close_replaced(plan.replace, gateway, unit):
            continue                # an old order was paid meanwhile: its bills changed
        try:
            payment = billing.create_payment(user, plan.bills)
            unit.commit()
        except billing.PendingOrderExists:
            unit.rollback()         # a concurrent request made the order: plan again (and reuse it)
            continue
        break
    else:
        raise ConflictError("账单正在下单，请稍后再试", code="pending_order_exists")
    try:
        prepay_id = _prepay(payment, user, household, payer_openid, gateway, unit)
    except GatewayUnavailable as exc:
        log.warning("prepay of %s failed: %s", payment.out_trade_no, exc)
        billing.close_payment(payment.out_trade_no)
        unit.commit()
        raise GatewayUnavailable(UNAVAILABLE) from exc
    return Ordered(payment, prepay_id, created=True)


def _prepay(payment: Payment, user, household, payer_openid: str, gateway: PayGateway, unit: UnitOfWork) -> str:
    """The order at WeChat Pay (the same parameters every time: a retry or a second request
    for the same order gets a fresh prepay_id). Kept only while the order is still open: an
    order closed meanwhile (replaced) is closed at WeChat Pay too, and the caller gets 409."""
    prepay_id = gateway.prepay(payment, payer_openid, household)
    kept = db.session.execute(
        update(Payment).where(Payment.id == payment.id, Payment.state == PaymentState.CREATED)
        .values(prepay_id=prepay_id).execution_options(synchronize_session=False)).rowcount
    unit.commit()
    if not kept:
        try:
            gateway.close(payment.out_trade_no)
        except GatewayUnavailable as exc:
            log.warning("closing replaced order %s failed: %s", payment.out_trade_no, exc)
        raise ConflictError("订单已被新的缴费请求替换，请重新发起缴费", code="order_replaced")
    db.session.refresh(payment)
    return prepay_id


def _close_replaced(orders: list[Payment], gateway: PayGateway, unit: UnitOfWork) -> bool:
    """Close each pending order at WeChat Pay first, then here. False when one turned out to
    be paid (it is credited now; the caller plans again with the bills as they are)."""
    for order in orders:
        try:
            # Even without a prepay_id here: a request may be creating the order there right now.
            if gateway.close(order.out_trade_no) == "paid":
                gateway.settle_paid(order.out_trade_no)
                unit.commit()
                return False
        except GatewayUnavailable as exc:
            unit.rollback()
            log.warning("closing %s before a new order failed: %s", order.out_trade_no, exc)
            raise GatewayUnavailable(UNAVAILABLE) from exc
        billing.close_payment(order.out_trade_no)
        unit.commit()
    return True


def refresh_state(payment: Payment, gateway: PayGateway, unit: UnitOfWork) -> Payment:
    """A payment still ``created`` with a prepay_id is asked about at WeChat Pay and credited
    when paid there (exactly once with the notification). Uncertain answers leave it as it is."""
    if payment.state == PaymentState.CREATED and payment.prepay_id:
        try:
            gateway.settle_paid(payment.out_trade_no)
            unit.commit()
            db.session.refresh(payment)
        except GatewayUnavailable as exc:
            unit.rollback()
            log.warning("query of %s failed: %s", payment.out_trade_no, exc)
    return payment
