"""Console and dashboard sign-in, sessions, CSRF and roles."""
from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import requests

from app.models import Role, Ticket, TicketState, TicketType
from app.services.actors import Actor
from app.services.tickets import create_ticket
from tests.factories import bind_wechat_user
from tests.web.conftest import PASSWORD, csrf_from


def _inquiry(db, agent):
    ticket = create_ticket(Actor.of_staff(agent), type=TicketType.INQUIRY, source="staff",
                           description="请问什么时候开始供暖？", caller_phone="13800000001")
    db.session.commit()
    return ticket


def test_console_pages_need_a_signed_in_staff_member(client):
    res = client.get("/console/tickets")
    assert res.status_code == 302 and "/console/login" in res.location


def test_password_sign_in_opens_the_console_and_wrong_password_does_not(staff, console):
    agent = staff(Role.AGENT)
    bad = console.login(agent.username, "wrong-password")
    assert bad.status_code == 401 and "用户名或密码不正确" in bad.get_data(as_text=True)
    assert console.get("/console/tickets").status_code == 302
    assert console.login(agent.username).status_code == 302
    assert console.get("/console/tickets").status_code == 200


def test_repeated_wrong_passwords_lock_the_username_for_a_while(staff, console):
    agent = staff(Role.AGENT)
    for _ in range(8):
        console.login(agent.username, "nope")
    res = console.login(agent.username)  # even the right password now
    assert res.status_code == 429 and "登录失败次数过多" in res.get_data(as_text=True)


def test_crew_members_cannot_sign_in_to_the_console(staff, console):
    member = staff(Role.CREW_MEMBER)
    res = console.login(member.username)
    assert res.status_code == 403
    assert console.get("/console/tickets").status_code == 302


def test_a_post_without_the_session_csrf_token_is_refused(db, staff, console):
    agent = staff(Role.AGENT)
    ticket = _inquiry(db, agent)
    console.login(agent.username)
    url = f"/console/tickets/{ticket.id}/close"
    missing = console.post(url, {"final_answer": "11月15日开始供暖"}, csrf=False)
    forged = console.post(url, {"final_answer": "11月15日开始供暖", "csrf_token": "forged"}, csrf=False)
    assert missing.status_code == 400 and forged.status_code == 400
    assert "CSRF" in missing.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).state != TicketState.CLOSED
    ok = console.post(url, {"final_answer": "11月15日开始供暖"})
    assert ok.status_code == 302
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).state == TicketState.CLOSED


def test_the_login_form_itself_needs_its_csrf_token(staff, client):
    agent = staff(Role.AGENT)
    res = client.post("/console/login", data={"username": agent.username, "password": PASSWORD})
    assert res.status_code == 400
    assert client.get("/console/tickets").status_code == 302


def test_leaders_read_the_console_but_cannot_change_anything(db, staff, console):
    agent = staff(Role.AGENT)
    leader = staff(Role.LEADER)
    ticket = _inquiry(db, agent)
    console.login(leader.username)
    page = console.get(f"/console/tickets/{ticket.id}")
    assert page.status_code == 200 and "只读" in page.get_data(as_text=True)
    assert 'id="close-form"' not in page.get_data(as_text=True)
    res = console.post(f"/console/tickets/{ticket.id}/close", {"final_answer": "答复"})
    assert res.status_code == 403
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).state == TicketState.NEW
    # A POST that changes nothing of the business (counting an audience) is theirs too.
    count = console.client.post("/console/announcements/audience.json", json={"audience": "all"},
                                headers={"X-CSRF-Token": console.token})
    assert count.status_code == 200 and "recipients" in count.get_json()


def test_signing_out_ends_the_session(staff, console):
    agent = staff(Role.AGENT)
    console.login(agent.username)
    assert console.post("/console/logout").status_code == 302
    assert console.get("/console/tickets").status_code == 302


def test_a_deactivated_staff_member_is_signed_out_at_once(db, staff, console):
    agent = staff(Role.AGENT)
    console.login(agent.username)
    agent.active = False
    db.session.commit()
    assert console.get("/console/tickets").status_code == 302


def test_dashboard_is_for_leaders_and_admins_only(staff, console):
    agent = staff(Role.AGENT)
    console.login(agent.username)
    assert console.get("/dashboard/").status_code == 403
    assert console.get("/dashboard/summary.json").status_code == 403
    leader = staff(Role.LEADER)
    console.login(leader.username)
    assert console.get("/dashboard/").status_code == 200


def test_dashboard_data_needs_a_session(client):
    assert client.get("/dashboard/summary.json").status_code == 401
    assert client.get("/dashboard/stream").status_code == 401
    res = client.get("/dashboard/")
    assert res.status_code == 302 and "/dashboard/login" in res.location


def test_console_scripts_without_a_session_get_401_and_people_the_sign_in_page(client):
    assert client.get("/console/chats/live.json").status_code == 401
    assert client.get("/console/tickets", headers={"Accept": "application/json"}).status_code == 401
    res = client.get("/console/tickets?state=new")
    assert res.status_code == 302 and "/console/login" in res.location and "state%3Dnew" in res.location

def _wechat_sign_in(client, wechat, openid: str):
    """Follow WeChat's web OAuth as a browser in WeChat would (the sandbox consents for `openid`)."""
    start = client.get(f"/dashboard/login?sandbox_openid={openid}")
    assert start.status_code == 302
    consent = requests.get(start.location.split("#")[0], allow_redirects=False, timeout=10)
    assert consent.status_code == 302
    back = urlparse(consent.headers["Location"])
    assert back.path == "/dashboard/oauth"
    query = parse_qs(back.query)
    return client.get(f"/dashboard/oauth?code={query['code'][0]}&state={query['state'][0]}")


def test_wechat_sign_in_maps_a_leaders_openid_to_the_leader(db, staff, client, wechat):
    leader = staff(Role.LEADER)
    person, _ = bind_wechat_user(db, wechat, staff=leader, nickname="李总", mini_program=False)
    db.session.commit()
    res = _wechat_sign_in(client, wechat, person["openid"])
    assert res.status_code == 302 and res.location.endswith("/dashboard/")
    assert client.get("/dashboard/").status_code == 200


def test_wechat_sign_in_refuses_people_who_are_not_leaders(app, db, staff, wechat):
    agent = staff(Role.AGENT)
    resident, _ = bind_wechat_user(db, wechat, nickname="居民", mini_program=False)
    clerk, _ = bind_wechat_user(db, wechat, staff=agent, nickname="客服", mini_program=False)
    db.session.commit()
    for person in (resident, clerk):
        client = app.test_client()
        res = _wechat_sign_in(client, wechat, person["openid"])
        assert res.status_code == 403 and "无权查看" in res.get_data(as_text=True)
        assert client.get("/dashboard/summary.json").status_code == 401


def test_wechat_sign_in_refuses_a_forged_state(db, staff, client, wechat):
    leader = staff(Role.LEADER)
    person, _ = bind_wechat_user(db, wechat, staff=leader, mini_program=False)
    db.session.commit()
    start = client.get(f"/dashboard/login?sandbox_openid={person['openid']}")
    consent = requests.get(start.location.split("#")[0], allow_redirects=False, timeout=10)
    code = parse_qs(urlparse(consent.headers["Location"]).query)["code"][0]
    res = client.get(f"/dashboard/oauth?code={code}&state=attacker-state")
    assert res.status_code == 400
    assert client.get("/dashboard/summary.json").status_code == 401


def test_photos_are_served_to_signed_in_staff_only(app, db, staff, console, tmp_path):
    from pathlib import Path

    from app.models import TicketPhoto
    from app.services.uploads import upload_dir

    agent = staff(Role.AGENT)
    ticket = _inquiry(db, agent)
    name = "web-test/photo.jpg"
    target = upload_dir() / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"\xff\xd8\xff\xe0fake-jpeg")
    photo = TicketPhoto(ticket_id=ticket.id, path=name, content_type="image/jpeg", uploaded_by_kind="staff")
    db.session.add(photo)
    db.session.commit()
    assert console.get(f"/console/photos/{photo.id}").status_code == 302
    console.login(agent.username)
    res = console.get(f"/console/photos/{photo.id}")
    assert res.status_code == 200 and res.data.startswith(b"\xff\xd8")
    assert Path(target).exists()


def test_next_after_sign_in_stays_on_this_site(staff, client):
    agent = staff(Role.AGENT)
    page = client.get("/console/login?next=//evil.example/x").get_data(as_text=True)
    res = client.post("/console/login", data={"username": agent.username, "password": PASSWORD,
                                              "csrf_token": csrf_from(page), "next": "//evil.example/x"})
    assert res.status_code == 302 and res.location.endswith("/console/tickets")
