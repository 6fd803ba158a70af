"""Billing service: the exact surplus of money paid twice, the choice between the pending order
and a new one, and refund results recorded once."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from app.errors import DomainError, NotFoundError
from app.models import Bill, OutboxMessage, PaymentState, RefundState
from app.services.billing import (
    ORDER_TTL, REUSE_MIN_REMAINING, create_payment, credit_payment, issue_bills, plan_order,
    record_refund_result, split_item,
)

DUE = date(2026, 11, 30)
PAID_AT = datetime(2026, 12, 5, 2, 30, tzinfo=timezone.utc)


@pytest.fixture()
def bill(db, make_household, make_season):
    household = make_household(area_m2="89.50")
    season = make_season(unit_price_fen=2400, due_on=DUE)
    issue_bills(season, [household])
    return db.session.scalar(select(Bill).where(Bill.household_id == household.id))


@pytest.mark.parametrize("principal, late_fee, owed, kept", [
    (214800, 1074, 214800, (214800, 1074)),   # owed in full: all kept
    (214800, 1074, 0, (0, 0)),                # paid already: all surplus
    (214800, 1074, 300000, (214800, 1074)),   # owes more than the order (corrected upwards): all kept
    (10000, 51, 5000, (5000, 26)),            # half owed: half the late fee, 25.5 rounded half up
    (10000, 50, 3333, (3333, 17)),            # 16.665 → 17
])
def test_the_part_of_an_order_a_bill_keeps_is_exact(principal, late_fee, owed, kept):
    assert split_item(principal, late_fee, owed) == kept
    surplus = (principal - kept[0]) + (late_fee - kept[1])
    assert kept[0] + kept[1] + surplus == principal + late_fee     # nothing lost, nothing made up


def test_a_partly_paid_bill_keeps_its_share_and_the_rest_is_refunded(db, bill, make_wechat_user):
    user = make_wechat_user()
    old = create_payment(user, [bill], as_of=date(2026, 12, 10), bp_per_day=5)    # 214800 + 1074
    old.items[0].pending_bill_id = None                                         # a legacy duplicate
    bill.paid_fen = 100000                                                      # paid at the counter meanwhile
    bill.status = "partial"
    result = credit_payment(old.out_trade_no, "4200000010", old.amount_fen, PAID_AT)
    # Kept: the 114800 still owed and its share of the late fee (1074 × 114800 / 214800 = 574.0).
    assert (bill.paid_fen, bill.late_fee_paid_fen, bill.status) == (214800, 574, "paid")
    assert result.overpaid_fen == 100000 + 500 == result.refund.amount_fen
    assert result.refund.out_refund_no == f"RF{old.out_trade_no}"
    assert db.session.scalar(select(OutboxMessage.topic).where(OutboxMessage.dedupe_key == f"refund:RF{old.out_trade_no}"))


def test_the_pending_order_is_reused_only_while_it_is_the_same(db, bill, make_wechat_user):
    user, other = make_wechat_user(), make_wechat_user()
    today = date(2026, 12, 10)
    pending = create_payment(user, [bill], as_of=today, bp_per_day=5)
    created = pending.created_at
    assert plan_order(user, [bill], as_of=today, bp_per_day=5, now=created).reuse is pending
    # Another payer, another day's late fee, or too close to WeChat Pay's expiry: replaced.
    assert plan_order(other, [bill], as_of=today, bp_per_day=5, now=created).replace == [pending]
    assert plan_order(user, [bill], as_of=today + timedelta(days=1), bp_per_day=5, now=created).replace == [pending]
    late = created + ORDER_TTL - REUSE_MIN_REMAINING + timedelta(seconds=1)
    assert plan_order(user, [bill], as_of=today, bp_per_day=5, now=late).replace == [pending]


def test_a_refund_result_moves_the_refund_once_and_never_back(db, bill, make_wechat_user):
    user = make_wechat_user()
    first = create_payment(user, [bill], as_of=DUE)
    first.items[0].pending_bill_id = None
    second = create_payment(user, [bill], as_of=DUE)
    credit_payment(first.out_trade_no, "4200000011", first.amount_fen, PAID_AT)
    refund = credit_payment(second.out_trade_no, "4200000012", second.amount_fen, PAID_AT).refund
    no = refund.out_refund_no

    accepted = record_refund_result(no, "PROCESSING", refund_id="50300001", accepted_at=PAID_AT)
    assert accepted.changed and refund.state == RefundState.PROCESSING and refund.refund_id == "50300001"
    done = record_refund_result(no, "SUCCESS", succeeded_at=PAID_AT, received_account="支付用户零钱",
                                amount_fen=refund.amount_fen)
    assert done.changed and refund.state == RefundState.SUCCESS
    assert second.state == PaymentState.REFUNDED and first.state == PaymentState.PAID
    # A repeat, or a late PROCESSING answer, changes nothing and tells nobody again.
    assert not record_refund_result(no, "SUCCESS", amount_fen=refund.amount_fen).changed
    assert not record_refund_result(no, "PROCESSING").changed
    assert refund.state == RefundState.SUCCESS
    notices = db.session.scalars(select(OutboxMessage.dedupe_key).where(OutboxMessage.topic == "notify.refund")).all()
    assert notices == [f"refund-notice:{refund.id}:success"]
    with pytest.raises(DomainError):
        record_refund_result(no, "SUCCESS", amount_fen=refund.amount_fen + 1)
    with pytest.raises(NotFoundError):
        record_refund_result("RFNOSUCH", "SUCCESS")
