"""Dashboard figures on known data, and the lists behind them."""
from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest

from app.models import (
    Bill, BillStatus, CallLog, Outage, OutageArea, OutageStatus, Payment, PaymentState, Priority, Role, Ticket,
    TicketState, TicketType, utcnow,
)
from app.services import metrics

_n = itertools.count(1)


@pytest.fixture()
def now():
    return utcnow()


@pytest.fixture()
def ticket(db, now):
    def make(*, created=timedelta(hours=1), **kw):
        n = next(_n)
        t = Ticket(number=f"TM{n:06d}", source="staff", type=kw.pop("type", TicketType.REPAIR),
                   description=kw.pop("description", "暖气不热"), state=kw.pop("state", TicketState.NEW),
                   created_at=now - created, updated_at=now - created, **kw)
        db.session.add(t)
        db.session.flush()
        return t

    return make


def test_today_open_overdue_and_emergency_counts(db, ticket, now):
    day_start = metrics.local_day_start(now)
    ticket(created=now - day_start + timedelta(hours=2), state=TicketState.CLOSED)   # yesterday, closed
    ticket(finish_by=now - timedelta(minutes=5))                                      # open, overdue
    ticket(finish_by=now + timedelta(hours=3), priority=Priority.EMERGENCY, state=TicketState.ASSIGNED)
    ticket(finish_by=now - timedelta(hours=1), state=TicketState.CLOSED, closed_at=now)  # late but closed
    ticket(state=TicketState.CANCELLED, finish_by=now - timedelta(hours=1))
    s = metrics.dashboard_summary(now)
    t = s["tickets"]
    assert t["open"] == 2
    assert t["overdue"] == 1
    assert t["emergency_open"] == 1
    assert t["closed_today"] == 1
    # created since local midnight (all but the first, if now is not just after midnight)
    assert t["today"] == sum(1 for x in db.session.query(Ticket) if x.created_at >= day_start)


def test_average_first_response_and_repair_time_over_the_window(ticket, now):
    # accepted 30 and 90 minutes after creation → 60 minutes on average
    ticket(created=timedelta(hours=5), accepted_at=now - timedelta(hours=5) + timedelta(minutes=30))
    ticket(created=timedelta(hours=5), accepted_at=now - timedelta(hours=5) + timedelta(minutes=90))
    # answered by the crew after 2 h; closed directly by an agent after 4 h → 3 h
    ticket(created=timedelta(hours=6), replied_at=now - timedelta(hours=4), closed_at=now - timedelta(hours=1),
           state=TicketState.CLOSED)
    ticket(created=timedelta(hours=6), closed_at=now - timedelta(hours=2), state=TicketState.CLOSED,
           type=TicketType.INQUIRY)
    # outside the 7-day window: ignored
    ticket(created=timedelta(days=30), accepted_at=now - timedelta(days=29), replied_at=now - timedelta(days=20))
    times = metrics.dashboard_summary(now)["times"]
    assert times["first_response_minutes"] == pytest.approx(60, abs=0.2)
    assert times["response_count"] == 2
    assert times["repair_hours"] == pytest.approx(3, abs=0.05)
    assert times["repair_count"] == 2


def test_satisfaction_is_the_average_rating_and_share_of_four_or_five(ticket, now):
    for rating in (5, 4, 2, 5):
        ticket(state=TicketState.CLOSED, rating=rating, rated_at=now - timedelta(hours=1))
    ticket(state=TicketState.CLOSED, rating=1, rated_at=now - timedelta(days=40))  # too old
    sat = metrics.dashboard_summary(now)["satisfaction"]
    assert sat["count"] == 4
    assert sat["average"] == 4.0
    assert sat["satisfied_rate"] == 0.75


def test_tickets_by_type_and_by_district(db, ticket, make_area, make_household, now):
    d1, c1, _ = make_area(district="和平区")
    d2, c2, _ = make_area(district="南开区")
    h1, h2 = make_household(community=c1), make_household(community=c2)
    ticket(household_id=h1.id)
    ticket(household_id=h1.id, type=TicketType.COMPLAINT)
    ticket(household_id=h2.id)
    ticket()  # no household
    s = metrics.dashboard_summary(now)
    by_type = {r["key"]: r["count"] for r in s["by_type"]}
    assert by_type[TicketType.REPAIR] == 3 and by_type[TicketType.COMPLAINT] == 1 and by_type[TicketType.HELP] == 0
    assert [r["label"] for r in s["by_type"]][:2] == ["报修", "投诉"]
    by_district = {r["label"]: r["count"] for r in s["by_district"]}
    assert by_district == {"和平区": 2, "南开区": 1, "未关联住户": 1}


def test_fee_collection_rate_this_season_and_payments_today(db, make_household, make_season, now):
    today = now.date()
    current = make_season(code="本季", starts_on=today - timedelta(days=10), ends_on=today + timedelta(days=100),
                          due_on=today + timedelta(days=5))
    old = make_season(code="上季", starts_on=today - timedelta(days=400), ends_on=today - timedelta(days=250),
                      due_on=today - timedelta(days=390))
    h1, h2, h3 = make_household(), make_household(), make_household()
    db.session.add_all([
        Bill(household_id=h1.id, season_id=current.id, area_m2=Decimal(100), unit_price_fen=100, amount_fen=10000,
             paid_fen=10000, status=BillStatus.PAID),
        Bill(household_id=h2.id, season_id=current.id, area_m2=Decimal(100), unit_price_fen=100, amount_fen=10000,
             paid_fen=5000, status=BillStatus.PARTIAL),
        Bill(household_id=h3.id, season_id=current.id, area_m2=Decimal(100), unit_price_fen=100, amount_fen=10000,
             paid_fen=0, status=BillStatus.WAIVED),
        Bill(household_id=h3.id, season_id=old.id, area_m2=Decimal(100), unit_price_fen=100, amount_fen=10000,
             paid_fen=0, status=BillStatus.UNPAID),
        Payment(out_trade_no="P1", amount_fen=5000, state=PaymentState.PAID, paid_at=now - timedelta(minutes=3)),
        Payment(out_trade_no="P2", amount_fen=7000, state=PaymentState.CREATED),
        Payment(out_trade_no="P3", amount_fen=9000, state=PaymentState.PAID, paid_at=now - timedelta(days=3)),
    ])
    db.session.flush()
    fees = metrics.dashboard_summary(now)["fees"]
    assert fees["season"] == "本季"
    assert fees["due_fen"] == 20000 and fees["paid_fen"] == 15000 and fees["rate"] == 0.75
    assert fees["payments_today"] == 1 and fees["payments_today_fen"] == 5000


def test_outages_in_progress_show_the_households_affected(db, make_area, make_household, now):
    _, community, station = make_area()
    for building in ("1", "1", "2"):
        make_household(community=community, building=building)
    live = Outage(title="3号楼管道抢修", kind="unplanned", reason="爆管", status=OutageStatus.ACTIVE,
                  starts_at=now - timedelta(hours=1))
    live.areas = [OutageArea(community_id=community.id, building="1")]
    done = Outage(title="已恢复", kind="planned", reason="检修", status=OutageStatus.RESTORED,
                  starts_at=now - timedelta(days=2))
    done.areas = [OutageArea(station_id=station.id)]
    db.session.add_all([live, done])
    db.session.flush()
    outages = metrics.dashboard_summary(now)["outages"]
    assert [(o["title"], o["households"]) for o in outages] == [("3号楼管道抢修", 2)]


def test_each_crew_has_its_load_and_last_known_location(db, ticket, make_crew, make_staff, now):
    crew = make_crew(name="一班")
    idle = make_crew(name="二班")
    lead = make_staff(role=Role.CREW_LEAD, crew=crew, name="老王")
    member = make_staff(role=Role.CREW_MEMBER, crew=crew, name="小李")
    lead.last_latitude, lead.last_longitude, lead.last_location_label = 39.1, 117.2, "和平区站前路"
    lead.last_located_at = now - timedelta(hours=2)
    member.last_latitude, member.last_longitude, member.last_location_label = 39.2, 117.3, "南开区红旗路"
    member.last_located_at = now - timedelta(minutes=10)
    ticket(crew_id=crew.id, state=TicketState.ASSIGNED, finish_by=now - timedelta(hours=1))
    ticket(crew_id=crew.id, state=TicketState.IN_PROGRESS, finish_by=now + timedelta(hours=1))
    ticket(crew_id=crew.id, state=TicketState.CLOSED)
    crews = {c["name"]: c for c in metrics.dashboard_summary(now)["crews"]}
    assert (crews["一班"]["open"], crews["一班"]["overdue"], crews["一班"]["members"]) == (2, 1, 2)
    assert crews["一班"]["last_location"]["name"] == "小李"
    assert crews["一班"]["last_location"]["location"] == "南开区红旗路"
    assert (crews["二班"]["open"], crews["二班"]["last_location"]) == (0, None)
    assert idle.id


def test_calls_today_come_from_the_bridges_call_log(db, now):
    day_start = metrics.local_day_start(now)
    db.session.add_all([
        CallLog(call_id="c1", caller_phone="13800000001", status="answered", started_at=now - timedelta(seconds=5),
                last_event_at=now),
        CallLog(call_id="c2", caller_phone="13800000002", status="missed", started_at=now - timedelta(seconds=1),
                last_event_at=now),
        CallLog(call_id="c3", caller_phone="13800000003", status="answered",
                started_at=day_start - timedelta(minutes=1), last_event_at=now),
    ])
    db.session.flush()
    calls = metrics.dashboard_summary(now)["calls_today"]
    assert calls["total"] == 2 and calls["missed"] == 1
    listed = metrics.drill("calls", now=now)
    assert [r["caller_phone"] for r in listed.rows] == ["138****0002", "138****0001"]  # masked in lists


def test_the_change_stamp_moves_when_a_ticket_changes(db, ticket, now):
    t = ticket()
    db.session.commit()
    before = metrics.summary_stamp(now)
    assert metrics.summary_stamp(now) == before
    t.state, t.updated_at = TicketState.ASSIGNED, now + timedelta(seconds=1)
    db.session.commit()
    assert metrics.summary_stamp(now) != before
    ticket()
    db.session.commit()
    assert metrics.summary_stamp(now) != before


def test_the_summary_is_computed_once_per_stamp(db, redis, ticket, now):
    ticket()
    db.session.commit()
    stamp, first = metrics.cached_summary(redis)
    ticket()  # not committed into the stamp's view? it is flushed: same session sees it
    again_stamp, again = metrics.cached_summary(redis, stamp)
    assert again_stamp == stamp and again == first  # served from the cache under the same stamp
    assert redis.get(f"dashboard:summary:{stamp}")


def test_the_overdue_list_holds_exactly_the_overdue_tickets(ticket, now):
    late = ticket(finish_by=now - timedelta(minutes=1), state=TicketState.ACCEPTED)
    ticket(finish_by=now + timedelta(hours=1))
    ticket(finish_by=now - timedelta(hours=1), state=TicketState.CLOSED)
    listed = metrics.drill("overdue", now=now)
    assert listed.total == 1 and [r["number"] for r in listed.rows] == [late.number]
    assert listed.rows[0]["overdue"] is True


def test_lists_by_type_district_and_crew_match_the_figures(db, ticket, make_area, make_household, make_crew, now):
    d, c, _ = make_area(district="河西区")
    h = make_household(community=c)
    crew = make_crew()
    ticket(household_id=h.id, type=TicketType.COMPLAINT, crew_id=crew.id, state=TicketState.ASSIGNED)
    ticket(type=TicketType.REPAIR)
    assert metrics.drill("type", TicketType.COMPLAINT, now=now).total == 1
    assert metrics.drill("district", str(d.id), now=now).total == 1
    assert metrics.drill("district", "none", now=now).total == 1
    assert metrics.drill("crew", str(crew.id), now=now).total == 1
    assert metrics.drill("nonsense", now=now) is None
    assert metrics.drill("type", "bogus", now=now) is None
