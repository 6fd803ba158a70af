"""The lists every channel asks app.services.access for (the API, the chat, the pages), and
subscribe-message consent recorded by app.services.consents."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.errors import ValidationError
from app.models import (
    Audience, Delivery, OutageKind, SubscribeConsent, TicketSource, TicketState, TicketType, utcnow,
)
from app.services import access, announcements, consents, outages, tickets
from app.services.actors import Actor


@pytest.fixture()
def people(db, make_area, make_household, make_crew, make_wechat_user):
    _, community, station = make_area(community="幸福小区")
    _, other_community, other_station = make_area(community="和谐家园")
    make_crew(stations=[station])
    make_crew(stations=[other_station])
    home = make_household(community=community, station=station)
    other_home = make_household(community=other_community, station=other_station)
    me, neighbour = make_wechat_user(household=home), make_wechat_user(household=other_home)
    db.session.flush()
    return {"me": me, "neighbour": neighbour, "home": home, "other_home": other_home,
            "community": community, "other_community": other_community}


def _announce(title, *, audience=Audience.ALL, audience_filter=None, start=True):
    row = announcements.compose_announcement(title=title, body="正文", audience=audience, audience_filter=audience_filter)
    if start:
        announcements.start_announcement(row.id)
    return row


def _titles(user):
    return [a.title for a in access.db.session.scalars(access.visible_announcements(user))]


def test_announcements_listed_are_the_published_ones_for_everybody_or_sent_to_me(db, people):
    me, neighbour = people["me"], people["neighbour"]
    _announce("草稿", start=False)
    everybody = _announce("全体公告")
    mine = _announce("幸福小区公告", audience=Audience.AREA, audience_filter={"community_ids": [people["community"].id]})
    theirs = _announce("和谐家园公告", audience=Audience.AREA,
                       audience_filter={"community_ids": [people["other_community"].id]})
    db.session.add_all([Delivery(announcement_id=mine.id, wechat_user_id=me.id),
                        Delivery(announcement_id=theirs.id, wechat_user_id=neighbour.id)])
    announcements.pause_announcement(everybody.id)   # paused halfway: still published
    db.session.flush()

    assert _titles(me) == ["幸福小区公告", "全体公告"]          # newest first
    assert _titles(neighbour) == ["和谐家园公告", "全体公告"]
    for user in (me, neighbour):   # a list never shows what the page would refuse
        for row in db.session.scalars(access.visible_announcements(user)):
            assert access.may_see_announcement(user, row)
    assert not access.may_see_announcement(me, theirs)


def _repair(user, home, description="暖气不热"):
    return tickets.create_ticket(Actor.of_resident(user), type=TicketType.REPAIR, source=TicketSource.OFFICIAL_ACCOUNT,
                                 description=description, household=home, category="no_heat")


def test_the_latest_open_repair_is_the_last_one_i_reported_and_still_open(db, people, clock):
    me, home = people["me"], people["home"]
    assert access.latest_open_repair(me) is None
    first = _repair(me, home, "卧室不热")
    clock.travel_to(clock.utcnow() + timedelta(minutes=5))
    second = _repair(me, home, "客厅不热")
    _repair(people["neighbour"], people["other_home"])     # somebody else's is never mine
    db.session.flush()
    assert access.latest_open_repair(me) == second
    tickets.cancel_ticket(second, Actor.of_resident(me), "已自行恢复")
    db.session.flush()
    assert access.latest_open_repair(me) == first
    assert access.latest_open_repair(people["neighbour"]).household_id == people["other_home"].id


def test_reports_waiting_on_an_outage_are_mine_only_and_newest_first(db, people, clock):
    me, home = people["me"], people["home"]
    now = utcnow()
    outage = outages.create_outage(title="幸福小区管网抢修", kind=OutageKind.UNPLANNED, reason="管道漏水",
                                   starts_at=now - timedelta(hours=1), expected_end_at=now + timedelta(hours=5),
                                   areas=[{"community_id": people["community"].id}])
    older = _repair(me, home, "不热")
    clock.travel_to(clock.utcnow() + timedelta(minutes=3))
    newer = _repair(me, home, "还是不热")
    unlinked = _repair(people["neighbour"], people["other_home"])
    db.session.flush()
    assert tickets.waits_on_outage(older) and not tickets.waits_on_outage(unlinked)
    assert access.waiting_on_outage(me) == [newer, older]
    assert access.waiting_on_outage(people["neighbour"]) == []
    assert outages.held_report_of(home, outage) in (older, newer)
    assert outages.held_report_of(people["other_home"], outage) is None
    tickets.close_after_outage(older, final_answer="已恢复供热")
    tickets.close_after_outage(newer, final_answer="已恢复供热")
    db.session.flush()
    assert access.waiting_on_outage(me) == [] and outages.held_report_of(home, outage) is None
    assert older.state == TicketState.CLOSED


def test_consent_counts_each_allow_and_unknown_templates_record_nothing(db, people):
    me = people["me"]
    known = {"T_PROGRESS", "T_OUTAGE"}
    rows = consents.record_consent(me, ["T_PROGRESS", "T_OUTAGE"], known=known)
    rows = consents.record_consent(me, ["T_PROGRESS"], known=known)
    assert [(r.template_id, r.remaining) for r in rows] == [("T_OUTAGE", 1), ("T_PROGRESS", 2)]
    with pytest.raises(ValidationError) as refused:
        consents.record_consent(me, ["T_OUTAGE", "T_OTHER"], known=known)
    assert refused.value.fields == {"template_ids": ["未知模板 T_OTHER"]}
    stored = {r.template_id: r.remaining for r in db.session.scalars(
        select(SubscribeConsent).where(SubscribeConsent.wechat_user_id == me.id))}
    assert stored == {"T_OUTAGE": 1, "T_PROGRESS": 2}
    assert consents.consents_of(people["neighbour"]) == []
