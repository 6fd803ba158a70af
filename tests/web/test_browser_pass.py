"""What a browser pass over a fresh demo found (issue 17), fixed and kept fixed, in Chromium:
the dashboard's 在线会话 tile opens its list (it was a 404), a console page that fails shows a
page in the layout (it was a JSON body), and the customer page's title is just its title (it
held the live-chat table)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from app.models import Announcement, AnnouncementStatus, Audience, Conversation, ConversationMessage, Role, utcnow
from tests.web.conftest import PHONE, browser_login, screenshot

WALL = {"width": 1920, "height": 1080}


@pytest.mark.parametrize("viewport,tag", [(PHONE, "375"), (WALL, "1920")])
def test_the_live_chat_tile_opens_the_open_conversations(app, db, live_app, staff, open_page, make_household,
                                                         make_wechat_user, viewport, tag):
    leader = staff(Role.LEADER, name="王涛")
    agent = staff(Role.AGENT, name="李客服")
    home = make_household(account_no="10100006")
    now = utcnow()
    waiting = Conversation(wechat_user_id=make_wechat_user().id, household_id=home.id, status="waiting",
                           opened_at=now - timedelta(minutes=6), last_activity_at=now - timedelta(minutes=6))
    waiting.messages.append(ConversationMessage(direction="in", text="人工", status="received",
                                                created_at=now - timedelta(minutes=6)))
    talking = Conversation(wechat_user_id=make_wechat_user().id, status="active", agent_id=agent.id,
                           opened_at=now - timedelta(minutes=20), claimed_at=now - timedelta(minutes=18),
                           last_activity_at=now - timedelta(minutes=2))
    db.session.add_all([waiting, talking])
    db.session.commit()
    page = open_page(viewport)
    browser_login(page, live_app.url, leader.username, next_path="/dashboard/")
    page.goto(f"{live_app.url}/dashboard/")
    page.click("[data-testid=tile-chat]")
    page.wait_for_selector("#drill-list")
    assert page.url.endswith("/dashboard/list/conversations")
    rows = page.locator("#drill-list tbody tr")
    assert rows.count() == 2
    text = page.text_content("#drill-list")
    assert "排队中" in text and "10100006" in text and "会话中" in text and "李客服" in text
    assert "2分0秒" in text                        # the one with an agent waited from 20 to 18 minutes ago
    screenshot(page, f"dashboard-conversations-{tag}")


def test_a_console_page_that_fails_shows_a_page_in_the_layout(app, db, live_app, staff, open_page, make_area):
    """Bad stored data (an area filter in an old shape) made the announcement page fail with a
    JSON body; a failure now answers a Chinese page with the menu, and the list still opens."""
    _, community, _ = make_area()
    ann = Announcement(title="停热通知", body="5号楼临时停热", category="outage", audience=Audience.AREA,
                       audience_filter={"community_ids": [community.id], "buildings": ["5"]},
                       status=AnnouncementStatus.DONE, created_at=utcnow(), started_at=utcnow(), finished_at=utcnow())
    db.session.add(ann)
    db.session.commit()
    agent = staff(Role.AGENT)
    page = open_page(WALL)
    browser_login(page, live_app.url, agent.username)
    response = page.goto(f"{live_app.url}/console/announcements/{ann.id}")
    assert response.status == 500
    assert page.query_selector("nav.nav") is not None
    body = page.text_content("body")
    assert "服务器内部错误" in body and "internal_error" not in body and "{" not in page.text_content("main, body")[:40]
    screenshot(page, "console-failure-page")
    assert page.goto(f"{live_app.url}/console/announcements").status == 200


def test_the_customer_page_title_is_only_its_title(app, db, live_app, staff, open_page, make_household):
    home = make_household(account_no="10100006", owner_name="刘秀英")
    db.session.commit()
    agent = staff(Role.AGENT)
    page = open_page(WALL)
    browser_login(page, live_app.url, agent.username)
    page.goto(f"{live_app.url}/console/customers/{home.id}")
    assert page.title() == "客户资料 10100006 · 客服工作台"
    assert page.locator("#conversations").count() == 1 and "没有在线会话" in page.text_content("#conversations")
