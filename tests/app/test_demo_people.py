"""The demo city lives in the sandbox: after `flask seed-demo`, its people act over real HTTP
as each role would — a leader signs in to the dashboard through WeChat, a crew member works
tasks in chat and the mini-program, residents receive an announcement once each."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select

from app.models import (
    Community, Delivery, DeliveryStatus, Household, HouseholdBinding, Role, Staff, WechatUser,
)
from app.demo.seed import _distinct_nickname
from app.services import access, announcements
from wechat.sandbox_link import sandbox_templates

SMALL = 200


@pytest.fixture()
def demo(runner, db, clock, wechat):
    """The demo city seeded while the sandbox answers: its people are registered there."""
    result = runner.invoke(args=["seed-demo", "--households", str(SMALL)])
    assert result.exit_code == 0, result.output
    assert re.search(r"沙箱用户 sandbox users: \d+ 新注册", result.output), result.output
    return result


def _person(db, username: str) -> WechatUser:
    return db.session.scalar(select(WechatUser).join(Staff, WechatUser.staff_id == Staff.id)
                             .where(Staff.username == username))


def test_every_wechat_user_of_the_demo_is_a_sandbox_user_with_the_right_nickname(demo, db, wechat):
    sandbox = {u["oa_openid"]: u for u in requests.get(f"{wechat.base}/users", timeout=30).json()}
    users = list(db.session.scalars(select(WechatUser)))
    assert len(users) > SMALL * 0.3 and len(sandbox) == len(users)
    for user in users:
        there = sandbox[user.oa_openid]
        assert there["unionid"] == user.unionid and there["subscribed"] == user.subscribed
        if user.mp_openid:
            assert there["mp_openid"] == user.mp_openid
        if user.staff:
            assert there["nickname"] == user.staff.username
        else:
            assert there["nickname"] == user.nickname and user.nickname.startswith(user.bindings[0].household.owner_name)
    nicknames = [u["nickname"] for u in sandbox.values()]
    assert len(set(nicknames)) == len(nicknames), "two demo people share a name in the sandbox's chat list"
    assert {"leader1", "crew1_lead", "crew1_m1", "agent1"} <= set(nicknames)


def test_a_second_resident_of_the_same_name_is_told_apart_by_building():
    taken = {"crew1_lead"}
    first, second = (Household(owner_name="刘秀英", building=b) for b in ("3", "7"))
    assert _distinct_nickname(first, taken) == "刘秀英"
    assert _distinct_nickname(second, taken) == "刘秀英（7号楼）"
    assert _distinct_nickname(second, taken) == "刘秀英（7号楼·2）"


def test_registration_is_idempotent_and_puts_back_an_emptied_sandbox(app, demo, runner, db, wechat):
    total = db.session.query(WechatUser).count()
    again = runner.invoke(args=["wechat", "register-demo"])
    assert again.exit_code == 0 and f"0 新注册 registered, {total} 已存在" in again.output, again.output
    wechat.reset()   # the sandbox's store is emptied; our database keeps its rows
    back = runner.invoke(args=["wechat", "register-demo"])
    assert back.exit_code == 0 and f"{total} 新注册 registered, 0 已存在" in back.output, back.output
    # The account's message templates first (a sandbox of its own process knows none until then).
    ours = sandbox_templates(app.config)
    assert f"沙箱消息模板 sandbox templates: {len(ours)} 个已登记" in back.output
    listed = {(t["app"], t["template_id"]) for t in requests.get(f"{wechat.base}/templates", timeout=30).json()["templates"]}
    assert {(t["app"], t["template_id"]) for t in ours} <= listed


def test_leader1_signs_in_to_the_dashboard_through_wechat(app, demo, db, live_app, monkeypatch):
    # Served at live_app.url: WeChat's sign-in comes back to PUBLIC_BASE_URL, so that is it here.
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", live_app.url)
    leader = _person(db, "leader1")
    browser = requests.Session()
    page = browser.get(f"{live_app.url}/dashboard/login", params={"sandbox_openid": leader.oa_openid}, timeout=30)
    assert page.status_code == 200 and urlsplit(page.url).path == "/dashboard/", (page.status_code, page.url)
    assert "运营看板" in page.text or "看板" in page.text
    # A resident of the demo cannot.
    resident = db.session.scalar(select(WechatUser).where(WechatUser.staff_id.is_(None)))
    refused = requests.get(f"{live_app.url}/dashboard/login", params={"sandbox_openid": resident.oa_openid},
                           timeout=30)
    assert refused.status_code == 403 and "无权查看运营看板" in refused.text


def test_a_seeded_crew_member_says_renwu_and_logs_into_the_mini_program_as_crew(demo, db, wechat, live_app):
    member = next(s for s in db.session.scalars(select(Staff).where(Staff.role == Role.CREW_MEMBER)
                                                 .order_by(Staff.username)) if access.open_tasks(s))
    person = _person(db, member.username)
    tasks = access.open_tasks(member)

    reply = wechat.say(person.oa_openid, "任务")
    assert tasks[0].number in reply, reply

    code = wechat._post(f"/users/{person.oa_openid}/login-code")["code"]
    login = requests.post(f"{live_app.url}/api/v1/auth/login", json={"code": code}, timeout=30)
    assert login.status_code == 200 and "crew" in login.json()["roles"], login.text
    listed = requests.get(f"{live_app.url}/api/v1/tasks", timeout=30,
                          headers={"Authorization": f"Bearer {login.json()['token']}"})
    assert listed.status_code == 200, listed.text
    assert {t["number"] for t in listed.json()["items"]} >= {t.number for t in tasks[:5]}


def test_an_announcement_to_a_seeded_community_reaches_each_follower_once(demo, db, wechat, worker):
    community = max(db.session.scalars(select(Community)),
                    key=lambda c: db.session.query(HouseholdBinding).join(Household)
                    .filter(Household.community_id == c.id).count())
    followers = list(db.session.scalars(
        select(WechatUser).distinct().join(HouseholdBinding).join(Household)
        .where(Household.community_id == community.id, WechatUser.subscribed.is_(True))))
    assert len(followers) >= 3
    ann = announcements.compose_announcement(title="小区管网检修通知", body="本周六9:00-12:00检修，期间暖气温度可能偏低。",
                                             audience="area", audience_filter={"community_ids": [community.id]})
    announcements.start_announcement(ann.id)
    db.session.commit()
    worker()

    db.session.expire_all()
    progress = announcements.progress(ann.id)
    assert progress["failed"] == 0 and progress["pending"] == 0, progress
    assert progress["sent"] == len(followers)
    for person in followers:
        received = [m for m in wechat.inbox(person.oa_openid) if "小区管网检修通知" in str(m)]
        assert len(received) == 1, person.nickname
    skipped = db.session.scalars(select(Delivery).where(Delivery.announcement_id == ann.id,
                                                        Delivery.status == DeliveryStatus.SKIPPED))
    # Only those who unfollowed are skipped (no template message can reach them).
    assert [d.wechat_user_id for d in skipped if db.session.get(WechatUser, d.wechat_user_id).subscribed] == []


def test_the_featured_resident_has_a_closed_repair_awaiting_their_rating(app, db):
    from app.demo.guide import bound_resident_in_arrears
    from app.demo.seed import seed_demo
    from app.services import ratings

    seed_demo(households=200)
    user, _ = bound_resident_in_arrears()
    ticket = ratings.awaiting_rating(user)
    assert ticket is not None and ticket.state == "closed" and ticket.reporter_id == user.id
    assert [e.action for e in ticket.events][-1] == "closed"
