"""Outbox handlers that tell the payer about their money (wechat.notify, kind "bill"):

- ``notify.payment_paid`` → :func:`payment_paid`: 缴费成功 with the amounts and the link to
  the electronic receipt (``/r/<token>``); when part or all of the money was paid twice, the
  notice says so and that it goes back the way it came;
- ``notify.refund`` → :func:`refund_result`: 退款到账 (REFUND.SUCCESS) or 退款未能到账
  (REFUND.ABNORMAL: staff take it from there).

Like every notice handler: fresh state, one key per outbox row and person, sent once.
"""
from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models import Payment, Refund, RefundState, WechatUser, utcnow
from app.services.receipts import receipt_url
from wechat.notify import Notice, send_notice
from wechat.templates import Fen


def _yuan(fen: int) -> str:
    return f"{fen / 100:,.2f}"


def _receipt_page(out_trade_no: str) -> str:
    return f"pages/payment/receipt?no={out_trade_no}"


def payment_paid(payload: dict, outbox_id: int) -> None:
    payment = db.session.get(Payment, payload["payment_id"])
    user = db.session.get(WechatUser, payload["wechat_user_id"])
    if payment is None or user is None or payment.paid_at is None or not payment.items:
        return
    household = payment.items[0].bill.household
    principal = sum(i.principal_fen for i in payment.items)
    late_fee = sum(i.late_fee_fen for i in payment.items)
    surplus = sum(r.amount_fen for r in db.session.scalars(select(Refund).where(Refund.payment_id == payment.id)))
    seasons = "、".join(i.bill.season.code for i in payment.items)
    amounts = f"本金{_yuan(principal)}元" + (f"，滞纳金{_yuan(late_fee)}元" if late_fee else "")
    if not surplus:
        title, tip, remark = "缴费成功", "点击查看电子收据", f"{amounts}。点击查看电子收据。"
    elif surplus < payment.amount_fen:
        title = "缴费成功，部分款项重复缴纳"
        tip = f"重复缴纳{_yuan(surplus)}元，将原路退回"
        remark = f"其中{_yuan(surplus)}元为重复缴纳，将原路退回，到账后另行通知。点击查看电子收据。"
    else:
        title = "收到重复缴费，将原路退回"
        tip = "该账单此前已缴清，本次款项将原路退回"
        remark = f"该账单此前已缴清，本次支付的{_yuan(surplus)}元将原路全额退回，到账后另行通知。"
    send_notice(user, Notice(
        key=f"outbox:{outbox_id}:user:{user.id}", kind="payment_paid", title=title,
        values={"account_no": household.account_no, "amount": Fen(payment.amount_fen),
                "item": f"{seasons}供暖季供热费", "paid_at": payment.paid_at, "out_trade_no": payment.out_trade_no,
                "tip": tip},
        remark=remark, url=receipt_url(payment.out_trade_no), mp_page=_receipt_page(payment.out_trade_no)))


def refund_result(payload: dict, outbox_id: int) -> None:
    refund = db.session.get(Refund, payload["refund_id"])
    user = db.session.get(WechatUser, payload["wechat_user_id"])
    if refund is None or user is None:
        return
    payment = refund.payment
    account = payment.items[0].bill.household.account_no if payment.items else "—"
    values = {"account_no": account, "amount": Fen(refund.amount_fen), "out_trade_no": payment.out_trade_no,
              "reason": refund.reason or "重复缴费退款"}
    if payload.get("state") == RefundState.ABNORMAL:
        title = "退款未能到账"
        values.update(status="退款异常", at=refund.updated_at or utcnow())
        remark = "您的重复缴费退款未能原路退回（如银行卡已注销），客服将尽快与您联系处理。"
    else:
        title = "退款到账通知"
        values.update(status="退款成功", at=refund.succeeded_at or refund.updated_at or utcnow(),
                      received=refund.user_received_account or "原支付账户")
        remark = f"退款原因：{refund.reason}。如有疑问请联系客服。"
    send_notice(user, Notice(
        key=f"outbox:{outbox_id}:user:{user.id}", kind="refund_result", title=title, values=values, remark=remark,
        url=receipt_url(payment.out_trade_no), mp_page=_receipt_page(payment.out_trade_no)))
