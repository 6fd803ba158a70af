"""The leader dashboard's figures of issue 17 on small, hand-checkable data (clock: 2026-11-25
10:00 Beijing, a Wednesday ten days into the 2026-2027 season)."""
from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from app.models import (
    Bill, BillStatus, CallLog, ClusterStatus, Conversation, ConversationStatus, OutageCluster, Payment,
    PaymentItem, PaymentState, Priority, Ticket, TicketState, TicketType,
)
from app.services import metrics

_n = itertools.count(1)
BJ = timezone(timedelta(hours=8))


@pytest.fixture()
def now(clock):
    return clock.utcnow()


@pytest.fixture()
def ticket(db, now):
    def make(*, created=timedelta(hours=1), at=None, **kw):
        n = next(_n)
        when = at if at is not None else now - created
        t = Ticket(number=f"TD{n:06d}", source="staff", type=kw.pop("type", TicketType.REPAIR),
                   description=kw.pop("description", "暖气不热"), state=kw.pop("state", TicketState.NEW),
                   created_at=when, updated_at=when, **kw)
        db.session.add(t)
        db.session.flush()
        return t

    return make


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BJ)


def test_unassigned_means_open_without_a_crew_and_not_waiting_on_an_outage(db, ticket, make_crew, now):
    from app.models import Outage, OutageStatus

    crew = make_crew()
    outage = Outage(title="锦绣家园抢修", kind="unplanned", reason="爆管", status=OutageStatus.ACTIVE,
                    starts_at=now - timedelta(hours=1))
    db.session.add(outage)
    db.session.flush()
    ticket()                                                     # new, no crew
    ticket(state=TicketState.ACCEPTED)                           # open, no crew
    ticket(crew_id=crew.id, state=TicketState.ASSIGNED)          # has a crew
    ticket(outage_id=outage.id)                                  # held on the outage
    ticket(state=TicketState.CLOSED, closed_at=now)              # closed
    summary = metrics.dashboard_summary(now)
    assert summary["tickets"]["unassigned"] == 2
    assert summary["tickets"]["open"] == 4
    assert metrics.drill("unassigned", now=now).total == 2


def test_response_and_finish_on_time_rates(db, ticket, now):
    h = timedelta(hours=1)
    # responded in the window: one on time, one late; one still waiting past its response deadline
    ticket(created=5 * h, respond_by=now - 4 * h, accepted_at=now - 4.5 * h, state=TicketState.ACCEPTED,
           finish_by=now + h)
    ticket(created=5 * h, respond_by=now - 4 * h, accepted_at=now - 3 * h, state=TicketState.ACCEPTED,
           finish_by=now + h)
    ticket(created=3 * h, respond_by=now - 1 * h, state=TicketState.NEW, finish_by=now + h)
    # finished in the window: one on time, one late, one cancelled (left out); one open and overdue
    ticket(created=30 * h, finish_by=now - 5 * h, replied_at=now - 6 * h, closed_at=now - 5 * h,
           state=TicketState.CLOSED)
    ticket(created=30 * h, finish_by=now - 5 * h, replied_at=now - 2 * h, state=TicketState.REPLIED)
    ticket(created=30 * h, finish_by=now - 5 * h, closed_at=now - 20 * h, state=TicketState.CANCELLED)
    ticket(created=30 * h, finish_by=now - 1 * h, state=TicketState.IN_PROGRESS,
           accepted_at=now - 29.5 * h, respond_by=now - 29 * h)
    s = metrics.dashboard_summary(now)
    # responses: accepted on time 2 (the first and the last one) of 3 accepted + 1 waiting late
    assert s["tickets"]["response_late"] == 1
    assert (s["times"]["response_on_time"], s["times"]["response_judged"]) == (2, 4)
    assert s["times"]["response_on_time_rate"] == 0.5
    # finishes: 1 on time of 2 finished (cancelled left out) + 1 overdue (the in-progress one)
    assert (s["times"]["finish_on_time"], s["times"]["finish_judged"]) == (1, 3)
    assert s["times"]["finish_on_time_rate"] == pytest.approx(0.3333, abs=1e-4)
    late = metrics.drill("response_late", now=now)
    assert late.total == 1


def test_today_by_type_and_district_count_only_today(db, ticket, make_area, make_household, now):
    d1, c1, _ = make_area(district="和平区")
    _, c2, _ = make_area(district="铁西区")
    h1, h2 = make_household(community=c1), make_household(community=c2)
    today = now.astimezone(BJ).date()
    ticket(at=local(today, 8), household_id=h1.id)
    ticket(at=local(today, 9), household_id=h1.id, type=TicketType.COMPLAINT)
    ticket(at=local(today - timedelta(days=1), 20), household_id=h2.id)   # yesterday
    s = metrics.dashboard_summary(now)
    today_types = {r["key"]: r["count"] for r in s["today_by_type"]}
    assert today_types["repair"] == 1 and today_types["complaint"] == 1
    assert {r["label"]: r["count"] for r in s["today_by_district"]} == {"和平区": 2}
    assert {r["label"]: r["count"] for r in s["by_district"]} == {"和平区": 2, "铁西区": 1}
    assert metrics.drill("today_district", str(d1.id), now=now).total == 2
    assert metrics.drill("today_type", "complaint", now=now).total == 1


def test_calls_answered_missed_and_the_queue(db, now):
    def call(cid, status, started, answered=None):
        db.session.add(CallLog(call_id=cid, caller_phone="+8613800000001", status=status, started_at=started,
                               answered_at=answered, last_event_at=started))

    call("a", "hangup", now - timedelta(minutes=30), answered=now - timedelta(minutes=30) + timedelta(seconds=20))
    call("b", "answered", now - timedelta(minutes=10), answered=now - timedelta(minutes=10) + timedelta(seconds=40))
    call("c", "missed", now - timedelta(minutes=9))
    call("d", "hangup", now - timedelta(minutes=8))                         # gave up before an answer
    call("e", "ringing", now - timedelta(minutes=2))                        # waiting now
    call("f", "ringing", now - timedelta(seconds=30))
    call("g", "ringing", now - timedelta(hours=3))                          # lost its hangup: not queued
    db.session.flush()
    c = metrics.dashboard_summary(now)["calls_today"]
    assert (c["total"], c["answered"], c["missed"]) == (7, 2, 2)
    assert c["answer_rate"] == 0.5
    assert c["avg_wait_seconds"] == 30
    assert (c["queue"], c["longest_wait_seconds"]) == (2, 120)
    assert [r["duration_s"] for r in metrics.drill("queue", now=now).rows] == [120, 30]


def test_arrears_and_todays_collection_by_district(db, make_area, make_household, make_season, now):
    _, heping, _ = make_area(district="和平区")
    _, tiexi, _ = make_area(district="铁西区")
    past = make_season(code="2025-2026", starts_on=date(2025, 11, 1), ends_on=date(2026, 3, 31),
                       due_on=date(2025, 11, 30))
    current = make_season(code="2026-2027", starts_on=date(2026, 11, 1), ends_on=date(2027, 3, 31),
                          due_on=date(2026, 11, 30))   # not yet due: no arrears
    a, b, c = make_household(community=heping), make_household(community=heping), make_household(community=tiexi)

    def bill(h, season, amount, paid, status):
        row = Bill(household_id=h.id, season_id=season.id, area_m2=Decimal(100), unit_price_fen=100,
                   amount_fen=amount, paid_fen=paid, status=status)
        db.session.add(row)
        db.session.flush()
        return row

    bill(a, past, 200000, 0, BillStatus.UNPAID)
    bill(b, past, 150000, 50000, BillStatus.PARTIAL)
    bill(c, past, 100000, 100000, BillStatus.PAID)
    bill(c, current, 99999, 0, BillStatus.UNPAID)
    paid_now = bill(a, current, 210000, 210000, BillStatus.PAID)
    p = Payment(out_trade_no="T1", amount_fen=210500, state=PaymentState.PAID, paid_at=now - timedelta(hours=1))
    p.items.append(PaymentItem(bill_id=paid_now.id, principal_fen=210000, late_fee_fen=500))
    old = Payment(out_trade_no="T0", amount_fen=100000, state=PaymentState.PAID, paid_at=now - timedelta(days=2))
    db.session.add_all([p, old])
    db.session.flush()
    rows = {r["label"]: r for r in metrics.dashboard_summary(now)["money_by_district"]}
    assert (rows["和平区"]["arrears_fen"], rows["和平区"]["arrears_households"]) == (300000, 2)
    assert (rows["和平区"]["collected_fen"], rows["和平区"]["payments"]) == (210500, 1)
    assert (rows["铁西区"]["arrears_fen"], rows["铁西区"]["collected_fen"]) == (0, 0)


def test_trend_compares_the_same_hours_of_yesterday_and_last_season(db, ticket, make_season, now):
    make_season(code="2025-2026", starts_on=date(2025, 11, 15), ends_on=date(2026, 3, 15), due_on=date(2025, 11, 30))
    make_season(code="2026-2027", starts_on=date(2026, 11, 15), ends_on=date(2027, 3, 15), due_on=date(2026, 11, 30))
    today = now.astimezone(BJ).date()                 # 2026-11-25, 10 days into the season
    yesterday = today - timedelta(days=1)
    for hour in (7, 8, 9):
        ticket(at=local(today, hour))
    ticket(at=local(yesterday, 9))
    ticket(at=local(yesterday, 11))                   # later in the day than now: not counted
    ticket(at=local(date(2025, 11, 25), 6))           # 10 days into last season
    ticket(at=local(date(2025, 11, 25), 8))
    ticket(at=local(date(2025, 11, 24), 8))           # another day
    trend = metrics.dashboard_summary(now)["trend"]
    assert trend["last_season_date"] == "2025-11-25"
    assert trend["tickets"] == {"today": 3, "yesterday": 1, "last_season": 2}


def test_intake_by_hour_today_and_yesterday(db, ticket, now):
    today = now.astimezone(BJ).date()
    ticket(at=local(today, 0, 5))
    ticket(at=local(today, 8, 10))
    ticket(at=local(today, 8, 50))
    ticket(at=local(today - timedelta(days=1), 23, 30))
    ticket(at=local(today - timedelta(days=2), 8, 0))   # two days ago: not shown
    hours = metrics.dashboard_summary(now)["intake_by_hour"]
    assert hours["today"][0] == 1 and hours["today"][8] == 2 and sum(hours["today"]) == 3
    assert hours["yesterday"][23] == 1 and sum(hours["yesterday"]) == 1


def test_complaints_and_repeat_complaints_from_the_same_household(db, ticket, make_household, now):
    again, once, long_ago = make_household(), make_household(), make_household()
    c = TicketType.COMPLAINT
    ticket(type=c, household_id=again.id, created=timedelta(days=10))      # outside the 7-day window
    ticket(type=c, household_id=again.id, created=timedelta(hours=2))      # repeat (10 days after)
    ticket(type=c, household_id=once.id, created=timedelta(days=3))
    ticket(type=c, household_id=long_ago.id, created=timedelta(days=45))   # more than 30 days before
    ticket(type=c, household_id=long_ago.id, created=timedelta(minutes=30))
    ticket(type=TicketType.REPAIR, household_id=once.id, created=timedelta(days=1))  # not a complaint
    s = metrics.dashboard_summary(now)["complaints"]
    assert (s["window"], s["today"], s["repeat"], s["repeat_days"]) == (3, 2, 1, 30)
    repeats = metrics.drill("repeat_complaints", now=now)
    assert repeats.total == 1


def test_visit_rate_is_visited_over_closed_in_the_window(db, ticket, now):
    for visited in (True, False, False, False):
        ticket(state=TicketState.CLOSED, closed_at=now - timedelta(days=1),
               visited_at=now - timedelta(hours=2) if visited else None)
    ticket(state=TicketState.CLOSED, closed_at=now - timedelta(days=20), visited_at=now - timedelta(days=19))
    ticket(state=TicketState.CANCELLED, closed_at=now - timedelta(days=1))
    v = metrics.dashboard_summary(now)["visits"]
    assert (v["closed"], v["visited"], v["rate"]) == (4, 1, 0.25)


def test_suspected_outages_are_the_open_clusters(db, make_area, now):
    _, community, station = make_area()
    db.session.add_all([
        OutageCluster(scope=f"station:{station.id}", open_key=f"station:{station.id}", station_id=station.id,
                      status=ClusterStatus.OPEN, report_count=12, first_report_at=now - timedelta(minutes=25),
                      last_report_at=now - timedelta(minutes=1)),
        OutageCluster(scope=f"community:{community.id}", community_id=community.id, status="expired",
                      report_count=10, first_report_at=now - timedelta(days=2), last_report_at=now - timedelta(days=2)),
    ])
    db.session.flush()
    [row] = metrics.dashboard_summary(now)["suspected_outages"]
    assert (row["place"], row["reports"]) == (station.name, 12)


def test_open_conversations_and_waiting_time(db, make_wechat_user, make_staff, now):
    agent = make_staff()
    waiting = Conversation(wechat_user_id=make_wechat_user().id, status=ConversationStatus.WAITING,
                           opened_at=now - timedelta(minutes=4), last_activity_at=now)
    active = Conversation(wechat_user_id=make_wechat_user().id, status=ConversationStatus.ACTIVE, agent_id=agent.id,
                          opened_at=now - timedelta(minutes=10), claimed_at=now - timedelta(minutes=9),
                          last_activity_at=now)
    closed = Conversation(wechat_user_id=make_wechat_user().id, status=ConversationStatus.CLOSED, agent_id=agent.id,
                          opened_at=now - timedelta(hours=2), claimed_at=now - timedelta(hours=2) + timedelta(minutes=3),
                          closed_at=now - timedelta(hours=1), last_activity_at=now)
    db.session.add_all([waiting, active, closed])
    db.session.flush()
    chat = metrics.dashboard_summary(now)["chat"]
    assert (chat["open"], chat["waiting"], chat["active"]) == (2, 1, 1)
    assert chat["longest_wait_seconds"] == 240
    assert chat["avg_wait_seconds"] == 120       # (60 s + 180 s) / 2, of those taken today


def test_deadline_flags_of_one_ticket(db, ticket, now):
    h = timedelta(hours=1)
    late = ticket(created=5 * h, respond_by=now - 4 * h, accepted_at=now - 3 * h, finish_by=now - h,
                  state=TicketState.IN_PROGRESS)
    fine = ticket(created=5 * h, respond_by=now - 4 * h, accepted_at=now - 4.5 * h, finish_by=now + h,
                  state=TicketState.ACCEPTED)
    assert metrics.ticket_deadlines(late, now) == {"response": "late", "finish": "late"}
    assert metrics.ticket_deadlines(fine, now) == {"response": "on_time", "finish": "pending"}


def test_a_new_call_or_conversation_moves_the_change_stamp(db, make_wechat_user, now):
    before = metrics.summary_stamp(now)
    db.session.add(CallLog(call_id="s1", caller_phone="+8613800000009", status="ringing", started_at=now,
                           last_event_at=now))
    db.session.commit()
    after_call = metrics.summary_stamp(now)
    assert after_call != before
    call = db.session.query(CallLog).one()
    call.status, call.answered_at = "answered", now      # leaves the queue
    db.session.commit()
    assert metrics.summary_stamp(now) != after_call
    before = metrics.summary_stamp(now)
    db.session.add(Conversation(wechat_user_id=make_wechat_user().id, opened_at=now, last_activity_at=now))
    db.session.commit()
    assert metrics.summary_stamp(now) != before


def test_emergency_priority_still_counted(db, ticket, now):
    ticket(priority=Priority.EMERGENCY, state=TicketState.ASSIGNED)
    assert metrics.dashboard_summary(now)["tickets"]["emergency_open"] == 1


def test_satisfaction_counts_ivr_call_ratings_once(db, ticket, now):
    rated = ticket(state=TicketState.CLOSED, rating=5, rated_at=now - timedelta(hours=1))
    ticket(state=TicketState.CLOSED, rating=2, rated_at=now - timedelta(hours=2))

    def call(cid, rating, on_ticket=False, ticket_id=None):
        db.session.add(CallLog(call_id=cid, caller_phone="+8613800000001", status="hangup",
                               started_at=now - timedelta(hours=3), answered_at=now - timedelta(hours=3),
                               last_event_at=now, rating=rating, rated_at=now - timedelta(hours=2, minutes=50),
                               rating_on_ticket=on_ticket, ticket_id=ticket_id))

    call("r1", 4)
    call("r2", 5, on_ticket=True, ticket_id=rated.id)   # the same rating as the ticket's: once
    call("r3", 1)
    db.session.flush()
    sat = metrics.dashboard_summary(now)["satisfaction"]
    assert (sat["count"], sat["ticket_ratings"], sat["call_ratings"]) == (4, 2, 2)
    assert sat["average"] == 3.0              # (5 + 2 + 4 + 1) / 4
    assert sat["satisfied_rate"] == 0.5       # 5 and 4
