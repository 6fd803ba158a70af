"""One person, one identity: the official account and the mini-program joined by unionid,
or by a one-time link code, over real HTTP with the sandbox playing WeChat."""
from __future__ import annotations

from sqlalchemy import func, select

from app.models import HouseholdBinding, SubscribeConsent, Ticket, WechatUser
from app.services import identity
from app.services.binding import issue_staff_bind_code


def _login(api, driver, openid) -> dict:
    answer = api().post("/api/v1/auth/login", json={"code": driver.login_code(openid)})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _rows(db) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count(WechatUser.id)))


def test_household_bound_in_chat_is_in_the_mini_program(db, pay_wechat, api, world, worker):
    driver = pay_wechat
    db.session.commit()   # the live server sees the world
    person = driver.create_user(follow=True)
    reply = driver.say(person["openid"], f"绑定 {world.household.account_no} 张伟")
    assert "绑定成功" in reply
    worker()   # learns the follower's unionid from WeChat's user-info API

    login = _login(api, driver, person["openid"])
    assert login["roles"] == ["resident"]
    homes = api(login["token"]).get("/api/v1/households").json()
    assert [h["account_no"] for h in homes["items"]] == [world.household.account_no]
    assert _rows(db) == 1
    user = db.session.scalar(select(WechatUser))
    assert (user.oa_openid, user.mp_openid, user.unionid) == (person["oa_openid"], person["mp_openid"], person["unionid"])


def test_mini_program_first_then_the_official_account_merges_into_one(db, pay_wechat, api, world, worker):
    driver = pay_wechat
    db.session.commit()   # the live server sees the world
    person = driver.create_user(follow=True)
    login = _login(api, driver, person["openid"])
    me = api(login["token"])
    bound = me.post("/api/v1/households/bind", json={"account_no": world.household.account_no, "owner_name": "张伟"})
    assert bound.status_code == 201, bound.text

    # Later the same person asks the official account a question: their identity is looked
    # up once, and they are one person with the household bound in the mini-program.
    driver.say(person["openid"], "你好")
    worker()
    assert _rows(db) == 1
    assert world.household.account_no in driver.say(person["openid"], "账单")
    # The token issued before the merge still opens the same person's data.
    homes = me.get("/api/v1/households")
    assert homes.status_code == 200 and len(homes.json()["items"]) == 1


def test_a_crew_member_bound_in_the_official_account_has_the_crew_role_in_the_mini_program(
        db, pay_wechat, api, world, worker):
    driver = pay_wechat
    code = issue_staff_bind_code(world.member).code
    db.session.commit()
    person = driver.create_user(follow=False)
    reply = driver.send(person["openid"], type="event", event="subscribe", scene=f"staff:{code}")["reply"]["Content"]
    assert "已绑定员工账号" in reply
    worker()

    login = _login(api, driver, person["openid"])
    assert "crew" in login["roles"] and "crew_member" in login["roles"]
    tasks = api(login["token"]).get("/api/v1/tasks")
    assert tasks.status_code == 200, tasks.text


def test_a_link_code_joins_the_two_when_wechat_gives_no_unionid(db, pay_wechat, api, world, redis):
    driver = pay_wechat
    db.session.commit()   # the live server sees the world
    person = driver.create_user(follow=True)
    assert "绑定成功" in driver.say(person["openid"], f"绑定 {world.household.account_no} 张伟")
    # No worker run: the official-account row has no unionid, as for an account outside an
    # open platform; the mini-program login makes a second row.
    login = _login(api, driver, person["openid"])
    me = api(login["token"])
    assert me.get("/api/v1/households").json()["items"] == []

    reply = driver.say(person["openid"], "关联")
    code = next(word for word in reply.replace("：", " ").replace("（", " ").split() if word.isdigit())
    wrong = me.post("/api/v1/auth/link", json={"code": "000000" if code != "000000" else "111111"})
    assert wrong.status_code == 400 and "关联码无效" in wrong.json()["error"]["message"]
    bad = me.post("/api/v1/auth/link", json={"code": "12ab"})
    assert bad.status_code == 400

    linked = me.post("/api/v1/auth/link", json={"code": code})
    assert linked.status_code == 200, linked.text
    homes = api(linked.json()["token"]).get("/api/v1/households").json()["items"]
    assert [h["account_no"] for h in homes] == [world.household.account_no]
    assert _rows(db) == 1
    again = api(linked.json()["token"]).post("/api/v1/auth/link", json={"code": code})
    assert again.status_code == 400   # used once


def test_merge_moves_everything_and_keeps_one_of_each_duplicate(db, world, make_household, redis):
    other_home = make_household(community=world.community, station=world.station)
    oa = WechatUser(oa_openid="oOA_merge_test_000000000000", subscribed=True)
    mp = WechatUser(mp_openid="oMP_merge_test_000000000000", unionid="oUNION_merge_test_00000000000")
    db.session.add_all([oa, mp])
    db.session.flush()
    db.session.add_all([
        HouseholdBinding(wechat_user_id=oa.id, household_id=world.household.id, proof="owner_name"),
        HouseholdBinding(wechat_user_id=mp.id, household_id=world.household.id, proof="phone_last4"),
        HouseholdBinding(wechat_user_id=mp.id, household_id=other_home.id, proof="owner_name"),
        SubscribeConsent(wechat_user_id=oa.id, template_id="tpl", remaining=1),
        SubscribeConsent(wechat_user_id=mp.id, template_id="tpl", remaining=2),
    ])
    oa.staff_id = world.member.id
    db.session.flush()
    ticket = Ticket(number="GD20261125-9999", type="repair", category="no_heat", description="不热",
                    source="miniprogram", reporter_id=mp.id, household_id=world.household.id)
    db.session.add(ticket)
    db.session.flush()
    oa_id, mp_id = oa.id, mp.id

    person = identity.attach_unionid(oa, "oUNION_merge_test_00000000000")
    db.session.commit()

    assert person.id == oa_id and db.session.get(WechatUser, mp_id) is None
    assert (person.oa_openid, person.mp_openid, person.unionid, person.staff_id) == (
        "oOA_merge_test_000000000000", "oMP_merge_test_000000000000", "oUNION_merge_test_00000000000", world.member.id)
    assert sorted(b.household_id for b in person.bindings) == sorted([world.household.id, other_home.id])
    consents = list(db.session.scalars(select(SubscribeConsent)))
    assert [(c.wechat_user_id, c.remaining) for c in consents] == [(oa_id, 3)]
    assert db.session.get(Ticket, ticket.id).reporter_id == oa_id
    assert identity.merged_into(mp_id) == oa_id


def test_followers_from_before_are_linked_by_the_daily_job_in_batches(db, pay_wechat, redis):
    from jobs.identity import CURSOR_KEY, link_all, link_daily

    people = [pay_wechat.create_user(follow=True) for _ in range(3)]
    for person in people:
        db.session.add(WechatUser(oa_openid=person["oa_openid"], subscribed=True))
    # The first person also used the mini-program before: a second row holding the unionid.
    db.session.add(WechatUser(mp_openid=people[0]["mp_openid"], unionid=people[0]["unionid"]))
    db.session.commit()

    first = link_all(limit=2)
    assert (first["asked"], first["merged"], first["linked"]) == (2, 1, 1)
    rest = link_daily()
    assert (rest["asked"], rest["linked"]) == (1, 1)
    assert redis.get(CURSOR_KEY) == b"0"   # reached the end: the next run starts over
    assert _rows(db) == 3
    assert {u.unionid for u in db.session.scalars(select(WechatUser))} == {p["unionid"] for p in people}
    assert link_daily()["asked"] == 0
