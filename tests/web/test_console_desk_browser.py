"""The desk in headless Chromium (issue 17): 新建工单 with household search, the customer page,
the ticket list with both deadlines, admin pages — at 375 px and 1920×1080. Screenshots under
artifacts/screenshots/."""
from __future__ import annotations

from datetime import timedelta

import pytest

from app.models import CallLog, CallStatus, Role, utcnow
from app.services.actors import Actor
from app.services.tickets import create_ticket
from tests.web.conftest import PHONE, browser_login, screenshot

WALL = {"width": 1920, "height": 1080}


@pytest.fixture()
def desk_city(db, make_area, make_household, make_crew, make_staff):
    _, community, station = make_area(district="和平区", community="幸福里")
    crew = make_crew(name="和平维修一班", stations=[station])
    make_staff(role=Role.CREW_MEMBER, crew=crew, name="张志强")
    liu = make_household(community=community, owner_name="刘秀英", owner_phone="13940512234", building="3", unit="2",
                         room="501", account_no="10100006")
    late = create_ticket(Actor.system(), type="complaint", source="phone", description="一直没人来", household=liu,
                         caller_name="刘秀英", caller_phone=liu.owner_phone, now=utcnow() - timedelta(days=2))
    db.session.add(CallLog(call_id="C-77", caller_phone=liu.owner_phone, status=CallStatus.HANGUP,
                           started_at=utcnow() - timedelta(hours=1), answered_at=utcnow() - timedelta(hours=1),
                           last_event_at=utcnow(), duration_s=130, agent="王芳", household_id=liu.id,
                           recording_url="https://cc.example.com/recordings/C-77.mp3"))
    db.session.commit()
    return {"liu": liu, "late": late}


@pytest.mark.parametrize("viewport,tag", [(PHONE, "375"), (WALL, "1920")])
def test_an_agent_logs_a_walk_in_from_a_household_search_and_opens_the_customer_page(
        app, db, live_app, staff, open_page, desk_city, viewport, tag):
    agent = staff(Role.AGENT, name="客服小周")
    page = open_page(viewport)
    browser_login(page, live_app.url, agent.username)
    page.click("#nav-new-ticket")
    page.fill("#q", "2234")                         # the last digits the caller gives
    page.click("#household-search button[type=submit]")
    page.wait_for_selector(".household-row[data-account='10100006']")
    assert "刘**" in page.text_content("#household-results") and "139****2234" in page.text_content("#household-results")
    screenshot(page, f"console-new-ticket-search-{tag}")
    page.click(".household-row[data-account='10100006'] >> text=选择")
    page.wait_for_selector("#chosen-household")
    page.select_option("#source", "walk_in")
    page.select_option("#category", "leak")
    page.click("#create-ticket")                    # no description: refused in place, input kept
    page.wait_for_selector(".field-error[data-field='description']")
    assert page.input_value("#address").startswith("和平区幸福里3号楼2单元501")
    assert page.eval_on_selector("#source", "e => e.value") == "walk_in"
    screenshot(page, f"console-new-ticket-refused-{tag}")
    page.fill("#description", "暖气片接口漏水，地面有积水")
    page.click("#create-ticket")
    page.wait_for_selector("#timeline")
    assert "已创建（来访），已派给和平维修一班" in page.text_content(".flash.ok")
    if tag == "375":
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, f"console-new-ticket-created-{tag}")

    page.click("#customer-link")
    page.wait_for_selector("#customer-facts")
    assert page.text_content("#owner-name") == "刘秀英" and "139 4051 2234" in page.text_content("#owner-phone")
    assert page.get_attribute("#calls a.recording", "href") == "https://cc.example.com/recordings/C-77.mp3"
    assert "暖气片接口漏水" in page.text_content("#customer-tickets")
    screenshot(page, f"console-customer-{tag}")

    page.goto(f"{live_app.url}/console/tickets")
    assert "超时未响应 1" in page.text_content("#ticket-counts")
    page.wait_for_selector(f"tr[data-number='{desk_city['late'].number}'] .late-response")
    screenshot(page, f"console-tickets-deadlines-{tag}")


@pytest.mark.parametrize("viewport,tag", [(PHONE, "375"), (WALL, "1920")])
def test_an_admin_reads_the_access_log_and_admin_pages(app, db, live_app, staff, open_page, desk_city, viewport, tag):
    agent = staff(Role.AGENT, name="客服小李")
    admin = staff(Role.ADMIN, name="系统管理员")
    page = open_page(viewport)
    browser_login(page, live_app.url, agent.username)
    assert page.query_selector("#admin-nav") is None
    page.goto(f"{live_app.url}/console/customers?q=刘秀英")
    page.click(".household-row >> text=客户资料")
    page.wait_for_selector("#customer-facts")
    page.goto(f"{live_app.url}/console/admin/access-log")
    assert "没有权限" in page.content()
    page.context.clear_cookies()

    browser_login(page, live_app.url, admin.username)
    page.click("#admin-nav >> text=访问记录")
    page.wait_for_selector("#access-table")
    rows = page.query_selector_all(".access-row")
    assert len(rows) == 1 and "客服小李" in rows[0].text_content() and "户号 10100006" in rows[0].text_content()
    if tag == "375":
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, f"console-access-log-{tag}")
    for link, name in (("时限标准", "sla"), ("取证规则", "evidence"), ("运行设置", "settings")):
        page.click(f"#admin-nav >> text={link}")
        page.wait_for_load_state()
        screenshot(page, f"console-admin-{name}-{tag}")
