"""The leader dashboard, its wall mode and the reports page in headless Chromium (Debian's
chromium through Playwright), at 375 px and 1920×1080. Screenshots: artifacts/screenshots/."""
from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
import requests

from app.bridge.signing import sign_headers
from app.models import CallLog, Role, Ticket, TicketState
from app.services.actors import Actor
from app.services.tickets import create_ticket
from tests.web.conftest import PHONE, browser_login, screenshot

WALL = {"width": 1920, "height": 1080}


@pytest.fixture()
def fast_stream(app, monkeypatch):
    monkeypatch.setitem(app.config, "DASHBOARD_POLL_SECONDS", 0.5)
    monkeypatch.setitem(app.config, "DASHBOARD_SSE_MAX_SECONDS", 8)


@pytest.fixture()
def city(db, staff, make_area, make_household, make_crew, make_staff):
    """A leader, a crew with a located member, a few tickets (one waiting for a crew), calls."""
    from app.models import utcnow

    now = utcnow()
    _, community, station = make_area(district="和平区")
    household = make_household(community=community, owner_phone="13912345678")
    crew = make_crew(name="和平维修一班", stations=[station])
    lead = make_staff(role=Role.CREW_LEAD, crew=crew, name="王班长")
    lead.last_latitude, lead.last_longitude, lead.last_location_label = 41.797, 123.408, "锦绣家园3号楼附近"
    lead.last_located_at = now - timedelta(minutes=5)
    agent = staff(Role.AGENT, name="客服小周")
    for description in ("卧室暖气不热", "客厅暖气片漏水"):
        create_ticket(Actor.of_staff(agent), type="repair", source="staff", category="no_heat",
                      description=description, household=household, caller_phone="13912345678")
    # an inquiry nobody sent to a crew yet: 待派单
    waiting = create_ticket(Actor.of_staff(agent), type="complaint", source="staff", category="service",
                            description="上次维修师傅没有按约定时间上门", caller_phone="13912345678")
    db.session.add(CallLog(call_id="b-1", caller_phone="+8613800000001", status="hangup", agent="王芳",
                           started_at=now - timedelta(minutes=20), answered_at=now - timedelta(minutes=20) + timedelta(seconds=12),
                           last_event_at=now - timedelta(minutes=15)))
    leader = staff(Role.LEADER, name="王涛")
    db.session.commit()
    return {"leader": leader, "waiting": waiting, "agent": agent}


def _post_call(app, base_url: str, call_id: str, event: str) -> None:
    body = json.dumps({"event_id": f"{call_id}-{event}", "call_id": call_id, "event": event,
                       "caller_phone": "13811112222"}).encode()
    headers = {"Content-Type": "application/json", **sign_headers(app.config["BRIDGE_SECRET"], body)}
    res = requests.post(f"{base_url}/bridge/v1/calls", data=body, headers=headers, timeout=30)
    assert res.status_code == 200, res.text


def test_dashboard_on_a_phone_opens_a_waiting_ticket_with_its_timeline(app, live_app, city, open_page, fast_stream):
    page = open_page(PHONE)
    browser_login(page, live_app.url, city["leader"].username, next_path="/dashboard/")
    page.wait_for_selector("#live.on")
    assert page.text_content("#signed-in-as") == "王涛"
    assert page.is_visible("#logout")
    assert page.text_content("#fig-unassigned") == "1"
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.wait_for_function("document.querySelector('#chart-hourly canvas') !== null")
    time.sleep(0.8)
    screenshot(page, "dashboard17-375")

    page.click("[data-testid=tile-unassigned]")
    page.wait_for_selector("#drill-list")
    page.click(f"text={city['waiting'].number}")
    page.wait_for_selector("#timeline")
    assert "上次维修师傅没有按约定时间上门" in page.text_content("#ticket-facts")
    assert "客服小周" in page.text_content("#timeline")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, "dashboard17-ticket-375")

    page.goto(f"{live_app.url}/dashboard/")
    page.click("#logout")
    page.goto(f"{live_app.url}/dashboard/")
    assert "/dashboard/login" in page.url


def test_dashboard_at_1920_uses_the_width_with_no_empty_tile_slot(app, live_app, city, open_page, fast_stream):
    page = open_page(WALL)
    browser_login(page, live_app.url, city["leader"].username, next_path="/dashboard/")
    page.wait_for_selector("#live.on")
    page.wait_for_function("document.querySelector('#chart-money canvas') !== null")
    width = page.evaluate("document.querySelector('main').getBoundingClientRect().width")
    assert width > 1800                                     # not a 1,250-px column
    layout = page.evaluate("""() => {
        const grid = document.querySelector('#tiles'), box = grid.getBoundingClientRect();
        const tiles = [...grid.children], last = tiles[tiles.length - 1].getBoundingClientRect();
        return {cols: getComputedStyle(grid).gridTemplateColumns.split(' ').length,
                lastRight: last.right, gridRight: box.right};
    }""")
    assert layout["cols"] >= 8
    assert abs(layout["lastRight"] - layout["gridRight"]) < 2   # the last row is filled to the edge
    assert "和平维修一班" in page.text_content("#crew-rows") and "锦绣家园3号楼附近" in page.text_content("#crew-rows")
    time.sleep(0.8)
    screenshot(page, "dashboard17-1920")


def test_the_wall_mode_fills_1920x1080_rotates_and_updates_live(app, live_app, city, open_page, fast_stream,
                                                                monkeypatch):
    monkeypatch.setitem(app.config, "DASHBOARD_WALL_ROTATE_SECONDS", 2)
    page = open_page(WALL)
    browser_login(page, live_app.url, city["leader"].username, next_path="/dashboard/?mode=wall")
    page.wait_for_selector("#live.on")
    assert page.url.endswith("/dashboard/wall")
    fits = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    assert fits[0] <= 1920 and fits[1] <= 1080              # one screen, nothing to scroll
    size = page.evaluate("parseFloat(getComputedStyle(document.querySelector('#wall-today')).fontSize)")
    assert size >= 90                                       # readable from 5 m
    assert page.text_content("#wall-unassigned") == "1"
    # every KPI card holds a figure (no empty slot)
    assert page.evaluate("[...document.querySelectorAll('.wall-kpis .kpi .value')].every(v => v.textContent.trim() !== '')")
    first = page.text_content(".rotor .slide.on")
    page.wait_for_function("document.querySelector('.rotor .slide.on') && "
                           f"document.querySelector('.rotor .slide.on').textContent !== {json.dumps(first)}",
                           timeout=8000)
    page.evaluate("window.__notReloaded = true")
    before = page.text_content("#wall-queue")
    _post_call(app, live_app.url, "wall-1", "ringing")
    page.wait_for_function(f"document.querySelector('#wall-queue').textContent === '{int(before) + 1}'", timeout=15000)
    assert page.evaluate("window.__notReloaded") is True
    for index, name in enumerate(("types", "hourly", "quality", "crews", "money")):
        page.evaluate(f"window.DASHBOARD.show({index})")
        time.sleep(0.9)
        screenshot(page, f"wall17-{index + 1}-{name}")


def test_the_reports_page_draws_its_charts(app, live_app, city, open_page, db):
    crew_ticket = db.session.query(Ticket).filter(Ticket.crew_id.isnot(None)).first()
    crew_ticket.state, crew_ticket.rating, crew_ticket.rated_at = TicketState.CLOSED, 5, crew_ticket.created_at
    db.session.commit()
    page = open_page(WALL)
    browser_login(page, live_app.url, city["agent"].username)
    page.goto(f"{live_app.url}/console/reports")
    for chart in ("chart-period", "chart-types", "chart-stars", "chart-crews", "chart-agents"):
        page.wait_for_function(f"document.querySelector('#{chart} canvas') !== null")
    assert "和平维修一班" in page.text_content("#report-crews")
    assert "客服小周" in page.text_content("#report-agents")
    time.sleep(0.8)
    screenshot(page, "reports17-1920")
    phone = open_page(PHONE)
    browser_login(phone, live_app.url, city["agent"].username)
    phone.goto(f"{live_app.url}/console/reports")
    phone.wait_for_function("document.querySelector('#chart-agents canvas') !== null")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(phone, "reports17-375")
