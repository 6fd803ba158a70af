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
- One pending (``created``) order per bill: an identical request (same payer, same bills,
  same amounts) gets the pending order again; any other request for one of its bills
  replaces it — the caller closes the old order at WeChat Pay first (:func:`plan_order`).
  The unique ``payment_item.pending_bill_id`` makes this hold under concurrent requests.
- A closed order that WeChat later reports paid is credited: the money was taken.
- Money received for a bill that is already paid or waived (two orders for one bill both
  paid, an old order paid late) is never added to the bill: the surplus — principal plus
  the late fee charged on it — is computed exactly, recorded as a :class:`Refund` in the
  same transaction and refunded through WeChat Pay by a job (outbox ``pay.refund``).
"""
from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from flask import current_app, has_app_context
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from app import clock
from app.errors import ConflictError, DomainError, NotFoundError, ValidationError
from app.dbutil import insert_or_skip
from app.extensions import db
from app.models import (
    Bill, BillStatus, HeatingSeason, Household, HouseholdStatus, Payment, PaymentItem, PaymentState, Refund,
    RefundState, WechatUser, surplus_refund_no, utcnow,
)
from app.services import outbox

log = logging.getLogger(__name__)

DEFAULT_LATE_FEE_BP_PER_DAY = 5      # 万分之五 per day, when neither season nor config says
_ISSUE_CHUNK = 500                   # rows per INSERT (SQLite caps bound parameters)
_OUT_TRADE_NO = re.compile(r"^[0-9A-Za-z_\-|*]{6,32}$")   # WeChat Pay's rule for out_trade_no
ORDER_TTL = timedelta(hours=2)               # time_expire of a WeChat Pay order (prepay_id lives 2 h)
REUSE_MIN_REMAINING = timedelta(minutes=15)  # a pending order closer to expiry is replaced, not reused


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
    return clock.local_day()


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


class PendingOrderExists(ConflictError):
    """Another order claimed one of these bills at the same moment (unique pending_bill_id)."""

    code = "pending_order_exists"


def _chosen_bills(bills: Iterable[Bill]) -> list[Bill]:
    """The bills of one order, checked: at least one, one household, each still owing."""
    unique: dict[int, Bill] = {}
    for bill in bills:
        unique.setdefault(bill.id, bill)
    if not unique:
        raise ValidationError("请选择要缴纳的账单", fields={"bills": ["至少选择一张账单"]})
    chosen = sorted(unique.values(), key=lambda b: (b.season.starts_on, b.id))
    if len({b.household_id for b in chosen}) > 1:
        raise ValidationError("一次只能缴纳同一户的账单", fields={"bills": ["账单属于不同的户号"]})
    for bill in chosen:
        if bill.status == BillStatus.WAIVED:
            raise ConflictError(f"{bill.season.code}供暖季账单已减免，无需缴费", code="bill_not_open")
        if bill.status not in BillStatus.OPEN or bill.outstanding_fen <= 0:
            raise ConflictError(f"{bill.season.code}供暖季账单已缴清，请勿重复缴费", code="bill_not_open")
    return chosen


def pending_orders_for(bill_ids: Iterable[int]) -> list[Payment]:
    """Open (``created``) orders holding any of these bills, oldest first (legacy duplicates too)."""
    ids = list(bill_ids)
    if not ids:
        return []
    holding = select(PaymentItem.payment_id).where(PaymentItem.bill_id.in_(ids))
    return list(db.session.scalars(
        select(Payment).where(Payment.id.in_(holding), Payment.state == PaymentState.CREATED).order_by(Payment.id)))


@dataclass
class OrderPlan:
    """What to do for a request to pay ``bills``: answer ``reuse`` again, or close every order
    in ``replace`` (at WeChat Pay first, then :func:`close_payment`) and create a new one."""

    bills: list[Bill]
    reuse: Payment | None = None
    replace: list[Payment] = field(default_factory=list)


def plan_order(wechat_user: WechatUser | None, bills: Iterable[Bill], *, as_of: date | None = None,
               bp_per_day: int | None = None, now: datetime | None = None) -> OrderPlan:
    """Decide between the pending order for exactly these bills and a new order.

    A pending order is reused only when it is the same payer's, for exactly these bills, with
    the amounts a new order would have today, and has at least ``REUSE_MIN_REMAINING`` left
    before WeChat Pay expires it. Every other pending order holding one of the bills is to be
    replaced. Raises 409 ``bill_not_open`` when a bill is paid (or waived).
    """
    chosen = _chosen_bills(bills)
    as_of = as_of or local_today()
    now = now or utcnow()
    pending = pending_orders_for(b.id for b in chosen)
    if len(pending) == 1:
        order = pending[0]
        wanted = {b.id: (b.outstanding_fen, late_fee_fen(b, as_of, bp_per_day)) for b in chosen}
        held = {i.bill_id: (i.principal_fen, i.late_fee_fen) for i in order.items}
        if (held == wanted and order.wechat_user_id == (wechat_user.id if wechat_user else None)
                and order.created_at + ORDER_TTL - now >= REUSE_MIN_REMAINING):
            return OrderPlan(chosen, reuse=order)
    return OrderPlan(chosen, replace=pending)


def create_payment(wechat_user: WechatUser | None, bills: Iterable[Bill], out_trade_no: str | None = None,
                   *, as_of: date | None = None, bp_per_day: int | None = None) -> Payment:
    """A WeChat Pay order (state ``created``) for the whole outstanding amount of ``bills``.

    Each item fixes the principal and the late fee as of ``as_of`` (default: today, local
    time), so what is credited later is what the resident was shown. Each item claims its
    bill (``pending_bill_id``): if another open order holds one of them — committed, or being
    inserted at this moment by a concurrent request — :class:`PendingOrderExists` is raised
    and the caller rolls back and plans again (:func:`plan_order`).
    """
    chosen = _chosen_bills(bills)
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
                                         late_fee_fen=late_fee_fen(bill, as_of, bp_per_day),
                                         pending_bill_id=bill.id))
    payment.amount_fen = sum(i.principal_fen + i.late_fee_fen for i in payment.items)
    db.session.add(payment)
    try:
        db.session.flush()
    except IntegrityError as exc:   # the caller rolls back (the session needs it after a failed flush)
        raise PendingOrderExists("该账单已有待支付的订单，请稍后再试") from exc
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
    overpaid_fen: int = 0          # money received beyond what the bills owed (refunded)
    refund: Refund | None = None   # the surplus refund recorded for it


def credit_payment(out_trade_no: str, transaction_id: str, amount_fen: int, paid_at: datetime,
                   payer_openid: str | None = None) -> CreditResult:
    """Record a successful WeChat Pay transaction: credits the bills exactly once.

    The claim is one conditional UPDATE on the payment row (state created/closed → paid);
    only the caller whose UPDATE changed the row credits the bills, so repeated or
    concurrent notifications cannot credit twice. An amount different from the order's is
    refused and changes nothing. Money the bills no longer owed becomes a surplus refund,
    and the payer is told (with the receipt link) — both through the outbox, in this
    transaction.
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
    _release_bills(payment)
    surplus = _credit_bills(payment, paid_at)
    refund = None
    if surplus.total_fen:
        refund = _record_surplus_refund(payment, surplus)
        log.warning("payment %s: %s fen of %s received beyond what its bills owed; refund %s recorded",
                    out_trade_no, surplus.total_fen, payment.amount_fen, refund.out_refund_no)
    if payment.wechat_user_id:
        outbox.record("notify.payment_paid", {"payment_id": payment.id, "wechat_user_id": payment.wechat_user_id},
                      dedupe_key=f"payment-paid:{payment.id}")
    return CreditResult(payment=payment, credited=True, already_credited=False,
                        paid_after_close=was_closed, overpaid_fen=surplus.total_fen, refund=refund)


def _release_bills(payment: Payment) -> None:
    """The order is no longer open: its bills may go into another order."""
    db.session.execute(
        update(PaymentItem).where(PaymentItem.payment_id == payment.id, PaymentItem.pending_bill_id.is_not(None))
        .values(pending_bill_id=None).execution_options(synchronize_session=False))


@dataclass
class SurplusLine:
    bill: Bill
    principal_fen: int             # principal received that the bill no longer owed
    late_fee_fen: int              # the late fee charged on that principal

    @property
    def total_fen(self) -> int:
        return self.principal_fen + self.late_fee_fen


@dataclass
class Surplus:
    lines: list[SurplusLine] = field(default_factory=list)

    @property
    def total_fen(self) -> int:
        return sum(line.total_fen for line in self.lines)


def split_item(principal_fen: int, late_fee_fen: int, owed_fen: int) -> tuple[int, int]:
    """(principal, late fee) of an order item that a bill still owing ``owed_fen`` keeps.

    The principal kept is what the bill still owes (never more than the item's); the late
    fee kept is the share of the item's late fee charged on that principal, rounded half up
    (the item's late fee was computed on its whole principal). What is not kept is surplus.
    """
    kept = min(principal_fen, max(owed_fen, 0))
    if kept == principal_fen:
        return kept, late_fee_fen
    return kept, _round_fen(Decimal(late_fee_fen) * kept / principal_fen) if principal_fen else 0


def _credit_bills(payment: Payment, paid_at: datetime) -> Surplus:
    """Credit each item to its bill, up to what the bill still owes; returns the rest."""
    items = {i.bill_id: i for i in payment.items}
    # Lock the bills (PostgreSQL) and reload them: another payment may have credited them.
    bills = db.session.scalars(
        select(Bill).where(Bill.id.in_(items)).order_by(Bill.id).with_for_update().execution_options(
            populate_existing=True)
    )
    surplus = Surplus()
    for bill in bills:
        item = items[bill.id]
        principal, late_fee = split_item(item.principal_fen, item.late_fee_fen, bill.outstanding_fen)
        if principal < item.principal_fen or late_fee < item.late_fee_fen:
            surplus.lines.append(SurplusLine(bill, item.principal_fen - principal, item.late_fee_fen - late_fee))
        if principal == 0 and late_fee == 0:
            continue                       # nothing owed any more (paid or waived): all of it is surplus
        bill.paid_fen += principal
        bill.late_fee_paid_fen += late_fee
        if bill.paid_fen >= bill.amount_fen:
            if bill.status != BillStatus.PAID:
                bill.status, bill.paid_at = BillStatus.PAID, paid_at
        else:
            bill.status = BillStatus.PARTIAL
    db.session.flush()
    return surplus


def _yuan(fen: int) -> str:
    return f"{fen / 100:,.2f}"


def _record_surplus_refund(payment: Payment, surplus: Surplus) -> Refund:
    """The refund of ``surplus`` (one per payment, deterministic out_refund_no), queued for WeChat Pay."""
    bill_ids = [line.bill.id for line in surplus.lines]
    others = list(db.session.scalars(
        select(Payment.out_trade_no).join(PaymentItem, PaymentItem.payment_id == Payment.id)
        .where(PaymentItem.bill_id.in_(bill_ids), Payment.id != payment.id,
               Payment.state.in_((PaymentState.PAID, PaymentState.REFUNDED)))
        .distinct().order_by(Payment.out_trade_no)))
    parts = []
    for line in surplus.lines:
        state = "已减免" if line.bill.status == BillStatus.WAIVED else "已缴清"
        parts.append(f"{line.bill.season.code}供暖季账单{state}，多收本金{_yuan(line.principal_fen)}元"
                     + (f"、滞纳金{_yuan(line.late_fee_fen)}元" if line.late_fee_fen else ""))
    account = surplus.lines[0].bill.household.account_no
    detail = (f"户号{account}：" + "；".join(parts)
              + (f"。账单已由订单{'、'.join(others)}缴纳" if others else "")
              + f"。本单{payment.out_trade_no}实收{_yuan(payment.amount_fen)}元，应退{_yuan(surplus.total_fen)}元。")
    refund = Refund(out_refund_no=surplus_refund_no(payment.out_trade_no), payment_id=payment.id,
                    amount_fen=surplus.total_fen, state=RefundState.PENDING,
                    reason="供热费重复缴纳，多收款项原路退回", detail=detail)
    db.session.add(refund)
    db.session.flush()
    outbox.record("pay.refund", {"refund_id": refund.id}, dedupe_key=f"refund:{refund.out_refund_no}")
    return refund


# --- refunds ---------------------------------------------------------------------------------

# From which states a WeChat Pay refund status may move ours (never backwards: a late
# PROCESSING answer does not undo a SUCCESS notification).
_REFUND_MOVES = {
    RefundState.PROCESSING: (RefundState.PENDING, RefundState.FAILED),
    RefundState.ABNORMAL: (RefundState.PENDING, RefundState.FAILED, RefundState.PROCESSING),
    RefundState.SUCCESS: (RefundState.PENDING, RefundState.FAILED, RefundState.PROCESSING, RefundState.ABNORMAL),
    RefundState.CLOSED: (RefundState.PENDING, RefundState.FAILED, RefundState.PROCESSING, RefundState.ABNORMAL),
}


@dataclass
class RefundResult:
    refund: Refund
    changed: bool                  # this call moved the refund's state


def record_refund_result(out_refund_no: str, status: str, *, refund_id: str | None = None,
                         accepted_at: datetime | None = None, succeeded_at: datetime | None = None,
                         received_account: str | None = None, amount_fen: int | None = None) -> RefundResult:
    """What WeChat Pay says of a refund (its answer, a query or a notification): exactly once.

    The state moves with one conditional UPDATE, so repeated or concurrent notifications
    have one effect: the first SUCCESS (or ABNORMAL) tells the payer once, and a payment
    whose money all went back becomes ``refunded``. The caller commits.
    """
    refund = db.session.scalar(select(Refund).where(Refund.out_refund_no == out_refund_no))
    if refund is None:
        raise NotFoundError("退款单不存在", code="refund_not_found")
    if amount_fen is not None and amount_fen != refund.amount_fen:
        log.error("refund %s: WeChat Pay says %s fen, we asked %s", out_refund_no, amount_fen, refund.amount_fen)
        raise DomainError("退款金额与退款单不符", code="refund_amount_mismatch")
    new_state = RefundState.FROM_WECHAT.get(status)
    if new_state is None:
        raise DomainError(f"未知的退款状态 {status}", code="refund_status_unknown")
    values = {"state": new_state, "updated_at": utcnow()}
    if new_state == RefundState.SUCCESS:
        values["succeeded_at"] = succeeded_at or utcnow()
    if new_state in (RefundState.PROCESSING, RefundState.SUCCESS):
        values["last_error"] = None
    changed = db.session.execute(
        update(Refund).where(Refund.id == refund.id, Refund.state.in_(_REFUND_MOVES[new_state]))
        .values(**values).execution_options(synchronize_session=False)).rowcount == 1
    db.session.refresh(refund)
    # Facts WeChat Pay tells us fill what we do not know yet, whatever the state.
    refund.refund_id = refund.refund_id or refund_id
    refund.accepted_at = refund.accepted_at or accepted_at
    refund.user_received_account = received_account or refund.user_received_account
    if changed and new_state in (RefundState.SUCCESS, RefundState.ABNORMAL):
        payment = refund.payment
        if payment.wechat_user_id:
            outbox.record("notify.refund", {"refund_id": refund.id, "state": new_state,
                                            "wechat_user_id": payment.wechat_user_id},
                          dedupe_key=f"refund-notice:{refund.id}:{new_state}")
    if changed and new_state == RefundState.SUCCESS:
        refunded = db.session.scalar(select(func.coalesce(func.sum(Refund.amount_fen), 0)).where(
            Refund.payment_id == refund.payment_id, Refund.state == RefundState.SUCCESS))
        if refunded >= refund.payment.amount_fen:
            db.session.execute(update(Payment).where(Payment.id == refund.payment_id,
                                                     Payment.state == PaymentState.PAID)
                               .values(state=PaymentState.REFUNDED).execution_options(synchronize_session=False))
            db.session.refresh(refund.payment)
    db.session.flush()
    return RefundResult(refund=refund, changed=changed)


def refund_refused(refund: Refund, reason: str) -> bool:
    """WeChat Pay refused the refund request for good: ``failed``, with its reason for staff."""
    changed = db.session.execute(
        update(Refund).where(Refund.id == refund.id, Refund.state == RefundState.PENDING)
        .values(state=RefundState.FAILED, last_error=reason[:300], updated_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount == 1
    db.session.refresh(refund)
    return changed


def retry_refund(refund_id: int) -> Refund:
    """Staff submit a refund again: one WeChat Pay refused (``failed``) or one still waiting
    after errors (``pending`` with ``last_error``). Same out_refund_no: refunded once."""
    refund = db.session.get(Refund, refund_id)
    if refund is None:
        raise NotFoundError("退款单不存在", code="refund_not_found")
    moved = db.session.execute(
        update(Refund).where(Refund.id == refund.id, or_(
            Refund.state == RefundState.FAILED,
            and_(Refund.state == RefundState.PENDING, Refund.last_error.is_not(None))))
        .values(state=RefundState.PENDING, updated_at=utcnow()).execution_options(synchronize_session=False)
    ).rowcount == 1
    db.session.refresh(refund)
    if not moved:
        raise ConflictError(f"退款单当前为“{refund.state_label}”，不能重新提交", code="refund_not_failed")
    outbox.record("pay.refund", {"refund_id": refund.id},
                  dedupe_key=f"refund:{refund.out_refund_no}:retry:{refund.attempts}")
    return refund


def close_payment(out_trade_no: str) -> Payment:
    """Close a stale unpaid order (created → closed); a paid order stays paid.

    Close the order at WeChat first: an order closed only here can still be paid there,
    in which case :func:`credit_payment` credits it anyway.
    """
    payment = db.session.scalar(select(Payment).where(Payment.out_trade_no == out_trade_no))
    if payment is None:
        raise NotFoundError("订单不存在", code="payment_not_found")
    closed = db.session.execute(
        update(Payment)
        .where(Payment.id == payment.id, Payment.state == PaymentState.CREATED)
        .values(state=PaymentState.CLOSED, closed_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if closed:
        _release_bills(payment)
    db.session.refresh(payment)
    return payment
