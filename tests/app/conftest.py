"""Fixtures of the domain tests: ``make_town`` (two communities, their crews and a leader on
duty) for the outage-aware service, with ``start_outage`` and ``outbox_rows``. Everything
else comes from tests/conftest.py and tests/factories.py."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.models import OutboxMessage, Role, utcnow
from app.services import outages


@dataclass
class Town:
    inside_community: object
    inside_station: object
    outside_community: object
    outside_station: object
    crew: object            # serves the inside station
    other_crew: object      # serves the outside station
    lead: object
    member: object
    other_member: object
    leader: object          # leader on duty
    inside: list = field(default_factory=list)    # households of the inside community
    outside: list = field(default_factory=list)


@pytest.fixture()
def make_town(db, make_area, make_household, make_crew, make_staff):
    def make(inside=50, outside=5) -> Town:
        _, c_in, st_in = make_area(community="暖山小区", station="一号换热站")
        _, c_out, st_out = make_area(community="河畔小区", station="二号换热站")
        crew = make_crew(name="一号站维修班", stations=[st_in])
        other_crew = make_crew(name="二号站维修班", stations=[st_out])
        town = Town(
            c_in, st_in, c_out, st_out, crew, other_crew,
            lead=make_staff(Role.CREW_LEAD, crew=crew, name="李班长"),
            member=make_staff(Role.CREW_MEMBER, crew=crew, name="王师傅"),
            other_member=make_staff(Role.CREW_MEMBER, crew=other_crew, name="赵师傅"),
            leader=make_staff(Role.LEADER, name="值班领导", on_duty=True),
        )
        for i in range(inside):
            town.inside.append(make_household(community=c_in, station=st_in, building=str(i % 5 + 1),
                                              owner_phone=f"1360000{i:04d}", account_no=f"IN{i:06d}"))
        for i in range(outside):
            town.outside.append(make_household(community=c_out, station=st_out,
                                               owner_phone=f"1370000{i:04d}", account_no=f"OUT{i:05d}"))
        db.session.commit()
        return town

    return make


def start_outage(db, community, hours=4):
    outage = outages.create_outage(
        title="暖山小区管网抢修", kind="unplanned", reason="一次网管道爆裂", starts_at=utcnow() - timedelta(minutes=5),
        expected_end_at=utcnow() + timedelta(hours=hours), areas=[{"community_id": community.id}])
    db.session.commit()
    return outage


def outbox_rows(db, topic):
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == topic)
                                   .order_by(OutboxMessage.id)))
