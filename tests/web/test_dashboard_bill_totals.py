"""Arrears and the season's collection on the dashboard come from ``metrics.bill_totals``,
kept in Redis under a stamp that moves with every credited payment (issue 17's bench: the
summary no longer reads every open bill each minute)."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from app.models import Bill, BillStatus
from app.services import billing, metrics


def test_a_credited_payment_moves_the_cached_arrears_at_once(db, redis, make_area, make_household, make_season,
                                                             clock):
    now = clock.utcnow()
    _, heping, _ = make_area(district="和平区")
    past = make_season(code="2025-2026", starts_on=date(2025, 11, 1), ends_on=date(2026, 3, 31),
                       due_on=date(2025, 11, 30))
    a, b = make_household(community=heping), make_household(community=heping)
    bills = [Bill(household_id=h.id, season_id=past.id, area_m2=Decimal(100), unit_price_fen=1000, amount_fen=100000,
                  paid_fen=0, status=BillStatus.UNPAID) for h in (a, b)]
    db.session.add_all(bills)
    db.session.commit()

    def heping_row():
        (row,) = [r for r in metrics.dashboard_summary(now)["money_by_district"] if r["label"] == "和平区"]
        return row["arrears_fen"], row["arrears_households"], row["collected_fen"]

    assert heping_row() == (200000, 2, 0)
    assert list(redis.scan_iter("dashboard:bills:*"))           # kept for the next summaries
    assert heping_row() == (200000, 2, 0)

    payment = billing.create_payment(None, [bills[0]], as_of=now.date())
    billing.credit_payment(payment.out_trade_no, "4200000001", payment.amount_fen, now - timedelta(minutes=1))
    db.session.commit()
    owed, owing, collected = heping_row()
    assert (owed, owing) == (100000, 1) and collected == payment.amount_fen
    assert metrics.bill_totals(now.date(), 1, cached=False)["arrears"] == [[heping.district_id, 100000, 1]]
