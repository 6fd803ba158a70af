"""Crew page fixtures: a resident's repair assigned to crew2_m1 (张志强) of 和平维修二班, whose lead and a
member of another crew also have WeChat; and the official-account page fixtures (tests/web/h5_support.py)."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from app.models import Role, Station, TicketSource, TicketType
from app.services import tickets
from app.services.actors import Actor
from tests.web.h5_support import _h5_sandbox, h5, h5_merchant_key  # noqa: F401 (fixtures)
from tests.web.h5_support import resident_in_arrears, wechat_person


def jpeg(color=(30, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(out, "JPEG")
    return out.getvalue()


class CrewWorld:
    pass


@pytest.fixture()
def crew_world(db, h5, make_area, make_household, make_season, make_crew, make_staff):
    w = CrewWorld()
    w.resident = resident_in_arrears(db, h5, make_area, make_household, make_season)
    household = w.resident.household
    w.crew = make_crew(name="和平维修二班", stations=[db.session.get(Station, household.station_id)])
    w.other_crew = make_crew(name="河西维修一班")
    w.member = make_staff(role=Role.CREW_MEMBER, crew=w.crew, name="张志强")
    w.lead = make_staff(role=Role.CREW_LEAD, crew=w.crew, name="王班长")
    w.stranger = make_staff(role=Role.CREW_MEMBER, crew=w.other_crew, name="赵师傅")
    db.session.commit()
    w.ticket = tickets.create_ticket(Actor.of_resident(w.resident.user), type=TicketType.REPAIR,
                                     source=TicketSource.OFFICIAL_ACCOUNT, description="暖气片不热，卧室很冷",
                                     category="no_heat", household=household)
    if w.ticket.assignee_id != w.member.id:     # routing may already have given it to him
        tickets.assign_ticket(w.ticket, Actor.system(), crew=w.crew, staff=w.member)
    db.session.commit()
    w.member_person, _ = wechat_person(db, h5, nickname="crew2_m1", staff=w.member)
    w.lead_person, _ = wechat_person(db, h5, nickname="crew2_lead", staff=w.lead)
    w.stranger_person, _ = wechat_person(db, h5, nickname="crew5_m1", staff=w.stranger)
    return w


