"""Billing service: amounts, late fees, arrears, bill issuing and exactly-once crediting."""
from __future__ import annotations

import threading
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.errors import ConflictError, DomainError, ValidationError
from app.models import Bill, BillStatus, HouseholdStatus, Payment, PaymentState
from app.services.billing import (
    PendingOrderExists, bill_amount_fen, close_payment, create_payment, credit_payment, household_arrears,
    issue_bills, late_fee_fen,
)

DUE = date(2026, 11, 30)
PAID_AT = datetime(2026, 12, 5, 2, 30, tzinfo=timezone.utc)


@pytest.fixture()
def billed(db, make_household, make_season):
    """One household of 89.50 m² billed for 2026-2027 at 24.00 元/m² (214800 fen), due Nov 30."""
    household = make_household(area_m2="89.50")
    season = make_season(unit_price_fen=2400, due_on=DUE)
    issue_bills(season, [household])
    bill = db.session.scalar(select(Bill).where(Bill.household_id == household.id))
    return household, season, bill


# --- amounts -------------------------------------------------------------------------------

def test_bill_amount_is_area_times_unit_price_in_fen():
    assert bill_amount_fen(Decimal("89.50"), 2400) == 214800


def test_bill_amount_subtracts_discount_but_never_goes_below_zero():
    assert bill_amount_fen(Decimal("89.50"), 2400, discount_fen=10000) == 204800
    assert bill_amount_fen(Decimal("10.00"), 2400, discount_fen=50000) == 0


def test_bill_amount_rounds_half_up_to_whole_fen():
    assert bill_amount_fen(Decimal("87.33"), 2350) == 205226   # 205225.5
    assert bill_amount_fen(Decimal("87.31"), 2350) == 205179   # 205178.5: half up, not to even
    assert bill_amount_fen(Decimal("0.01"), 33) == 0           # 0.33


# --- late fees -----------------------------------------------------------------------------

def test_no_late_fee_before_or_on_the_due_date(billed):
    _, _, bill = billed
    assert late_fee_fen(bill, date(2026, 11, 1), bp_per_day=5) == 0
    assert late_fee_fen(bill, DUE, bp_per_day=5) == 0


def test_late_fee_accrues_per_day_after_the_due_date(billed):
    _, _, bill = billed
    assert late_fee_fen(bill, date(2026, 12, 1), bp_per_day=5) == 107        # 214800 × 0.0005 = 107.4
    assert late_fee_fen(bill, date(2026, 12, 10), bp_per_day=5) == 1074      # 10 days


def test_season_rate_overrides_the_configured_rate(billed):
    _, season, bill = billed
    season.late_fee_bp_per_day = 10
    assert late_fee_fen(bill, date(2026, 12, 10), bp_per_day=5) == 2148


def test_late_fee_uses_the_app_config_rate_when_none_is_given(app, billed, monkeypatch):
    _, _, bill = billed
    monkeypatch.setitem(app.config, "LATE_FEE_BP_PER_DAY", 8)
    assert late_fee_fen(bill, date(2026, 12, 10)) == 1718                    # 214800 × 0.0008 × 10


def test_partial_payment_lowers_the_late_fee_base(billed):
    _, _, bill = billed
    bill.paid_fen, bill.status = 114800, BillStatus.PARTIAL
    assert late_fee_fen(bill, date(2026, 12, 10), bp_per_day=5) == 500       # 100000 × 0.0005 × 10


def test_paid_and_waived_bills_owe_no_late_fee(billed):
    _, _, bill = billed
    bill.paid_fen, bill.status = bill.amount_fen, BillStatus.PAID
    assert late_fee_fen(bill, date(2027, 1, 1), bp_per_day=5) == 0
    bill.paid_fen, bill.status = 0, BillStatus.WAIVED
    assert late_fee_fen(bill, date(2027, 1, 1), bp_per_day=5) == 0


# --- arrears -------------------------------------------------------------------------------

def test_arrears_list_open_bills_of_all_seasons_oldest_first(db, make_household, make_season):
    household = make_household(area_m2="100.00")
    newer = make_season(code="2026-2027", unit_price_fen=2400, due_on=date(2026, 11, 30),
                        starts_on=date(2026, 11, 15), ends_on=date(2027, 3, 15))
    older = make_season(code="2025-2026", unit_price_fen=2300, due_on=date(2025, 11, 30),
                        starts_on=date(2025, 11, 15), ends_on=date(2026, 3, 15))
    oldest = make_season(code="2024-2025", unit_price_fen=2200, due_on=date(2024, 11, 30),
                         starts_on=date(2024, 11, 15), ends_on=date(2025, 3, 15))
    for season in (newer, older, oldest):
        issue_bills(season, [household])
    paid = db.session.scalar(select(Bill).where(Bill.season_id == oldest.id))
    paid.paid_fen, paid.status = paid.amount_fen, BillStatus.PAID

    summary = household_arrears(household.id, date(2026, 12, 10), bp_per_day=5)

    assert [i.season_code for i in summary.items] == ["2025-2026", "2026-2027"]
    assert [i.principal_fen for i in summary.items] == [230000, 240000]
    assert summary.items[0].late_fee_fen == 43125       # 230000 × 0.0005 × 375 days
    assert summary.items[1].late_fee_fen == 1200        # 240000 × 0.0005 × 10 days
    assert summary.total_principal_fen == 470000
    assert summary.total_late_fee_fen == 44325
    assert summary.total_due_fen == 514325


# --- issuing bills -------------------------------------------------------------------------

def test_issue_bills_is_idempotent_and_skips_suspended_households(db, make_household, make_season):
    a = make_household(area_m2="89.50")
    b = make_household(area_m2="87.33")
    make_household(area_m2="120.00", status=HouseholdStatus.SUSPENDED)
    season = make_season(unit_price_fen=2350)

    assert issue_bills(season) == 2
    assert issue_bills(season) == 0
    assert issue_bills(season, [a]) == 0

    bills = db.session.scalars(select(Bill).order_by(Bill.household_id)).all()
    assert [(x.household_id, x.amount_fen) for x in bills] == [(a.id, 210325), (b.id, 205226)]


def test_bill_keeps_the_area_and_price_it_was_computed_from(billed):
    household, season, bill = billed
    household.area_m2 = Decimal("120.00")
    season.unit_price_fen = 3000
    issue_bills(season, [household])
    assert (bill.area_m2, bill.unit_price_fen, bill.amount_fen) == (Decimal("89.50"), 2400, 214800)


# --- creating payments ---------------------------------------------------------------------

def test_payment_fixes_principal_and_late_fee_at_order_time(billed, make_wechat_user):
    _, _, bill = billed
    payment = create_payment(make_wechat_user(), [bill], as_of=date(2026, 12, 10), bp_per_day=5)
    assert payment.state == PaymentState.CREATED
    assert [(i.bill_id, i.principal_fen, i.late_fee_fen) for i in payment.items] == [(bill.id, 214800, 1074)]
    assert payment.amount_fen == 215874
    assert len(payment.out_trade_no) <= 32


def test_payment_refuses_an_empty_bill_list(db, make_wechat_user):
    with pytest.raises(ValidationError):
        create_payment(make_wechat_user(), [])


def test_payment_refuses_a_bill_already_paid(billed, make_wechat_user):
    _, _, bill = billed
    bill.paid_fen, bill.status = bill.amount_fen, BillStatus.PAID
    with pytest.raises(ConflictError):
        create_payment(make_wechat_user(), [bill])


def test_payment_refuses_bills_of_different_households(db, billed, make_household, make_wechat_user):
    _, season, bill = billed
    other = make_household()
    issue_bills(season, [other])
    other_bill = db.session.scalar(select(Bill).where(Bill.household_id == other.id))
    with pytest.raises(ValidationError):
        create_payment(make_wechat_user(), [bill, other_bill])


# --- crediting payments --------------------------------------------------------------------

def test_payment_is_credited_once_however_often_it_is_notified(db, billed, make_wechat_user):
    _, _, bill = billed
    payment = create_payment(make_wechat_user(), [bill], as_of=date(2026, 12, 10), bp_per_day=5)

    results = [credit_payment(payment.out_trade_no, "4200000001", payment.amount_fen, PAID_AT, "oPAYER")
               for _ in range(3)]

    assert [r.credited for r in results] == [True, False, False]
    assert [r.already_credited for r in results] == [False, True, True]
    db.session.refresh(bill)
    assert (bill.paid_fen, bill.late_fee_paid_fen, bill.status) == (214800, 1074, BillStatus.PAID)
    assert bill.paid_at == PAID_AT
    assert (payment.state, payment.transaction_id, payment.payer_openid) == (PaymentState.PAID, "4200000001", "oPAYER")


def test_amount_mismatch_is_refused_and_changes_nothing(db, billed, make_wechat_user):
    _, _, bill = billed
    payment = create_payment(make_wechat_user(), [bill], as_of=DUE)
    with pytest.raises(DomainError) as exc:
        credit_payment(payment.out_trade_no, "4200000002", payment.amount_fen - 1, PAID_AT)
    assert exc.value.code == "amount_mismatch"
    db.session.refresh(payment)
    db.session.refresh(bill)
    assert (payment.state, payment.transaction_id) == (PaymentState.CREATED, None)
    assert (bill.paid_fen, bill.status) == (0, BillStatus.UNPAID)


def test_closed_order_paid_at_wechat_is_still_credited(db, billed, make_wechat_user):
    _, _, bill = billed
    payment = create_payment(make_wechat_user(), [bill], as_of=DUE)
    assert close_payment(payment.out_trade_no).state == PaymentState.CLOSED

    result = credit_payment(payment.out_trade_no, "4200000003", payment.amount_fen, PAID_AT)

    assert result.credited and result.paid_after_close
    assert payment.state == PaymentState.PAID
    assert bill.status == BillStatus.PAID


def test_closing_a_paid_order_leaves_it_paid(db, billed, make_wechat_user):
    _, _, bill = billed
    payment = create_payment(make_wechat_user(), [bill], as_of=DUE)
    credit_payment(payment.out_trade_no, "4200000004", payment.amount_fen, PAID_AT)
    assert close_payment(payment.out_trade_no).state == PaymentState.PAID
    assert payment.closed_at is None


def test_credit_leaves_a_bill_partial_when_the_order_covered_less_than_owed(db, billed, make_wechat_user):
    _, _, bill = billed
    payment = create_payment(make_wechat_user(), [bill], as_of=DUE)
    bill.amount_fen += 5000                      # bill corrected upwards after the order was made
    credit_payment(payment.out_trade_no, "4200000005", payment.amount_fen, PAID_AT)
    assert (bill.paid_fen, bill.outstanding_fen, bill.status, bill.paid_at) == (214800, 5000, BillStatus.PARTIAL, None)


def test_a_bill_in_a_pending_order_cannot_go_into_a_second_one(db, billed, make_wechat_user):
    _, _, bill = billed
    user = make_wechat_user()
    create_payment(user, [bill], as_of=DUE)
    with pytest.raises(PendingOrderExists):
        create_payment(user, [bill], as_of=DUE)   # the unique pending_bill_id refuses it
    db.session.rollback()


def test_a_second_payment_for_a_paid_bill_becomes_a_refund_not_credit(db, billed, make_wechat_user):
    _, _, bill = billed
    user = make_wechat_user()
    first = create_payment(user, [bill], as_of=date(2026, 12, 10), bp_per_day=5)
    first.items[0].pending_bill_id = None    # made before bills were claimed: a legacy duplicate
    second = create_payment(user, [bill], as_of=date(2026, 12, 10), bp_per_day=5)
    credit_payment(first.out_trade_no, "4200000006", first.amount_fen, PAID_AT)
    result = credit_payment(second.out_trade_no, "4200000007", second.amount_fen, PAID_AT)
    assert result.credited and result.overpaid_fen == 215874 == second.amount_fen   # principal + late fee
    assert (result.refund.amount_fen, result.refund.state) == (215874, "pending")
    assert (bill.paid_fen, bill.late_fee_paid_fen, bill.status) == (214800, 1074, BillStatus.PAID)


def test_concurrent_notifications_credit_the_bill_once(app, db, billed, make_wechat_user):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("row-level concurrency is only meaningful on PostgreSQL")
    _, _, bill = billed
    payment = create_payment(make_wechat_user(), [bill], as_of=DUE)
    out_trade_no, amount, bill_id = payment.out_trade_no, payment.amount_fen, bill.id
    db.session.commit()

    threads_count = 6
    barrier = threading.Barrier(threads_count)
    outcomes: list[object] = []

    def notify():
        with app.app_context():      # own app context → own session and connection
            barrier.wait()
            try:
                result = credit_payment(out_trade_no, "4200000099", amount, PAID_AT)
                db.session.commit()
                outcomes.append(result.credited)
            except Exception as exc:  # collected so the assertion shows it
                db.session.rollback()
                outcomes.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=notify) for _ in range(threads_count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert sorted(outcomes, key=str) == [False] * (threads_count - 1) + [True]
    db.session.expire_all()
    fresh = db.session.get(Bill, bill_id)
    assert (fresh.paid_fen, fresh.status) == (214800, BillStatus.PAID)
    assert db.session.scalar(select(func.count()).select_from(Payment).where(Payment.state == PaymentState.PAID)) == 1
