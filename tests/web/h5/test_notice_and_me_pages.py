"""停热, 公告 and 我的 pages through the sandbox's web sign-in: my outages and one outage's notice,
an announcement for its audience only, binding (with the binding service's attempt limit) and
unbinding a household."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.models import Audience, HouseholdBinding, OutageKind, utcnow
from app.services import announcements, binding, outages


@pytest.fixture()
def homes(db, make_area, make_household):
    """Two communities: 刘秀英's (with an outage) and another one."""
    _, community, station = make_area(community="幸福小区")
    _, other_community, _ = make_area(community="和谐家园")
    mine = make_household(community=community, station=station, owner_name="刘秀英", owner_phone="13912343940")
    other = make_household(community=other_community, owner_name="赵强")
    db.session.commit()
    return {"mine": mine, "other": other, "community": community, "other_community": other_community}


def _bind(db, phone, household):
    db.session.add(HouseholdBinding(wechat_user_id=phone.user.id, household_id=household.id, proof="owner_name"))
    db.session.commit()


def _outage(db, community, title="幸福小区管网抢修", **kw):
    now = utcnow()
    row = outages.create_outage(title=title, kind=OutageKind.UNPLANNED, reason="一次网主管道漏水", starts_at=now - timedelta(hours=1),
                                expected_end_at=now + timedelta(hours=6), areas=[{"community_id": community.id}], **kw)
    db.session.commit()
    return row


def _announcement(db, *, audience=Audience.ALL, audience_filter=None, start=True):
    row = announcements.compose_announcement(title="关于调整客服热线服务时间的通知", body="自下周一起热线24小时服务。",
                                             audience=audience, audience_filter=audience_filter)
    if start:
        announcements.start_announcement(row.id)
    db.session.commit()
    return row


def _bindings(db, user) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(HouseholdBinding)
                             .where(HouseholdBinding.wechat_user_id == user.id))


# --- 停热 -------------------------------------------------------------------------------------------

def test_my_outages_lists_those_touching_my_bound_addresses(h5, db, homes, clock):
    me = h5.resident("刘秀英")
    me.sign_in()
    _bind(db, me, homes["mine"])
    touching = _outage(db, homes["community"])
    elsewhere = _outage(db, homes["other_community"], title="和谐家园换热站检修")
    html = me.open("/outages").get_data(as_text=True)
    assert touching.title in html and homes["mine"].address in html
    assert f"/outages/{touching.id}" in html
    assert elsewhere.title not in html


def test_my_outages_says_when_nothing_touches_me_and_asks_unbound_people_to_bind(h5, db, homes, clock):
    me = h5.resident("刘秀英")
    me.sign_in()
    unbound = me.open("/outages")
    assert unbound.status_code == 200 and "绑定户号" in unbound.get_data(as_text=True)
    _bind(db, me, homes["mine"])
    _outage(db, homes["other_community"], title="和谐家园换热站检修")
    html = me.open("/outages").get_data(as_text=True)
    assert "目前没有影响您家的停热" in html and "和谐家园换热站检修" not in html


def test_an_outage_notice_shows_its_facts_and_whether_it_touches_me(h5, db, homes, clock):
    outage = _outage(db, homes["community"])
    me, neighbour = h5.resident("刘秀英"), h5.resident("路人")
    me.sign_in()
    _bind(db, me, homes["mine"])
    mine = me.open(f"/outages/{outage.id}")
    html = mine.get_data(as_text=True)
    assert mine.status_code == 200
    assert outage.title in html and "一次网主管道漏水" in html and "幸福小区" in html and "临时停热" in html
    assert "影响您绑定的" in html and homes["mine"].address in html
    # An outage notice is public information about an area: anyone may read it, without "yours".
    other = neighbour.open(f"/outages/{outage.id}")
    assert other.status_code == 200 and outage.title in other.get_data(as_text=True)
    assert "影响您绑定的" not in other.get_data(as_text=True)


def test_an_unknown_outage_is_a_404_page_not_json(h5, db, homes):
    me = h5.resident()
    res = me.open("/outages/987654")
    assert res.status_code == 404 and res.mimetype == "text/html"
    assert "停热通知不存在" in res.get_data(as_text=True)


# --- 公告 -------------------------------------------------------------------------------------------

def test_an_announcement_for_everyone_opens_for_any_signed_in_person(h5, db, homes):
    row = _announcement(db)
    res = h5.resident().open(f"/announcements/{row.id}")
    assert res.status_code == 200 and row.title in res.get_data(as_text=True) and row.body in res.get_data(as_text=True)


def test_an_area_announcement_is_refused_politely_outside_its_audience(h5, db, homes):
    row = _announcement(db, audience=Audience.AREA, audience_filter={"community_ids": [homes["community"].id]})
    inside, outside = h5.resident("刘秀英"), h5.resident("赵强")
    inside.sign_in()
    outside.sign_in()
    _bind(db, inside, homes["mine"])
    _bind(db, outside, homes["other"])
    assert inside.open(f"/announcements/{row.id}").status_code == 200
    refused = outside.open(f"/announcements/{row.id}")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 403 and refused.mimetype == "text/html"
    assert "不在发送范围内" in html
    assert row.title not in html and row.body not in html


def test_a_draft_announcement_is_not_shown(h5, db, homes):
    row = _announcement(db, start=False)
    res = h5.resident().open(f"/announcements/{row.id}")
    assert res.status_code == 404 and row.body not in res.get_data(as_text=True)


# --- 我的: bind and unbind -------------------------------------------------------------------------

def test_bind_a_household_with_the_owners_name_then_unbind_it(h5, db, homes, redis):
    me = h5.resident("刘秀英")
    household = homes["mine"]
    bound = me.post("/me/bind", {"account_no": household.account_no, "owner_name": "刘 秀英"})
    assert bound.status_code == 303 and bound.location.endswith("/me")
    page = me.open("/me").get_data(as_text=True)
    assert f"已绑定户号 {household.account_no}" in page and household.address in page
    assert _bindings(db, me.user) == 1

    confirm = me.open(f"/me/households/{household.id}/unbind")
    assert confirm.status_code == 200 and "确定解除绑定" in confirm.get_data(as_text=True)
    assert _bindings(db, me.user) == 1   # asking is not doing
    done = me.post(f"/me/households/{household.id}/unbind")
    assert done.status_code == 303
    assert f"已解除绑定户号 {household.account_no}" in me.open("/me").get_data(as_text=True)
    assert _bindings(db, me.user) == 0


def test_bind_with_the_phones_last_four_digits(h5, db, homes, redis):
    me = h5.resident()
    res = me.post("/me/bind", {"account_no": homes["mine"].account_no, "phone_last4": "3940"})
    assert res.status_code == 303 and _bindings(db, me.user) == 1


def test_a_wrong_proof_shows_the_form_again_and_binds_nothing(h5, db, homes, redis):
    me = h5.resident()
    res = me.post("/me/bind", {"account_no": homes["mine"].account_no, "owner_name": "王五"},
                  form_page="/me/bind")
    html = res.get_data(as_text=True)
    assert res.status_code in (400, 403, 422) and res.mimetype == "text/html"
    assert 'role="alert"' in html and homes["mine"].account_no in html   # the form, filled in again
    assert _bindings(db, me.user) == 0


def test_binding_stops_after_the_attempt_limit_even_with_the_right_proof(h5, db, homes, redis):
    me = h5.resident()
    household = homes["mine"]
    for _ in range(binding.MAX_FAILURES):
        wrong = me.post("/me/bind", {"account_no": household.account_no, "owner_name": "王五"}, form_page="/me/bind")
        assert wrong.status_code != 429
    limited = me.post("/me/bind", {"account_no": household.account_no, "owner_name": "刘秀英"}, form_page="/me/bind")
    assert limited.status_code == 429 and limited.mimetype == "text/html"
    assert "次数" in limited.get_data(as_text=True) or "稍后" in limited.get_data(as_text=True)
    assert _bindings(db, me.user) == 0
    # Someone else (another WeChat) is not held up by this person's guesses beyond the target delay.
    other = h5.resident("刘秀英家人")
    assert other.open("/me/bind").status_code == 200


def test_unbinding_a_household_not_bound_to_me_changes_nothing(h5, db, homes, redis):
    owner, stranger = h5.resident("刘秀英"), h5.resident("路人")
    owner.sign_in()
    _bind(db, owner, homes["mine"])
    res = stranger.post(f"/me/households/{homes['mine'].id}/unbind", form_page="/me/bind")   # a token of theirs
    assert res.status_code == 404 and res.mimetype == "text/html"
    assert _bindings(db, owner.user) == 1
