"""The public receipt verification page: GET /r/<token> (the receipt's QR code points here).

The token is the order number signed with SECRET_KEY, so a receipt cannot be forged or
another one guessed; the page shows only what a receipt shows, with the name masked.
"""
from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, render_template_string
from sqlalchemy import select

from app.extensions import db
from app.models import Payment, PaymentState

bp = Blueprint("mobile_receipts", __name__)

PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>缴费收据核验</title>
<style>body{font-family:sans-serif;max-width:480px;margin:2em auto;padding:0 1em;color:#222}
.ok{color:#18794e}.bad{color:#c0392b}td{padding:.3em .6em;vertical-align:top}td:first-child{color:#666}</style>
</head><body>
{% if payment %}
<h1 class="{{ 'ok' if valid else 'bad' }}">{{ '收据有效' if valid else '收据已失效' }}</h1>
<table>
<tr><td>户号</td><td>{{ account_no }}</td></tr>
<tr><td>户主</td><td>{{ owner }}</td></tr>
<tr><td>缴费项目</td><td>{% for item in payment.items %}{{ item.bill.season.code }}供暖季 {{ '%.2f'|format(item.principal_fen / 100) }}元{% if item.late_fee_fen %}（含滞纳金 {{ '%.2f'|format(item.late_fee_fen / 100) }}元）{% endif %}<br>{% endfor %}</td></tr>
<tr><td>合计</td><td>{{ '%.2f'|format(payment.amount_fen / 100) }}元</td></tr>
<tr><td>支付时间</td><td>{{ paid_at }}</td></tr>
<tr><td>订单号</td><td>{{ payment.out_trade_no }}</td></tr>
<tr><td>微信支付单号</td><td>{{ payment.transaction_id }}</td></tr>
</table>
{% else %}<h1 class="bad">收据无效</h1><p>二维码无法识别或收据不存在，请联系客服核实。</p>{% endif %}
</body></html>"""


@bp.route("/r/<token>")
def verify(token: str):
    from mobile_api.residents import receipt_number

    number = receipt_number(token)
    payment = db.session.scalar(select(Payment).where(Payment.out_trade_no == number)) if number else None
    if payment is None or payment.paid_at is None or not payment.items:
        return render_template_string(PAGE, payment=None), 404
    household = payment.items[0].bill.household
    name = household.owner_name or ""
    return render_template_string(
        PAGE, payment=payment, valid=payment.state == PaymentState.PAID,
        account_no=household.account_no, owner=name[:1] + "*" * max(len(name) - 1, 1),
        paid_at=payment.paid_at.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S"))
