"""The demo city: proportions, idempotency, consistent timelines and bills."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from app.models import (
    Announcement, CallLog, Delivery, HouseholdBinding, WechatUser,
    Bill, BillStatus, Community, Crew, CrewArea, District, FaqEntry, Household, HouseholdStatus, Outage,
    OutageStatus, Payment, PaymentState, Role, Staff, Station, Ticket, TicketCounter, TicketEvent, TicketState,
    TicketType, utcnow,
)
from app.services.billing import bill_amount_fen

SMALL = 200


def count(model) -> int:
    from app.extensions import db

    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture()
def seeded(runner, db, clock):
    result = runner.invoke(args=["seed-demo", "--households", str(SMALL)])
    assert result.exit_code == 0, result.output
    return result


def test_demo_city_has_expected_shape(seeded, db):
    assert count(District) == 3
    assert count(Station) == 6
    assert count(Community) == 20
    assert all(c.station_id for c in db.session.scalars(select(Community)))
    assert count(Household) == SMALL
    suspended = db.session.scalar(select(func.count(Household.id)).where(Household.status == HouseholdStatus.SUSPENDED))
    assert 1 <= suspended <= SMALL * 0.05
    assert count(FaqEntry) >= 30
    leaders = list(db.session.scalars(select(Staff).where(Staff.role == Role.LEADER)))
    assert len(leaders) == 3 and sum(s.on_duty for s in leaders) == 1
    assert db.session.scalar(select(func.count(Staff.id)).where(Staff.role == Role.AGENT)) == 6
    assert db.session.scalar(select(Staff).where(Staff.username == "admin")).check_password("demo1234")
    outages = {o.status for o in db.session.scalars(select(Outage))}
    assert {OutageStatus.ACTIVE, OutageStatus.SCHEDULED, OutageStatus.RESTORED} <= outages
    assert "demo1234" in seeded.output and "admin" in seeded.output


def test_every_crew_has_one_lead_some_members_and_one_station(seeded, db):
    crews = list(db.session.scalars(select(Crew)))
    assert len(crews) == 6
    stations = set()
    for crew in crews:
        roles = [m.role for m in crew.members]
        assert roles.count(Role.CREW_LEAD) == 1
        assert 3 <= roles.count(Role.CREW_MEMBER) <= 5
        (area,) = crew.areas
        stations.add(area.station_id)
    assert len(stations) == 6


def test_arrears_share_is_between_ten_and_twenty_percent(seeded, db):
    active = db.session.scalar(select(func.count(Household.id)).where(Household.status == HouseholdStatus.ACTIVE))
    in_arrears = db.session.scalar(
        select(func.count(func.distinct(Bill.household_id))).where(Bill.status.in_(BillStatus.OPEN)))
    assert 0.10 <= in_arrears / active <= 0.20
    # Some owe for both seasons.
    both = db.session.execute(
        select(Bill.household_id).where(Bill.status.in_(BillStatus.OPEN))
        .group_by(Bill.household_id).having(func.count() == 2)).all()
    assert both


def test_every_active_household_has_a_bill_per_season(seeded, db):
    active = db.session.scalar(select(func.count(Household.id)).where(Household.status == HouseholdStatus.ACTIVE))
    assert count(Bill) == active * 2


def test_bill_amounts_follow_the_billing_rule(seeded, db):
    for bill in db.session.scalars(select(Bill)):
        assert bill.area_m2 == bill.household.area_m2
        assert bill.amount_fen == bill_amount_fen(bill.area_m2, bill.unit_price_fen, bill.discount_fen)
        if bill.status == BillStatus.PAID:
            assert bill.paid_fen == bill.amount_fen and bill.paid_at is not None
        else:
            assert bill.paid_fen == 0
    assert db.session.scalar(select(func.count(Bill.id)).where(Bill.discount_fen > 0)) >= 1


def test_paid_bills_are_backed_by_paid_payments(seeded, db):
    paid = db.session.scalar(select(func.count(Bill.id)).where(Bill.status == BillStatus.PAID))
    payments = list(db.session.scalars(select(Payment)))
    assert len(payments) == paid
    for p in payments:
        assert p.state == PaymentState.PAID and p.transaction_id and p.paid_at
        assert p.amount_fen == sum(i.principal_fen + i.late_fee_fen for i in p.items)


def test_ticket_volume_and_every_state_present(seeded, db):
    from app.services import clusters

    assert count(Ticket) == 50 + clusters.threshold() + 2  # the history, and the suspected outage's reports
    states = set(db.session.scalars(select(Ticket.state).distinct()))
    assert states == set(TicketState.ALL)
    numbers = list(db.session.scalars(select(Ticket.number)))
    assert len(set(numbers)) == len(numbers)
    assert all(re.fullmatch(r"GD\d{8}-\d{4}", n) for n in numbers)
    # The day counters continue after the demo numbers, so live tickets never collide.
    for counter in db.session.scalars(select(TicketCounter)):
        assert f"GD{counter.day}-{counter.value:04d}" in numbers


def test_ticket_timelines_are_consistent_with_states(seeded, db):
    now = utcnow()
    for t in db.session.scalars(select(Ticket)):
        events = t.events
        assert events[0].action == "created" and events[0].created_at == t.created_at
        times = [e.created_at for e in events]
        assert times == sorted(times) and times[-1] <= now
        last_state = [e.to_state for e in events if e.to_state][-1]
        assert last_state == t.state, t.number
        actions = [e.action for e in events]
        if t.state == TicketState.CLOSED:
            assert t.closed_at is not None and "closed" in actions and t.final_answer
        elif t.state == TicketState.CANCELLED:
            assert t.closed_at is not None and "cancelled" in actions
        else:
            assert t.closed_at is None and "closed" not in actions
        if t.state in (TicketState.ACCEPTED, TicketState.IN_PROGRESS, TicketState.REPLIED):
            assert t.accepted_at is not None and t.assignee_id is not None
        if t.state == TicketState.REPLIED or (t.state == TicketState.CLOSED and t.type not in TicketType.DIRECT_CLOSE):
            assert t.replied_at is not None and t.reply
        if t.rating is not None:
            assert t.state == TicketState.CLOSED and "rated" in actions and t.reporter_id is not None
        if t.respond_by is not None:
            assert t.created_at < t.respond_by <= t.finish_by


def test_tickets_go_to_the_crew_of_the_households_station(seeded, db):
    routed = db.session.execute(
        select(Ticket, CrewArea).join(Household, Ticket.household_id == Household.id)
        .join(CrewArea, CrewArea.crew_id == Ticket.crew_id)).all()
    assert routed
    for ticket, area in routed:
        assert area.station_id == ticket.household.station_id
        assert ticket.assignee.crew_id == ticket.crew_id


def test_second_run_creates_nothing(seeded, runner, db):
    tables = (Household, Bill, Payment, Ticket, TicketEvent, Staff, FaqEntry, Outage)
    before = {m.__name__: count(m) for m in tables}
    result = runner.invoke(args=["seed-demo", "--households", str(SMALL)])
    assert result.exit_code == 0
    assert "已存在" in result.output and "nothing changed" in result.output
    assert {m.__name__: count(m) for m in tables} == before


def test_if_empty_leaves_existing_households_alone(runner, make_household, db):
    make_household()
    db.session.commit()
    result = runner.invoke(args=["seed-demo", "--if-empty", "--households", str(SMALL)])
    assert result.exit_code == 0
    assert "skipped" in result.output
    assert count(Household) == 1 and count(Crew) == 0


def test_refuses_to_mix_demo_into_real_households(runner, make_household, db):
    make_household()
    db.session.commit()
    result = runner.invoke(args=["seed-demo", "--households", str(SMALL)])
    assert result.exit_code != 0
    assert count(Household) == 1


def test_same_data_on_every_run(db):
    from app.demo.seed import seed_demo

    now = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)

    def snapshot():
        seed_demo(SMALL, now=now)
        rows = db.session.execute(select(Household.account_no, Household.owner_name, Household.owner_phone,
                                         Household.area_m2).order_by(Household.account_no)).all()
        tickets = db.session.execute(select(Ticket.number, Ticket.state, Ticket.description)
                                     .order_by(Ticket.number)).all()
        db.session.rollback()  # nothing was committed: an interrupted seed leaves nothing behind
        return rows, tickets

    first = snapshot()
    assert count(Household) == 0
    assert snapshot() == first


def test_a_suspected_outage_is_open_and_can_be_turned_into_an_outage(seeded, db, clock):
    """疑似停热 on a fresh demo: one station's no-heat reports of the last window, no outage
    recorded there, the open cluster a report at the threshold would have opened — and
    staff can convert it (the reports still waiting are linked to the new outage)."""
    from app.services import clusters, outage_linking, outages

    now = utcnow()
    (cluster,) = clusters.open_clusters()
    assert cluster.station_id is not None and cluster.status == "open"
    reports = clusters.cluster_reports(cluster)
    assert len(reports) >= clusters.threshold() and cluster.report_count == len(reports)
    assert all(now - clusters.window() <= t.created_at < now for t in reports)
    assert all(t.household.station_id == cluster.station_id and t.category in clusters.HEAT for t in reports)
    assert cluster.first_report_at == reports[0].created_at and cluster.last_report_at == reports[-1].created_at
    assert all(outages.active_outage_for(t.household) is None for t in reports)
    waiting = [t for t in reports if t.state in (TicketState.NEW, TicketState.ASSIGNED)]
    assert waiting
    # A phone report came with its answered call.
    phoned = [t for t in reports if t.source == "phone"]
    assert all(db.session.scalar(select(CallLog.id).where(CallLog.ticket_id == t.id)) for t in phoned)

    outage, linked = outage_linking.convert_cluster(cluster.id, expected_end_at=now + timedelta(hours=6), now=now)
    assert linked == len(waiting) and outage.status == OutageStatus.ACTIVE
    assert clusters.open_clusters() == []
    db.session.rollback()


def test_an_announcement_has_failed_and_skipped_recipients_like_the_sandbox_people(seeded, db):
    """重试失败 has work on a fresh demo: an announcement to everyone whose outcome matches the
    people as the sandbox knows them (followers sent or failed on WeChat busy, people who
    unfollowed skipped with 43004 or no channel) and 重试失败 queues exactly the failed."""
    from app.services import announcements
    from app.demo.sandbox_people import sandbox_spec

    anns = list(db.session.scalars(select(Announcement).where(Announcement.audience == "all")))
    assert len(anns) == 2
    audience = count_audience_users(db)
    failed_one = None
    for ann in anns:
        progress = announcements.progress(ann.id)
        assert progress["total"] == audience and progress["pending"] == progress["sending"] == 0
        assert progress["sent"] and progress["skipped"]
        if progress["failed"]:
            failed_one = ann
    assert failed_one is not None and failed_one.status == "done"
    rows = db.session.execute(select(Delivery, WechatUser).join(WechatUser, WechatUser.id == Delivery.wechat_user_id)
                              .where(Delivery.announcement_id == failed_one.id)).all()
    for delivery, user in rows:
        follows = sandbox_spec(user)["follow"]
        assert follows == (delivery.status in ("sent", "failed")), (delivery.status, follows)
        if delivery.status == "skipped":
            assert delivery.errcode in (43004, None) and delivery.reason
        if delivery.status == "failed":
            assert delivery.errcode == -1
    reasons = {r["errcode"] for r in announcements.outcome_summary(failed_one.id)}
    assert {43004, -1} <= reasons
    failed = announcements.progress(failed_one.id)["failed"]
    assert announcements.retry_failed(failed_one.id) == failed
    assert announcements.retry_failed(failed_one.id) == 0
    db.session.rollback()


def count_audience_users(db) -> int:
    return db.session.scalar(select(func.count(func.distinct(HouseholdBinding.wechat_user_id))))


def test_some_bills_were_paid_today(seeded, db, clock):
    """今日收费 on a fresh demo: a few late payers of this season paid since local midnight,
    with the late fee of the days past the due date."""
    from app.services import metrics

    now = utcnow()
    day_start = metrics.local_day_start(now)
    today = list(db.session.scalars(select(Payment).where(Payment.paid_at >= day_start)))
    assert len(today) >= 3 and all(p.paid_at < now for p in today)
    for p in today:
        (item,) = p.items
        bill = item.bill
        assert bill.status == BillStatus.PAID and bill.paid_at == p.paid_at
        late_days = (day_start.date() - bill.season.due_on).days
        assert (item.late_fee_fen > 0) == (late_days > 0)
    fees = metrics.dashboard_summary(now)["fees"]
    assert fees["payments_today"] == len(today) and fees["payments_today_fen"] == sum(p.amount_fen for p in today)


def test_every_demo_announcement_names_an_audience_the_service_understands(seeded, db):
    """The console shows each announcement's audience (the restored outage's notice once held
    its building in a shape the service does not read, and its page failed)."""
    from app.services import announcements

    anns = list(db.session.scalars(select(Announcement)))
    assert {a.audience for a in anns} == {"all", "area"}
    for ann in anns:  # refuses (ValidationError) a filter it cannot read
        assert announcements.count_audience(ann.audience, ann.audience_filter) >= 0, ann.title
