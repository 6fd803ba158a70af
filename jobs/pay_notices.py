"""Outbox handlers that tell the payer about their money (wechat.notify, kind "bill"):

- ``notify.payment_paid`` → :func:`payment_paid`: 缴费成功 with the amounts and the link to
  the electronic receipt (``/r/<token>``); when part or all of the money was paid twice, the
  notice says so and that it goes back the way it came;
- ``notify.refund`` → :func:`refund_result`: 退款到账 (REFUND.SUCCESS) or 退款未能到账
  (REFUND.ABNORMAL: staff take it from there).

Like every notice handler: fresh state, one key per outbox row and person, sent once.
"""
from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy import select

from app.extensions import db
from app.models import Payment, Refund, RefundState, WechatUser
from app.services.receipts import receipt_url
from wechat.notify import Notice, send_notice

BEIJING = ZoneInfo("Asia/Shanghai")


def _yuan(fen: int) -> str:
    return f"{fen / 100:,.2f}"


def _local(dt) -> str:
    return dt.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M") if dt else "—"


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
    fields = [("户号", household.account_no), ("缴费金额", f"{_yuan(payment.amount_fen)}元"),
              ("缴费项目", f"{seasons}供暖季供热费"), ("支付时间", _local(payment.paid_at)),
              ("订单号", payment.out_trade_no)]
    amounts = f"本金{_yuan(principal)}元" + (f"，滞纳金{_yuan(late_fee)}元" if late_fee else "")
    if not surplus:
        title, remark = "缴费成功", f"{amounts}。点击查看电子收据。"
    elif surplus < payment.amount_fen:
        title = "缴费成功，部分款项重复缴纳"
        remark = f"其中{_yuan(surplus)}元为重复缴纳，将原路退回，到账后另行通知。点击查看电子收据。"
    else:
        title = "收到重复缴费，将原路退回"
        remark = f"该账单此前已缴清，本次支付的{_yuan(surplus)}元将原路全额退回，到账后另行通知。"
    send_notice(user, Notice(
        key=f"outbox:{outbox_id}:user:{user.id}", kind="bill", title=title, fields=fields, remark=remark,
        url=receipt_url(payment.out_trade_no), mp_page=_receipt_page(payment.out_trade_no)))


def refund_result(payload: dict, outbox_id: int) -> None:
    refund = db.session.get(Refund, payload["refund_id"])
    user = db.session.get(WechatUser, payload["wechat_user_id"])
    if refund is None or user is None:
        return
    payment = refund.payment
    account = payment.items[0].bill.household.account_no if payment.items else "—"
    if payload.get("state") == RefundState.ABNORMAL:
        notice = Notice(
            key=f"outbox:{outbox_id}:user:{user.id}", kind="bill", title="退款未能到账",
            fields=[("户号", account), ("退款金额", f"{_yuan(refund.amount_fen)}元"), ("原订单号", payment.out_trade_no)],
            remark="您的重复缴费退款未能原路退回（如银行卡已注销），客服将尽快与您联系处理。",
            url=receipt_url(payment.out_trade_no), mp_page=_receipt_page(payment.out_trade_no))
    else:
        notice = Notice(
            key=f"outbox:{outbox_id}:user:{user.id}", kind="bill", title="退款到账通知",
            fields=[("户号", account), ("退款金额", f"{_yuan(refund.amount_fen)}元"),
                    ("退回账户", refund.user_received_account or "原支付账户"),
                    ("到账时间", _local(refund.succeeded_at)), ("原订单号", payment.out_trade_no)],
            remark=f"退款原因：{refund.reason}。如有疑问请联系客服。",
            url=receipt_url(payment.out_trade_no), mp_page=_receipt_page(payment.out_trade_no))
    send_notice(user, notice)
