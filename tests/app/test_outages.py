from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.errors import InvalidTransitionError, ValidationError
from app.models import OutageStatus, OutboxMessage, utcnow
from app.services import outage_linking, outages


@pytest.fixture()
def city(make_area, make_household):
    _, c1, s1 = make_area(community="阳光花园")
    _, c2, s2 = make_area(community="锦绣家园")
    homes = {
        "c1_b1": [make_household(community=c1, building="1") for _ in range(3)],
        "c1_b2": [make_household(community=c1, building="2") for _ in range(2)],
        "c2": [make_household(community=c2, building="1") for _ in range(4)],
    }
    return c1, s1, c2, s2, homes


def test_areas_select_station_community_or_building(db, city):
    c1, s1, c2, s2, homes = city
    now = utcnow()
    by_building = outages.create_outage(title="1号楼停热", kind="unplanned", reason="爆管抢修", starts_at=now,
                                        expected_end_at=now + timedelta(hours=6),
                                        areas=[{"community_id": c1.id, "building": "1"}])
    by_station = outages.create_outage(title="换热站检修", kind="planned", reason="设备检修",
                                       starts_at=now + timedelta(days=1), expected_end_at=now + timedelta(days=2),
                                       areas=[{"station_id": s2.id}])
    ids = lambda o: set(db.session.scalars(outages.affected_household_ids(o)))
    assert ids(by_building) == {h.id for h in homes["c1_b1"]}
    assert ids(by_station) == {h.id for h in homes["c2"]}
    assert outages.count_affected(by_building.areas) == 3
    assert by_building.status == OutageStatus.ACTIVE and by_station.status == OutageStatus.SCHEDULED
    assert [o.id for o in outages.outages_touching(homes["c1_b1"][0])] == [by_building.id]
    assert outages.outages_touching(homes["c1_b2"][0]) == []


def test_each_change_records_one_notification_in_the_same_transaction(db, city):
    c1, *_ = city
    now = utcnow()
    o = outages.create_outage(title="停热", kind="unplanned", reason="爆管", starts_at=now,
                              expected_end_at=now + timedelta(hours=4), areas=[{"community_id": c1.id}])
    outages.update_outage(o.id, expected_end_at=now + timedelta(hours=8))
    outage_linking.restore_outage(o.id)
    changes = [m.payload["change"] for m in db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]
    assert changes == ["created", "updated", "restored"]
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_restored_outage_cannot_change_and_started_one_cannot_be_cancelled(db, city):
    c1, *_ = city
    now = utcnow()
    o = outages.create_outage(title="停热", kind="unplanned", reason="爆管", starts_at=now,
                              expected_end_at=None, areas=[{"community_id": c1.id}])
    with pytest.raises(InvalidTransitionError):
        outages.cancel_outage(o.id)
    outage_linking.restore_outage(o.id)
    with pytest.raises(InvalidTransitionError):
        outages.update_outage(o.id, reason="新原因")


def test_bad_input_is_refused_with_field_messages(db, city):
    c1, s1, *_ = city
    now = utcnow()
    with pytest.raises(ValidationError) as err:
        outages.create_outage(title="停热", kind="unplanned", reason="爆管", starts_at=now,
                              expected_end_at=now - timedelta(hours=1), areas=[{"community_id": c1.id}])
    assert "expected_end_at" in err.value.fields
    with pytest.raises(ValidationError):
        outages.create_outage(title="停热", kind="unplanned", reason="爆管", starts_at=now, expected_end_at=None,
                              areas=[{"community_id": c1.id, "station_id": s1.id}])
    with pytest.raises(ValidationError):
        outages.create_outage(title="停热", kind="weird", reason="爆管", starts_at=now, expected_end_at=None,
                              areas=[{"community_id": c1.id}])


def test_scheduled_outage_starts_when_due(db, city):
    c1, *_ = city
    now = utcnow()
    o = outages.create_outage(title="计划停热", kind="planned", reason="检修", starts_at=now + timedelta(hours=1),
                              expected_end_at=now + timedelta(hours=5), areas=[{"community_id": c1.id}])
    assert outages.start_due_outages(now) == []
    assert [x.id for x in outages.start_due_outages(now + timedelta(hours=2))] == [o.id]
    assert o.status == OutageStatus.ACTIVE
