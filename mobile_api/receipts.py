"""The public receipt verification page: GET /r/<token> (the receipt's QR code and the payment
confirmation push point here; the link is built by ``app.services.receipts.receipt_url``).

The token is the order number signed with SECRET_KEY, so a receipt cannot be forged or
another one guessed; the page shows only what a receipt shows, with the name masked: per
season the principal and the late fee, their totals, the total paid, and any money sent
back (a duplicate payment's refund).
"""
from __future__ import annotations


from flask import Blueprint, render_template_string
from sqlalchemy import select

from app.clock import local_now
from app.extensions import db
from app.models import Payment, PaymentState, Refund, RefundState
from app.services.receipts import receipt_number

bp = Blueprint("mobile_receipts", __name__)

PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>缴费收据核验</title>
<style>body{font-family:sans-serif;max-width:480px;margin:2em auto;padding:0 1em;color:#222}
.ok{color:#18794e}.bad{color:#c0392b}td{padding:.3em .6em;vertical-align:top}td:first-child{color:#666}
.total td{font-weight:bold}</style>
</head><body>
{% if payment %}
<h1 class="{{ 'ok' if valid else 'bad' }}">{{ '收据有效' if valid else '收据已失效' }}</h1>
{% if not valid %}<p class="bad">该笔款项已全额退回，本收据不再作为缴费凭证。</p>{% endif %}
<table>
<tr><td>户号</td><td>{{ account_no }}</td></tr>
<tr><td>户主</td><td>{{ owner }}</td></tr>
<tr><td>缴费项目</td><td>{% for item in payment.items %}<div data-testid="receipt-item">{{ item.bill.season.code }}供暖季：本金 {{ yuan(item.principal_fen) }}元{% if item.late_fee_fen %}，滞纳金 {{ yuan(item.late_fee_fen) }}元{% endif %}，小计 {{ yuan(item.principal_fen + item.late_fee_fen) }}元</div>{% endfor %}</td></tr>
<tr><td>本金合计</td><td data-testid="receipt-principal">{{ yuan(principal) }}元</td></tr>
<tr><td>滞纳金合计</td><td data-testid="receipt-late-fee">{{ yuan(late_fee) }}元</td></tr>
<tr class="total"><td>实缴合计</td><td data-testid="receipt-total">{{ yuan(payment.amount_fen) }}元</td></tr>
{% for r in refunds %}<tr><td>退款</td><td data-testid="receipt-refund">{{ yuan(r.amount_fen) }}元（{{ r.state_label }}，{{ r.reason }}）</td></tr>{% endfor %}
<tr><td>支付时间</td><td>{{ paid_at }}</td></tr>
<tr><td>订单号</td><td>{{ payment.out_trade_no }}</td></tr>
<tr><td>微信支付单号</td><td>{{ payment.transaction_id }}</td></tr>
</table>
{% else %}<h1 class="bad">收据无效</h1><p>二维码无法识别或收据不存在，请联系客服核实。</p>{% endif %}
</body></html>"""


def yuan(fen: int) -> str:
    return f"{fen / 100:,.2f}"


@bp.route("/r/<token>")
def verify(token: str):
    number = receipt_number(token)
    payment = db.session.scalar(select(Payment).where(Payment.out_trade_no == number)) if number else None
    if payment is None or payment.paid_at is None or not payment.items:
        return render_template_string(PAGE, payment=None), 404
    household = payment.items[0].bill.household
    name = household.owner_name or ""
    refunds = [r for r in db.session.scalars(select(Refund).where(Refund.payment_id == payment.id).order_by(Refund.id))
               if r.state != RefundState.FAILED]
    return render_template_string(
        PAGE, payment=payment, valid=payment.state == PaymentState.PAID, yuan=yuan, refunds=refunds,
        principal=sum(i.principal_fen for i in payment.items), late_fee=sum(i.late_fee_fen for i in payment.items),
        account_no=household.account_no, owner=name[:1] + "*" * max(len(name) - 1, 1),
        paid_at=local_now(payment.paid_at).strftime("%Y-%m-%d %H:%M:%S"))
