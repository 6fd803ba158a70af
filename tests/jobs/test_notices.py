"""Outage notices (once per person per change) and the arrears campaign (once a week per
person, with a link to pay), through the outbox, the broadcast jobs and the sandbox."""
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import func, select

from app.models import (
    Announcement, ArrearsReminder, Bill, BillStatus, Delivery, OutageNotice, OutboxMessage, utcnow,
)
from app.services import outage_linking, outages
from app.services.billing import issue_bills
from jobs import arrears
from jobs.outbox import deliver_outbox_message
from tests.jobs.conftest import card


def test_each_outage_change_reaches_each_affected_resident_once(
        db, wechat, worker, make_area, make_household, make_resident):
    _, community, station = make_area()
    a, user_a, _ = make_resident(make_household(community=community, station=station, building="2"))
    b, _, _ = make_resident(make_household(community=community, station=station, building="2"))
    # One person bound to two affected households hears once per change.
    from app.models import HouseholdBinding

    second_home = make_household(community=community, station=station, building="2")
    db.session.add(HouseholdBinding(wechat_user_id=user_a.id, household_id=second_home.id, proof="owner_name"))
    outside, _, _ = make_resident()
    db.session.commit()

    now = utcnow()
    outage = outages.create_outage(title="2号楼管道抢修", kind="unplanned", reason="主管道漏水抢修",
                                   starts_at=now - timedelta(minutes=5), expected_end_at=now + timedelta(hours=6),
                                   areas=[{"community_id": community.id, "building": "2"}])
    db.session.commit()
    worker()
    outages.update_outage(outage.id, expected_end_at=now + timedelta(hours=8))
    db.session.commit()
    worker()
    outage_linking.restore_outage(outage.id)
    db.session.commit()
    worker()

    for openid in (a, b):
        inbox = wechat.inbox(openid)
        assert [(m["title"], card(m).get("通知类型")) for m in inbox] == [
            ("停热通知", "临时停热"), ("停热通知", "信息变更"), ("恢复供热通知", None)]
        created, _, restored = (card(m) for m in inbox)
        assert created["停热区域"].endswith("2号楼") and created["停热原因"] == "主管道漏水抢修"
        assert "~" in created["停热时间"]  # from the start to the expected end
        assert restored["供热区域"] == created["停热区域"] and restored["恢复时间"]
    assert wechat.inbox(outside) == []
    assert db.session.scalar(select(func.count()).select_from(OutageNotice)) == 3

    # The outbox delivers at least once: a re-delivered change creates nothing new.
    first = db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.topic == "notify.outage")
                              .order_by(OutboxMessage.id))
    from jobs.outage_notices import notify_outage

    notify_outage({"outage_id": outage.id, "change": "created"}, first)
    worker()
    assert db.session.scalar(select(func.count()).select_from(Announcement)) == 3
    assert len(wechat.inbox(a)) == 3


def test_arrears_campaign_reminds_each_person_at_most_once_a_week_with_a_pay_link(
        app, db, wechat, worker, make_resident, make_season):
    owing, user, h_owing = make_resident()
    later, _, h_later = make_resident()
    paid, _, h_paid = make_resident()
    season = make_season(due_on=date(2026, 11, 20))
    issue_bills(season, [h_owing, h_later, h_paid])
    bill = db.session.scalar(select(Bill).where(Bill.household_id == h_paid.id))
    bill.paid_fen, bill.status = bill.amount_fen, BillStatus.PAID
    db.session.commit()

    monday = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # 10:00 in Beijing, a Monday
    assert arrears.run_arrears_campaign(now=monday - timedelta(hours=4)) is None  # 06:00: too early
    assert arrears.run_arrears_campaign(now=monday) is not None
    worker()
    assert arrears.run_arrears_campaign(now=monday + timedelta(days=2)) is None  # Wednesday: done this week
    worker()
    for openid in (owing, later):
        inbox = wechat.inbox(openid)
        assert [(m["title"], card(m)["缴费项目"]) for m in inbox] == [("缴费提醒", "供热费")]
        assert inbox[0]["url"] == f"{app.config['PUBLIC_BASE_URL']}/pay"
    assert wechat.inbox(paid) == []

    next_monday = monday + timedelta(days=7)
    assert arrears.run_arrears_campaign(now=next_monday) is not None
    worker()
    assert len(wechat.inbox(owing)) == 2
    assert db.session.scalar(select(func.count()).select_from(ArrearsReminder)) == 4
    assert db.session.scalar(select(func.count()).select_from(Delivery)) == 4
