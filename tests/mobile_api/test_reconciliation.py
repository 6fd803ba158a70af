"""Daily reconciliation against WeChat Pay's trade bill: the sandbox makes the bill from its own
orders and refunds (WeChat Pay's CSV), ``flask pay reconcile`` downloads and matches it, the
console lists the differences and the leader dashboard counts the open ones."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from app import clock as app_clock
from app.models import (
    Bill, Payment, PaymentState, ReconciliationMismatch, ReconciliationRun, Refund, Role, utcnow,
)
from app.services import billing
from jobs.reconcile import reconcile_due
from tests.mobile_api.payflow import fresh, legacy_order, order, resident
from tests.web.conftest import PASSWORD, Console
from wechat import pay as wechat_pay

BEIJING = ZoneInfo("Asia/Shanghai")


@pytest.fixture()
def both_clocks(pay_wechat):
    """WeChat's clock and ours moved together (forward only, like the sandbox's): ``to(moment)``."""
    def to(moment: datetime) -> None:
        now = pay_wechat.advance_clock(0)
        landed = pay_wechat.advance_clock(moment.timestamp() - now)
        app_clock.travel_to(datetime.fromtimestamp(landed, timezone.utc))

    yield to
    app_clock.back_to_real_time()


@pytest.fixture()
def trading_day(both_clocks):
    """Noon of tomorrow (Beijing): every payment of the test falls on that one calendar day,
    whatever time it is when the test runs."""
    local = datetime.fromtimestamp(time.time(), BEIJING)
    noon = (local + timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    both_clocks(noon)
    return noon.date()


def _bill_of(db, household):
    return db.session.scalar(select(Bill).where(Bill.household_id == household.id))


def _household(db, world, make_household):
    h = make_household(community=world.community, station=world.station)
    billing.issue_bills(world.season, [h])
    db.session.commit()
    return h


def test_a_day_is_reconciled_against_wechat_pays_bill(app, db, pay_wechat, world, api, worker, runner, client,
                                                      make_household, make_staff, both_clocks, trading_day):
    day = trading_day
    # 1. Paid and notified: matches.
    me, user, _ = resident(db, pay_wechat, api, world.household)
    ok = order(me, world.household, world.bill).json()
    pay_wechat.pay(ok["out_trade_no"])
    # 2. Two phones paid one bill: the second payment and its refund both match.
    h2 = _household(db, world, make_household)
    phone, user2, _ = resident(db, pay_wechat, api, h2)
    first = order(phone, h2, _bill_of(db, h2)).json()
    twice = legacy_order(db, user2, h2, [_bill_of(db, h2)])
    pay_wechat.pay(first["out_trade_no"])
    pay_wechat.pay(twice.out_trade_no)
    worker()                                              # the refund is accepted by WeChat Pay
    refund = db.session.scalar(select(Refund))
    assert pay_wechat.settle_refund(refund.out_refund_no)["notification"]["delivered"]
    # 3. Paid at WeChat Pay, the notification never came and nobody asked: state differs.
    h3 = _household(db, world, make_household)
    silent = order(resident(db, pay_wechat, api, h3)[0], h3, _bill_of(db, h3)).json()
    pay_wechat.pay(silent["out_trade_no"], notify=False)
    # 4. Our amount was changed by hand after payment: amount differs.
    h4 = _household(db, world, make_household)
    changed = order(resident(db, pay_wechat, api, h4)[0], h4, _bill_of(db, h4)).json()
    pay_wechat.pay(changed["out_trade_no"])
    db.session.execute(Payment.__table__.update().where(Payment.out_trade_no == changed["out_trade_no"])
                       .values(amount_fen=Payment.amount_fen + 100))
    # 5. An order WeChat Pay took money for that we never made: missing here.
    ghost = "HPGHOST" + day.strftime("%Y%m%d") + "0001"
    wechat_pay.jsapi_prepay(out_trade_no=ghost, description="供热费", amount_fen=4321, openid=user.mp_openid,
                            time_expire=utcnow() + timedelta(hours=2))
    pay_wechat.pay(ghost)                                 # its notification is refused (unknown order)
    # 6. A payment we recorded that WeChat Pay never saw: missing at WeChat Pay.
    db.session.add(Payment(out_trade_no="HPLOCALONLY0001", amount_fen=1234, state=PaymentState.PAID,
                           transaction_id="4200LOCAL0001", paid_at=utcnow() + timedelta(minutes=5)))
    db.session.commit()

    # The next morning, after 10:00 Beijing, WeChat Pay's bill is ready.
    both_clocks(datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=BEIJING).replace(hour=10, minute=35))
    result = runner.invoke(args=["pay", "reconcile", "--date", day.isoformat()])
    assert result.exit_code == 0, result.output
    assert f"对账 Reconciliation {day.isoformat()}" in result.output
    assert "一致 Matched: 4   差异 Mismatches: 4" in result.output     # 3 payments + 1 refund match
    run = db.session.scalar(select(ReconciliationRun).where(ReconciliationRun.bill_date == day))
    found = {(m.kind, m.out_trade_no) for m in run.mismatches}
    assert found == {("state", silent["out_trade_no"]), ("amount", changed["out_trade_no"]),
                     ("missing_local", ghost), ("missing_remote", "HPLOCALONLY0001")}
    assert (run.wechat_payments, run.wechat_refunds, run.our_refunds) == (6, 1, 1)
    amount = next(m for m in run.mismatches if m.kind == "amount")
    assert amount.our_amount_fen == amount.wechat_amount_fen + 100
    assert "我方订单为“未支付”" in next(m for m in run.mismatches if m.kind == "state").detail
    for line in ("我方缺失 (missing here): " + ghost, "微信支付缺失 (missing at WeChat Pay): HPLOCALONLY0001",
                 "金额不符 (amount differs): " + changed["out_trade_no"]):
        assert line in result.output

    # The console's 对账 page lists them; the leader's dashboard counts the open ones.
    agent = make_staff(role=Role.AGENT, password=PASSWORD)
    leader = make_staff(role=Role.LEADER, password=PASSWORD)
    db.session.commit()
    console = Console(client)
    console.login(agent.username)
    page = console.get(f"/console/reconciliation?date={day.isoformat()}").get_data(as_text=True)
    for number in (silent["out_trade_no"], changed["out_trade_no"], ghost, "HPLOCALONLY0001"):
        assert f'data-number="{number}"' in page
    assert 'id="mismatch-count">4<' in page and 'id="open-mismatches">4<' in page
    mismatch = next(m for m in run.mismatches if m.kind == "missing_remote")
    assert console.post(f"/console/reconciliation/mismatches/{mismatch.id}/resolve",
                        data={"note": "人工核实：测试数据，已作废"}).status_code == 302
    leaders_view = Console(app.test_client())
    leaders_view.login(leader.username)
    assert leaders_view.get("/dashboard/summary.json").get_json()["summary"]["reconciliation"]["open_mismatches"] == 3
    assert 'id="fig-reconciliation">3<' in leaders_view.get("/dashboard/").get_data(as_text=True)

    # Again (by default: yesterday, in the app's time zone): the day's results are replaced, not
    # added to, and the resolved difference keeps its resolution.
    again = runner.invoke(args=["pay", "reconcile"])
    assert again.exit_code == 0 and f"对账 Reconciliation {day.isoformat()}" in again.output, again.output
    assert "[已处理 resolved]" in again.output
    db.session.expire_all()
    assert db.session.scalar(select(func.count(ReconciliationRun.id))) == 1
    assert db.session.scalar(select(func.count(ReconciliationMismatch.id))) == 4
    kept = db.session.scalar(select(ReconciliationMismatch).where(ReconciliationMismatch.kind == "missing_remote"))
    assert kept.resolution_note == "人工核实：测试数据，已作废" and kept.resolved_by_id == agent.id
    # The periodic job sees the day done.
    assert reconcile_due() == "done"


def test_the_daily_job_waits_for_the_bill_and_runs_once(db, pay_wechat, world, api, both_clocks, trading_day):
    me, _, _ = resident(db, pay_wechat, api, world.household)
    pay_wechat.pay(order(me, world.household, world.bill).json()["out_trade_no"])
    next_day = datetime.combine(trading_day + timedelta(days=1), datetime.min.time(), tzinfo=BEIJING)
    both_clocks(next_day.replace(hour=9, minute=30))
    assert reconcile_due() == "too early"
    both_clocks(next_day.replace(hour=10, minute=40))
    assert reconcile_due() == "0 mismatch(es)"
    run = db.session.scalar(select(ReconciliationRun))
    assert (run.bill_date, run.matched, run.wechat_payments) == (trading_day, 1, 1)
    assert reconcile_due() == "done"


def test_a_day_without_trades_has_no_bill_and_reconciles_to_our_side(db, pay_wechat, runner, both_clocks,
                                                                      trading_day):
    both_clocks(datetime.combine(trading_day + timedelta(days=1), datetime.min.time(),
                                 tzinfo=BEIJING).replace(hour=11))
    db.session.add(Payment(out_trade_no="HPLOCALONLY0002", amount_fen=500, state=PaymentState.PAID,
                           transaction_id="4200LOCAL0002",
                           paid_at=datetime.combine(trading_day, datetime.min.time(), tzinfo=BEIJING)
                           + timedelta(hours=15)))
    db.session.commit()
    result = runner.invoke(args=["pay", "reconcile", "--date", trading_day.isoformat()])
    assert result.exit_code == 0, result.output
    assert "微信支付当日无交易账单" in result.output and "差异 Mismatches: 1" in result.output
    assert fresh(db, ReconciliationRun, db.session.scalar(select(ReconciliationRun.id))).bill_available is False


def test_a_bill_not_made_yet_is_reported_not_stored(db, pay_wechat, runner, both_clocks, trading_day):
    result = runner.invoke(args=["pay", "reconcile", "--date", trading_day.isoformat()])   # today at WeChat Pay
    assert result.exit_code == 1 and "账单生成中" in result.output
    assert db.session.scalar(select(func.count(ReconciliationRun.id))) == 0


def test_a_seeded_day_of_the_demo_city_reconciles_with_no_difference(db, pay_wechat, runner, clock):
    """`flask seed-demo` registers the demo's paid orders with WeChat Pay (the sandbox), so a
    seeded day's bill matches the database: the demo does not open on a wall of differences."""
    from collections import Counter

    from jobs.reconcile import reconcile

    seeded = runner.invoke(args=["seed-demo", "--households", "200"])
    assert seeded.exit_code == 0 and "沙箱支付记录 sandbox paid orders" in seeded.output, seeded.output
    busiest, count = Counter(p.paid_at.astimezone(BEIJING).date()
                             for p in db.session.scalars(select(Payment)) if p.paid_at).most_common(1)[0]
    run = reconcile(busiest)
    assert run.our_payments == count and run.wechat_payments == count
    assert (run.matched, run.mismatch_count) == (count, 0)
