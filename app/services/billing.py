"""Heating bills, late fees, arrears and WeChat Pay payments (DESIGN §3).

Money is integer fen everywhere; areas are Decimal m²; every rounding is half up to a fen.

Policies decided here:
- Only ``active`` households are billed by :func:`issue_bills`; suspended (报停) and closed
  households get no bill (a reduced 报停 fee, if the company charges one, is entered by staff).
- The late fee is simple interest on the principal still unpaid, for each day after the
  season's due date. A payment settles the late fee accrued on the principal it pays, so a
  partial payment lowers the base of the late fee from then on.
- One payment (WeChat Pay order) covers bills of one household only, so each order,
  receipt and refund belongs to one account (户号). Who may pay for which household is
  checked at the boundary, like every other access rule (DESIGN §5).
- A closed order that WeChat later reports paid is credited: the money was taken.
- Money received for a bill that is already paid or waived (two orders for one bill both
  paid) is still recorded (``paid_fen`` above ``amount_fen``) and reported as ``overpaid_fen``
  so staff can refund it; it is never silently dropped.
"""
from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from flask import current_app, has_app_context
from sqlalchemy import select, update

from app import clock
from app.errors import ConflictError, DomainError, NotFoundError, ValidationError
from app.dbutil import insert_or_skip
from app.extensions import db
from app.models import (
    Bill, BillStatus, HeatingSeason, Household, HouseholdStatus, Payment, PaymentItem, PaymentState,
    WechatUser, utcnow,
)

log = logging.getLogger(__name__)

DEFAULT_LATE_FEE_BP_PER_DAY = 5      # 万分之五 per day, when neither season nor config says
DEFAULT_TIMEZONE = "Asia/Shanghai"
_ISSUE_CHUNK = 500                   # rows per INSERT (SQLite caps bound parameters)
_OUT_TRADE_NO = re.compile(r"^[0-9A-Za-z_\-|*]{6,32}$")   # WeChat Pay's rule for out_trade_no


# --- arithmetic (pure) ---------------------------------------------------------------------

def _round_fen(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def bill_amount_fen(area_m2: Decimal, unit_price_fen: int, discount_fen: int = 0) -> int:
    """Area × unit price − discount, rounded half up to a fen, never below zero."""
    gross = _round_fen(Decimal(area_m2) * unit_price_fen)
    return max(gross - discount_fen, 0)


def late_fee_for(principal_fen: int, due_on: date, as_of: date, bp_per_day: int) -> int:
    """Late fee on ``principal_fen`` for the days after ``due_on`` up to ``as_of``.

    ``bp_per_day`` is in ten-thousandths per day. Rounded once, half up, on the total.
    """
    days = (as_of - due_on).days
    if days <= 0 or principal_fen <= 0:
        return 0
    return _round_fen(Decimal(principal_fen) * bp_per_day * days / 10000)


def late_fee_fen(bill: Bill, as_of: date, bp_per_day: int | None = None) -> int:
    """Late fee currently owed on ``bill`` as of the local date ``as_of``.

    Rate: the season's ``late_fee_bp_per_day``, else ``bp_per_day`` (the configured default),
    else the app config ``LATE_FEE_BP_PER_DAY``. Paid and waived bills owe none.
    """
    if bill.status not in BillStatus.OPEN:
        return 0
    rate = bill.season.late_fee_bp_per_day
    if rate is None:
        rate = bp_per_day if bp_per_day is not None else configured_late_fee_bp()
    return late_fee_for(bill.outstanding_fen, bill.season.due_on, as_of, rate)


def configured_late_fee_bp() -> int:
    """The app's default late-fee rate (thin wrapper around the config)."""
    if has_app_context():
        return int(current_app.config.get("LATE_FEE_BP_PER_DAY", DEFAULT_LATE_FEE_BP_PER_DAY))
    return DEFAULT_LATE_FEE_BP_PER_DAY


def local_today() -> date:
    """Today in the company's time zone: due dates are local calendar dates."""
    tz = current_app.config.get("TIMEZONE", DEFAULT_TIMEZONE) if has_app_context() else DEFAULT_TIMEZONE
    return clock.local_today(tz)


# --- bills ---------------------------------------------------------------------------------

def issue_bills(season: HeatingSeason, households: Iterable[Household] | None = None) -> int:
    """Create one bill per active household for ``season``; returns how many were created.

    Safe to run again or concurrently: existing (household, season) bills are skipped by the
    unique constraint (INSERT … ON CONFLICT DO NOTHING), never read-then-written. Area and
    unit price are snapshotted on the bill.
    """
    if households is None:
        households = db.session.scalars(
            select(Household).where(Household.status == HouseholdStatus.ACTIVE).order_by(Household.id)
        )
    now = utcnow()
    rows = [
        {
            "household_id": h.id, "season_id": season.id, "area_m2": h.area_m2,
            "unit_price_fen": season.unit_price_fen, "discount_fen": 0,
            "amount_fen": bill_amount_fen(h.area_m2, season.unit_price_fen),
            "paid_fen": 0, "late_fee_paid_fen": 0, "status": BillStatus.UNPAID, "created_at": now,
        }
        for h in households if h.status == HouseholdStatus.ACTIVE
    ]
    db.session.flush()
    created = 0
    for start in range(0, len(rows), _ISSUE_CHUNK):
        created += _insert_bills_skipping_existing(rows[start:start + _ISSUE_CHUNK])
    return created


def _insert_bills_skipping_existing(rows: list[dict]) -> int:
    stmt = (
        insert_or_skip(Bill.__table__, conflict=["household_id", "season_id"]).values(rows)
        .returning(Bill.__table__.c.id)   # counts the rows really inserted (rowcount is -1 on psycopg)
    )
    return len(db.session.execute(stmt).all())


@dataclass
class ArrearsItem:
    bill: Bill = field(repr=False, compare=False)
    bill_id: int
    season_code: str
    due_on: date
    principal_fen: int
    late_fee_fen: int

    @property
    def total_fen(self) -> int:
        return self.principal_fen + self.late_fee_fen


@dataclass
class ArrearsSummary:
    household_id: int
    as_of: date
    items: list[ArrearsItem]          # oldest season first

    @property
    def total_principal_fen(self) -> int:
        return sum(i.principal_fen for i in self.items)

    @property
    def total_late_fee_fen(self) -> int:
        return sum(i.late_fee_fen for i in self.items)

    @property
    def total_due_fen(self) -> int:
        return self.total_principal_fen + self.total_late_fee_fen


def household_arrears(household_id: int, as_of: date, bp_per_day: int | None = None) -> ArrearsSummary:
    """Every open bill of the household with its outstanding principal and late fee, oldest first."""
    bills = db.session.scalars(
        select(Bill).join(Bill.season)
        .where(Bill.household_id == household_id, Bill.status.in_(BillStatus.OPEN))
        .order_by(HeatingSeason.starts_on, HeatingSeason.id)
    )
    items = [
        ArrearsItem(bill=b, bill_id=b.id, season_code=b.season.code, due_on=b.season.due_on,
                    principal_fen=b.outstanding_fen, late_fee_fen=late_fee_fen(b, as_of, bp_per_day))
        for b in bills if b.outstanding_fen > 0
    ]
    return ArrearsSummary(household_id=household_id, as_of=as_of, items=items)


# --- payments ------------------------------------------------------------------------------

def new_out_trade_no() -> str:
    """A unique order number within WeChat's rules (≤ 32 chars of [0-9A-Za-z_-|*])."""
    return "HP" + utcnow().strftime("%Y%m%d%H%M%S") + secrets.token_hex(6)


def create_payment(wechat_user: WechatUser | None, bills: Iterable[Bill], out_trade_no: str | None = None,
                   *, as_of: date | None = None, bp_per_day: int | None = None) -> Payment:
    """A WeChat Pay order (state ``created``) for the whole outstanding amount of ``bills``.

    Each item fixes the principal and the late fee as of ``as_of`` (default: today, local
    time), so what is credited later is what the resident was shown.
    """
    unique: dict[int, Bill] = {}
    for bill in bills:
        unique.setdefault(bill.id, bill)
    if not unique:
        raise ValidationError("请选择要缴纳的账单", fields={"bills": ["至少选择一张账单"]})
    chosen = sorted(unique.values(), key=lambda b: (b.season.starts_on, b.id))
    if len({b.household_id for b in chosen}) > 1:
        raise ValidationError("一次只能缴纳同一户的账单", fields={"bills": ["账单属于不同的户号"]})
    for bill in chosen:
        if bill.status not in BillStatus.OPEN or bill.outstanding_fen <= 0:
            raise ConflictError(f"{bill.season.code}供暖季账单已缴清或无需缴纳", code="bill_not_open")
    if out_trade_no is None:
        out_trade_no = new_out_trade_no()
    elif not _OUT_TRADE_NO.match(out_trade_no):
        raise ValidationError("订单号格式不正确", fields={"out_trade_no": ["6-32位字母、数字或_-|*"]})

    as_of = as_of or local_today()
    payment = Payment(
        out_trade_no=out_trade_no,
        wechat_user_id=wechat_user.id if wechat_user else None,
        state=PaymentState.CREATED,
        description=_description(chosen),
    )
    for bill in chosen:
        payment.items.append(PaymentItem(bill_id=bill.id, principal_fen=bill.outstanding_fen,
                                         late_fee_fen=late_fee_fen(bill, as_of, bp_per_day)))
    payment.amount_fen = sum(i.principal_fen + i.late_fee_fen for i in payment.items)
    db.session.add(payment)
    db.session.flush()
    return payment


def _description(bills: list[Bill]) -> str:
    seasons = "、".join(b.season.code for b in bills)
    return f"供热费 户号{bills[0].household.account_no} {seasons}"[:127]


@dataclass
class CreditResult:
    payment: Payment
    credited: bool                 # True only for the one call that credited the bills
    already_credited: bool         # a repeated notification: nothing changed
    paid_after_close: bool = False # WeChat reported payment of an order we had closed
    overpaid_fen: int = 0          # money received beyond what the bills owed (to refund)


def credit_payment(out_trade_no: str, transaction_id: str, amount_fen: int, paid_at: datetime,
                   payer_openid: str | None = None) -> CreditResult:
    """Record a successful WeChat Pay transaction: credits the bills exactly once.

    The claim is one conditional UPDATE on the payment row (state created/closed → paid);
    only the caller whose UPDATE changed the row credits the bills, so repeated or
    concurrent notifications cannot credit twice. An amount different from the order's is
    refused and changes nothing.
    """
    payment = db.session.scalar(select(Payment).where(Payment.out_trade_no == out_trade_no))
    if payment is None:
        raise NotFoundError("订单不存在", code="payment_not_found")
    if amount_fen != payment.amount_fen:   # the order amount never changes after creation
        log.error("payment %s: notified amount %s != order amount %s", out_trade_no, amount_fen,
                  payment.amount_fen)
        raise DomainError("支付金额与订单金额不符", code="amount_mismatch")
    was_closed = payment.state == PaymentState.CLOSED

    claimed = db.session.execute(
        update(Payment)
        .where(Payment.id == payment.id, Payment.state.in_((PaymentState.CREATED, PaymentState.CLOSED)))
        .values(state=PaymentState.PAID, transaction_id=transaction_id, paid_at=paid_at,
                payer_openid=payer_openid or Payment.payer_openid)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(payment)
    if claimed != 1:
        if payment.transaction_id != transaction_id:
            raise ConflictError("订单已由另一笔交易支付", code="payment_transaction_conflict")
        return CreditResult(payment=payment, credited=False, already_credited=True)

    if was_closed:
        log.warning("payment %s was closed but WeChat reports it paid; crediting it", out_trade_no)
    overpaid = _credit_bills(payment, paid_at)
    if overpaid:
        log.warning("payment %s overpaid %s fen; needs a refund", out_trade_no, overpaid)
    return CreditResult(payment=payment, credited=True, already_credited=False,
                        paid_after_close=was_closed, overpaid_fen=overpaid)


def _credit_bills(payment: Payment, paid_at: datetime) -> int:
    """Add each item to its bill; returns the fen received beyond what the bills owed."""
    items = {i.bill_id: i for i in payment.items}
    # Lock the bills (PostgreSQL) and reload them: another payment may have credited them.
    bills = db.session.scalars(
        select(Bill).where(Bill.id.in_(items)).order_by(Bill.id).with_for_update().execution_options(
            populate_existing=True)
    )
    overpaid = 0
    for bill in bills:
        item = items[bill.id]
        owed_before = bill.outstanding_fen
        bill.paid_fen += item.principal_fen
        bill.late_fee_paid_fen += item.late_fee_fen
        overpaid += max(item.principal_fen - owed_before, 0)
        if bill.status == BillStatus.WAIVED:
            continue                       # keep it waived; the money shows as overpaid
        if bill.paid_fen >= bill.amount_fen:
            if bill.status != BillStatus.PAID:
                bill.status, bill.paid_at = BillStatus.PAID, paid_at
        else:
            bill.status = BillStatus.PARTIAL
    db.session.flush()
    return overpaid


def close_payment(out_trade_no: str) -> Payment:
    """Close a stale unpaid order (created → closed); a paid order stays paid.

    Close the order at WeChat first: an order closed only here can still be paid there,
    in which case :func:`credit_payment` credits it anyway.
    """
    payment = db.session.scalar(select(Payment).where(Payment.out_trade_no == out_trade_no))
    if payment is None:
        raise NotFoundError("订单不存在", code="payment_not_found")
    db.session.execute(
        update(Payment)
        .where(Payment.id == payment.id, Payment.state == PaymentState.CREATED)
        .values(state=PaymentState.CLOSED, closed_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(payment)
    return payment
