"""The dashboard and the console in headless Chromium (Debian's chromium through Playwright).

Each test drives the real app on a real port (``live_app``); screenshots go under
artifacts/screenshots/.
"""
from __future__ import annotations

import json
import time

import pytest
import requests

from app.bridge.signing import sign_headers
from app.models import Role
from app.services.actors import Actor
from app.services.tickets import create_ticket
from tests.factories import bind_wechat_user
from tests.web.conftest import DESKTOP, PHONE, browser_login, screenshot


@pytest.fixture()
def fast_stream(app, monkeypatch):
    """Poll the change stamp twice a second; end each stream soon (the browser reconnects)."""
    monkeypatch.setitem(app.config, "DASHBOARD_POLL_SECONDS", 0.5)
    monkeypatch.setitem(app.config, "DASHBOARD_SSE_MAX_SECONDS", 8)


def _post_bridge_ticket(app, base_url: str, external_id: str) -> requests.Response:
    body = json.dumps({
        "external_id": external_id, "event_id": f"ev-{external_id}", "type": "repair",
        "caller_phone": "13812345678", "description": "暖气片漏水，地面有积水", "category": "leak",
        "address": "和平区测试小区1号楼1单元101室", "agent": "王芳",
        "recording_url": "https://cc.example.com/rec/123.mp3",
    }, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", **sign_headers(app.config["BRIDGE_SECRET"], body)}
    return requests.post(f"{base_url}/bridge/v1/tickets", data=body, headers=headers, timeout=30)


def test_a_ticket_from_the_phone_bridge_appears_on_an_open_dashboard_without_reload(
        app, db, live_app, wechat, staff, open_page, fast_stream, make_area, make_household, make_crew, make_staff,
        monkeypatch):
    # Served at live_app.url: WeChat's sign-in comes back to PUBLIC_BASE_URL, so that is it here.
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", live_app.url)
    _, community, station = make_area(district="和平区")
    make_household(community=community)
    crew = make_crew(name="和平维修一班", stations=[station])
    lead = make_staff(role=Role.CREW_LEAD, crew=crew, name="王班长")
    lead.last_latitude, lead.last_longitude, lead.last_location_label = 39.12, 117.2, "和平区南京路"
    from app.models import utcnow
    lead.last_located_at = utcnow()
    leader = staff(Role.LEADER)
    person, _ = bind_wechat_user(db, wechat, staff=leader, nickname="李总", mini_program=False)
    db.session.commit()

    page = open_page(PHONE)
    # Signed in through WeChat OAuth (the sandbox consents for this user), as from the menu.
    page.goto(f"{live_app.url}/dashboard/login?sandbox_openid={person['openid']}")
    page.wait_for_url(f"{live_app.url}/dashboard/**")
    page.wait_for_selector("#live.on")
    assert page.text_content("#fig-today") == "0"
    page.evaluate("window.__notReloaded = true")

    res = _post_bridge_ticket(app, live_app.url, "CC-WEB-0001")
    assert res.status_code in (200, 201), res.text

    page.wait_for_function("document.querySelector('#fig-today').textContent === '1'", timeout=15000)
    assert page.evaluate("window.__notReloaded") is True  # the same page, updated in place
    assert page.text_content("#fig-open") == "1"
    assert "和平维修一班" in page.text_content("#crew-rows")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling
    screenshot(page, "dashboard-375")

    # Tap the figure: the list behind it holds the new ticket.
    page.click("[data-testid=tile-today]")
    page.wait_for_selector("#drill-list")
    assert "暖气片漏水" in page.text_content("#drill-list")
    page.close()

    desktop = open_page(DESKTOP)
    desktop.goto(f"{live_app.url}/dashboard/login?sandbox_openid={person['openid']}")
    desktop.wait_for_selector("#live.on")
    desktop.wait_for_function("document.querySelector('#chart-type canvas') !== null")
    time.sleep(0.8)  # let ECharts finish its entry animation before the screenshot
    screenshot(desktop, "dashboard-desktop")
    desktop.close()


def test_the_printable_work_order_renders_with_a_qr_code_to_the_crews_task(
        app, db, live_app, staff, open_page, make_area, make_household, make_crew, make_staff):
    _, community, station = make_area(district="南开区")
    household = make_household(community=community, owner_name="赵敏")
    crew = make_crew(name="南开维修二班", stations=[station])
    make_staff(role=Role.CREW_MEMBER, crew=crew, name="孙师傅")
    agent = staff(Role.AGENT, name="客服小周")
    ticket = create_ticket(Actor.of_staff(agent), type="repair", source="staff", category="no_heat",
                           description="卧室暖气片不热", household=household, caller_phone="13900001111")
    db.session.commit()

    page = open_page(DESKTOP)
    browser_login(page, live_app.url, agent.username)
    page.wait_for_selector("#ticket-table")
    assert ticket.number in page.text_content("#ticket-table")
    screenshot(page, "console-tickets-desktop")
    page.click(f"text={ticket.number}")
    page.wait_for_selector("#timeline")
    assert "自动派单" in page.text_content("#timeline")
    screenshot(page, "console-ticket-desktop")

    page.goto(f"{live_app.url}/console/tickets/{ticket.id}/print")
    qr = page.wait_for_selector("#qr svg")
    box = qr.bounding_box()
    assert box["width"] >= 100 and box["height"] >= 100
    assert page.evaluate("document.querySelectorAll('#qr svg path').length") >= 1
    text = page.text_content("body")
    assert ticket.number in text and "孙师傅" in text and "赵敏" in text
    task_link = f"{app.config['PUBLIC_BASE_URL']}/mp/task?id={ticket.id}"
    assert task_link in text
    screenshot(page, "console-work-order")

    # The link behind the QR code is the crew's task page: it starts WeChat's web sign-in and
    # comes back to the task (tests/web/h5_crew follow it to the end).
    link = requests.get(f"{live_app.url}/mp/task?id={ticket.id}&no={ticket.number}", timeout=10,
                        allow_redirects=False)
    assert link.status_code == 302 and link.headers["Location"].startswith("/h5/login?next=")


def test_console_pages_fit_a_phone_screen(app, db, live_app, staff, open_page):
    agent = staff(Role.AGENT)
    page = open_page(PHONE)
    browser_login(page, live_app.url, agent.username)
    page.wait_for_selector("#ticket-table")
    for path, name in (("/console/tickets", "console-tickets-375"), ("/console/outages/new", "console-outage-375"),
                       ("/console/reports", "console-reports-375")):
        page.goto(live_app.url + path)
        # tables scroll inside their own box; the page itself does not scroll sideways
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, path
        screenshot(page, name)


def test_staff_send_an_announcement_to_an_area_and_watch_progress_reach_100_percent(
        app, db, live_app, wechat, worker, staff, open_page, make_area, make_household):

    _, here, _ = make_area(district="河东区", community="阳光小区")
    _, elsewhere, _ = make_area(district="河东区", community="幸福里")

    def resident(community):
        person, _ = bind_wechat_user(db, wechat, household=make_household(community=community))
        return person["openid"]

    inside = [resident(here) for _ in range(4)]
    outside = resident(elsewhere)
    agent = staff(Role.AGENT, name="客服小周")
    db.session.commit()

    page = open_page(DESKTOP)
    browser_login(page, live_app.url, agent.username)
    page.goto(f"{live_app.url}/console/announcements/new")
    page.fill("#title", "阳光小区管网检修通知")
    page.fill("#body", "本周六9:00-12:00检修，期间暖气温度可能偏低，请注意保暖。")
    page.check("input[name=audience][value=area]")
    page.check(f"#area-box .pick-community[value='{here.id}']")
    page.wait_for_function("document.querySelector('#recipients').textContent === '4'")
    assert page.text_content("#pv-title") == "阳光小区管网检修通知"  # the WeChat-style preview
    screenshot(page, "console-announcement-compose")
    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), d.accept()))
    page.click("#submit-announcement")
    page.wait_for_selector("#progress-card")
    page.evaluate("""() => {
        window.__seen = [];
        new MutationObserver(() => window.__seen.push(document.querySelector('#progress-pct').textContent))
            .observe(document.querySelector('#progress-pct'), {childList: true, characterData: true, subtree: true});
    }""")

    worker()  # the broadcast runs while the page polls its progress

    page.wait_for_function("document.querySelector('#progress-pct').textContent === '100%'", timeout=20000)
    assert asked and "4 人" in asked[0]   # the mass send asked first, with the number of recipients
    assert page.text_content("#ann-status") == "全部发送成功（4人）"
    assert page.text_content("#p-sent") == "4"
    assert "100%" in page.evaluate("window.__seen")  # reached in place, without a reload
    screenshot(page, "console-announcement-done")
    for openid in inside:
        assert any("阳光小区管网检修通知" in json.dumps(m, ensure_ascii=False) for m in wechat.inbox(openid))
    assert wechat.inbox(outside) == []
