"""A crew member's WeChat is bound the way people do it: an admin makes the binding QR in the
console, the crew member scans it (the sandbox page's 扫码 button), and their mini-program
login then carries the crew role — in headless Chromium, over real HTTP."""
from __future__ import annotations

import requests

from app.models import Role
from tests.web.conftest import DESKTOP, browser_login, screenshot


def test_admin_makes_a_binding_qr_the_crew_member_scans_it_and_works_tasks_in_the_mini_program(
        db, live_app, wechat, worker, staff, open_page, make_area, make_crew):
    _, _, station = make_area()
    crew = make_crew(stations=[station])
    member = staff(Role.CREW_MEMBER, crew=crew, name="刘师傅", username="crew9_m1")
    admin = staff(Role.ADMIN, name="管理员")
    person = wechat.create_user(nickname="crew9_m1", follow=False)

    console = open_page(DESKTOP)
    browser_login(console, live_app.url, admin.username)
    console.goto(f"{live_app.url}/console/staff/{member.id}")
    console.click("#bind-qr")
    scene = console.text_content("#scene").strip()
    assert scene.startswith("staff:")
    screenshot(console, "console-staff-bind-qr")

    phone = open_page(DESKTOP)
    phone.goto(f"{wechat.base}/#open={person['openid']}")
    box = phone.wait_for_selector(f"#phone-{person['openid']}")
    phone.once("dialog", lambda dialog: dialog.accept(scene))
    box.query_selector(".tools button:has-text('扫码')").click()
    phone.wait_for_function(
        f"document.querySelector('#phone-{person['openid']} .chat').textContent.includes('已绑定员工账号')")
    screenshot(phone, "sandbox-crew-scans-binding-qr")

    worker()   # the official account learns the person's unionid
    code = requests.post(f"{wechat.base}/users/{person['openid']}/login-code", timeout=10).json()["code"]
    login = requests.post(f"{live_app.url}/api/v1/auth/login", json={"code": code}, timeout=30)
    assert login.status_code == 200 and "crew" in login.json()["roles"], login.text
    tasks = requests.get(f"{live_app.url}/api/v1/tasks", timeout=30,
                         headers={"Authorization": f"Bearer {login.json()['token']}"})
    assert tasks.status_code == 200 and tasks.json()["items"] == []

    # The used code, scanned by someone else, is refused in Chinese and changes nothing.
    other = wechat.create_user(nickname="别人")
    reply = wechat.send(other["openid"], type="event", event="SCAN", scene=scene)["reply"]["Content"]
    assert "已被使用" in reply
