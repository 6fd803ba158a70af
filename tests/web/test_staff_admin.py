"""Staff administration in the console (admins only) and `flask staff bind-qr`."""
from __future__ import annotations

from sqlalchemy import func, select

from app.models import Role, Staff, StaffBindCode, WechatUser
from mobile_api.auth import issue_token
from tests.web.conftest import PASSWORD, Console

NEW_PASSWORD = "Winter2026"


def _admin(staff, console):
    admin = staff(Role.ADMIN, username="boss", name="管理员甲")
    assert console.login(admin.username).status_code == 302
    return admin


def _fresh(db, staff_id):
    db.session.expire_all()
    return db.session.get(Staff, staff_id)


def test_admin_sees_the_staff_list_with_role_crew_wechat_and_lock(db, app, staff, console, make_crew, make_wechat_user):
    _admin(staff, console)
    crew = make_crew(name="一班")
    member = staff(Role.CREW_MEMBER, crew=crew, username="zhaosf", name="赵师傅")
    make_wechat_user(staff_id=member.id)
    staff(Role.AGENT, username="xiaoliu", name="客服小刘", active=False)
    db.session.commit()
    for _ in range(8):
        Console(app.test_client()).login("xiaoliu", "wrong")

    page = console.get("/console/staff").get_data(as_text=True)
    assert 'href="/console/staff"' in page  # the nav link
    zhao = page[page.index('data-username="zhaosf"'):].split("</tr>")[0]
    assert all(word in zhao for word in ("赵师傅", "维修人员", "一班", "在用", "已绑定", "正常"))
    liu = page[page.index('data-username="xiaoliu"'):].split("</tr>")[0]
    assert all(word in liu for word in ("客服", "已停用", "未绑定", "登录受限"))


def test_the_staff_list_pages_through_many(db, staff, console, make_staff):
    _admin(staff, console)
    for n in range(25):
        make_staff(username=f"many{n:02d}")
    db.session.commit()
    first = console.get("/console/staff").get_data(as_text=True)
    second = console.get("/console/staff?page=2").get_data(as_text=True)
    assert "1 / 2" in first and "下一页" in first
    assert "2 / 2" in second and second.count("data-username=") == 26 - 20


def test_agents_get_403_and_no_nav_link(db, staff, console):
    target = staff(Role.CREW_MEMBER)
    agent = staff(Role.AGENT)
    console.login(agent.username)
    assert 'href="/console/staff"' not in console.get("/console/tickets").get_data(as_text=True)
    assert console.get("/console/staff").status_code == 403
    assert console.get(f"/console/staff/{target.id}").status_code == 403
    assert console.post(f"/console/staff/{target.id}/active", {"active": "0"}).status_code == 403
    assert console.post("/console/staff", {"username": "sneaky", "name": "某人", "role": Role.ADMIN,
                                           "password": NEW_PASSWORD}).status_code == 403
    assert _fresh(db, target.id).active
    assert db.session.scalar(select(Staff).where(Staff.username == "sneaky")) is None


def test_leaders_get_403_too(db, staff, console):
    leader = staff(Role.LEADER)
    console.login(leader.username)
    assert console.get("/console/staff").status_code == 403


def test_admin_adds_a_staff_member_who_can_then_sign_in(db, app, staff, console, make_crew):
    _admin(staff, console)
    crew = make_crew(name="二班")
    db.session.commit()
    res = console.post("/console/staff", {"username": "wangbz", "name": "王班长", "phone": "139 1234 5678",
                                          "role": Role.CREW_LEAD, "crew_id": str(crew.id), "password": NEW_PASSWORD})
    assert res.status_code == 302
    created = db.session.scalar(select(Staff).where(Staff.username == "wangbz"))
    assert (created.name, created.role, created.crew_id, created.phone, created.active) == \
        ("王班长", Role.CREW_LEAD, crew.id, "+8613912345678", True)
    assert created.check_password(NEW_PASSWORD)
    staff(Role.AGENT, username="kefu2", name="客服二")  # and an agent, who may use the console
    assert console.post("/console/staff", {"username": "kefu3", "name": "客服三", "role": Role.AGENT,
                                           "password": NEW_PASSWORD}).status_code == 302
    assert Console(app.test_client()).login("kefu3", NEW_PASSWORD).status_code == 302


def test_a_bad_new_staff_form_is_shown_again_in_chinese_and_nothing_is_added(db, staff, console):
    _admin(staff, console)
    staff(Role.AGENT, username="taken")
    before = db.session.scalar(select(func.count(Staff.id)))
    res = console.post("/console/staff", {"username": "TAKEN", "name": "", "phone": "abc",
                                          "role": Role.CREW_MEMBER, "password": "short"})
    page = res.get_data(as_text=True)
    assert res.status_code == 400
    for message in ("该用户名已被使用", "请填写姓名", "手机号格式不正确", "维修人员须选择所属班组", "密码至少8位"):
        assert message in page
    assert 'value="TAKEN"' in page and "short" not in page  # input kept, password not echoed
    assert db.session.scalar(select(func.count(Staff.id))) == before


def test_admin_edits_role_crew_name_and_phone(db, app, staff, console, make_crew):
    _admin(staff, console)
    crew = make_crew(name="三班")
    agent = staff(Role.AGENT, name="小刘")
    agent_console = Console(app.test_client())
    agent_console.login(agent.username)
    res = console.post(f"/console/staff/{agent.id}", {"name": "刘师傅", "phone": "13700000000",
                                                      "role": Role.CREW_MEMBER, "crew_id": str(crew.id)})
    assert res.status_code == 302
    changed = _fresh(db, agent.id)
    assert (changed.name, changed.phone, changed.role, changed.crew_id) == ("刘师傅", "+8613700000000",
                                                                            Role.CREW_MEMBER, crew.id)
    # Now a crew member: the console is closed to them at once.
    assert agent_console.get("/console/tickets").status_code == 403


def test_a_bad_edit_changes_nothing(db, staff, console):
    admin = _admin(staff, console)
    agent = staff(Role.AGENT, name="小刘")
    res = console.post(f"/console/staff/{agent.id}", {"name": "小刘", "role": "boss", "crew_id": "999"})
    page = res.get_data(as_text=True)
    assert res.status_code == 400 and "请选择角色" in page and "班组不存在" in page
    assert _fresh(db, agent.id).role == Role.AGENT
    res = console.post(f"/console/staff/{admin.id}", {"name": "管理员甲", "role": Role.AGENT})
    assert res.status_code == 400 and "不能取消自己的管理员角色" in res.get_data(as_text=True)
    assert _fresh(db, admin.id).role == Role.ADMIN


def test_deactivation_ends_the_console_session_and_the_mobile_token_at_once(db, app, staff, console, make_crew,
                                                                           make_wechat_user):
    _admin(staff, console)
    agent = staff(Role.AGENT)
    member = staff(Role.CREW_MEMBER, crew=make_crew())
    phone = make_wechat_user(oa_openid=None, mp_openid="mp-member", subscribed=False, staff_id=member.id)
    db.session.commit()
    token = {"Authorization": f"Bearer {issue_token(phone)}"}
    agent_console = Console(app.test_client())
    agent_console.login(agent.username)
    assert agent_console.get("/console/tickets").status_code == 200
    assert app.test_client().get("/api/v1/tasks", headers=token).status_code == 200

    assert console.post(f"/console/staff/{agent.id}/active", {"active": "0"}).status_code == 302
    assert console.post(f"/console/staff/{member.id}/active", {"active": "0"}).status_code == 302
    gone = agent_console.get("/console/tickets")
    assert gone.status_code == 302 and "/console/login" in gone.location
    ended = app.test_client().get("/api/v1/tasks", headers=token)
    assert ended.status_code == 401 and ended.json["error"]["code"] == "session_ended"
    assert Console(app.test_client()).login(agent.username).status_code == 401
    # Reactivation gives the rights back at the next sign-in, never to the ended sessions.
    assert console.post(f"/console/staff/{agent.id}/active", {"active": "1"}).status_code == 302
    assert console.post(f"/console/staff/{member.id}/active", {"active": "1"}).status_code == 302
    assert agent_console.get("/console/tickets").status_code == 302
    assert app.test_client().get("/api/v1/tasks", headers=token).status_code == 401
    assert app.test_client().get("/api/v1/tasks", headers={"Authorization": f"Bearer {issue_token(phone)}"}
                                 ).status_code == 200
    db.session.expire_all()
    assert db.session.get(WechatUser, phone.id).staff_id == member.id  # the binding is kept


def test_an_admin_cannot_deactivate_themself(db, staff, console):
    admin = _admin(staff, console)
    res = console.post(f"/console/staff/{admin.id}/active", {"active": "0"}, follow_redirects=True)
    assert "不能停用自己的账号" in res.get_data(as_text=True)
    assert _fresh(db, admin.id).active


def test_reset_password(db, app, staff, console):
    _admin(staff, console)
    agent = staff(Role.AGENT)
    weak = console.post(f"/console/staff/{agent.id}/password", {"password": "12345678"})
    assert weak.status_code == 400 and "密码须同时包含字母和数字" in weak.get_data(as_text=True)
    assert _fresh(db, agent.id).check_password(PASSWORD)
    assert console.post(f"/console/staff/{agent.id}/password", {"password": NEW_PASSWORD}).status_code == 302
    assert Console(app.test_client()).login(agent.username, PASSWORD).status_code == 401
    assert Console(app.test_client()).login(agent.username, NEW_PASSWORD).status_code == 302


def test_unlock_after_too_many_failed_sign_ins(db, app, staff, console):
    _admin(staff, console)
    agent = staff(Role.AGENT)
    for _ in range(8):
        Console(app.test_client()).login(agent.username, "wrong")
    assert Console(app.test_client()).login(agent.username).status_code == 429
    page = console.get(f"/console/staff/{agent.id}").get_data(as_text=True)
    assert "登录受限" in page and 'id="unlock"' in page
    assert console.post(f"/console/staff/{agent.id}/unlock").status_code == 302
    assert 'id="unlock"' not in console.get(f"/console/staff/{agent.id}").get_data(as_text=True)
    assert Console(app.test_client()).login(agent.username).status_code == 302


def test_staff_posts_need_the_csrf_token(db, staff, console):
    _admin(staff, console)
    agent = staff(Role.AGENT)
    assert console.post(f"/console/staff/{agent.id}/active", {"active": "0"}, csrf=False).status_code == 400
    assert _fresh(db, agent.id).active


def test_bind_qr_page_shows_the_scene_and_a_sandbox_scan_binds(db, wechat, staff, console, make_crew):
    _admin(staff, console)
    member = staff(Role.CREW_MEMBER, crew=make_crew(), name="赵师傅")
    res = console.post(f"/console/staff/{member.id}/bind-qr")
    page = res.get_data(as_text=True)
    assert res.status_code == 200
    code = db.session.scalar(select(StaffBindCode).where(StaffBindCode.staff_id == member.id))
    assert f"staff:{code.code}" in page
    assert "请本人用微信扫码绑定，24小时内有效，仅可使用一次" in page and "有效期至" in page and "<svg" in page
    assert "微信接口暂时不可用" not in page  # the sandbox made a real temporary QR

    person = wechat.create_user()
    reply = wechat.send(person["openid"], type="event", event="SCAN", scene=f"staff:{code.code}")
    assert "已绑定员工账号" in reply["reply"]["Content"]
    again = wechat.create_user()
    reply = wechat.send(again["openid"], type="event", event="SCAN", scene=f"staff:{code.code}")
    assert reply["reply"]["Content"] == "该绑定二维码已被使用，请联系管理员重新生成"
    listing = console.get("/console/staff").get_data(as_text=True)
    assert "已绑定" in listing[listing.index(f'data-username="{member.username}"'):].split("</tr>")[0]


def test_unbinding_a_lost_phone_frees_that_wechat_for_another_staff_member(db, wechat, staff, console, make_crew):
    _admin(staff, console)
    left = staff(Role.CREW_MEMBER, crew=make_crew(), name="钱师傅")
    successor = staff(Role.CREW_MEMBER, crew=make_crew(), name="孙师傅")
    phone = wechat.create_user()
    console.post(f"/console/staff/{left.id}/bind-qr")
    code = db.session.scalar(select(StaffBindCode).where(StaffBindCode.staff_id == left.id)).code
    wechat.send(phone["openid"], type="event", event="SCAN", scene=f"staff:{code}")
    db.session.commit()   # the callback committed the binding: look again
    assert "解除微信绑定" in console.get(f"/console/staff/{left.id}").get_data(as_text=True)

    done = console.post(f"/console/staff/{left.id}/unbind-wechat", follow_redirects=True)
    assert "已解除" in done.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalar(select(WechatUser).where(WechatUser.staff_id == left.id)) is None
    again = console.post(f"/console/staff/{left.id}/unbind-wechat", follow_redirects=True)
    assert "没有绑定微信" in again.get_data(as_text=True)

    console.post(f"/console/staff/{successor.id}/bind-qr")
    code = db.session.scalar(select(StaffBindCode).where(StaffBindCode.staff_id == successor.id)).code
    reply = wechat.send(phone["openid"], type="event", event="SCAN", scene=f"staff:{code}")["reply"]["Content"]
    assert "已绑定员工账号" in reply


def test_no_bind_qr_for_a_deactivated_staff_member(db, staff, console):
    _admin(staff, console)
    gone = staff(Role.CREW_MEMBER, active=False)
    res = console.post(f"/console/staff/{gone.id}/bind-qr", follow_redirects=True)
    assert "该员工账号已停用，无法绑定" in res.get_data(as_text=True)
    assert db.session.scalar(select(StaffBindCode)) is None


# --- flask staff bind-qr ---------------------------------------------------------------------------

def test_cli_bind_qr_prints_code_scene_expiry_and_a_terminal_qr(db, app, wechat, runner, make_staff):
    member = make_staff(role=Role.CREW_MEMBER, username="zhaosf", name="赵师傅")
    db.session.commit()
    result = runner.invoke(args=["staff", "bind-qr", "zhaosf"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    code = db.session.scalar(select(StaffBindCode).where(StaffBindCode.staff_id == member.id))
    out = result.output
    assert code.code in out and f"staff:{code.code}" in out and "有效期至" in out
    assert "http://weixin.qq.com/q/" in out and "█" in out  # WeChat's QR URL, drawn in the terminal


def test_cli_bind_qr_refuses_unknown_and_inactive_staff(db, runner, make_staff):
    make_staff(username="gone", active=False)
    db.session.commit()
    unknown = runner.invoke(args=["staff", "bind-qr", "nobody"])
    assert unknown.exit_code == 1 and "没有用户名为 nobody 的员工" in unknown.output
    inactive = runner.invoke(args=["staff", "bind-qr", "gone", "--no-wechat"])
    assert inactive.exit_code == 1 and "已停用" in inactive.output
    assert db.session.scalar(select(StaffBindCode)) is None
