"""Console page 会话 (/console/chats): HTTP, and in a real browser at desktop and phone width."""
from datetime import datetime, timezone

import pytest
import requests
from sqlalchemy import select

from app import clock as app_clock
from app.models import Conversation, FaqEntry, Role, Ticket
from app.services import knowledge
from tests.factories import bind_wechat_user
from tests.web.conftest import PHONE, browser_login, csrf_from, screenshot

IN_HOURS = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)  # 10:00 Beijing


@pytest.fixture()
def in_hours():
    app_clock.travel_to(IN_HOURS)
    yield
    app_clock.back_to_real_time()


@pytest.fixture()
def waiting(db, redis, wechat, make_household, in_hours):
    """刘秀英 asked a question, then 人工: a waiting conversation."""
    home = make_household(owner_name="刘秀英")
    person, user = bind_wechat_user(db, wechat, household=home, nickname="刘秀英", mini_program=False)
    db.session.add(FaqEntry(category="其他", question="暖气片可以自己喷漆吗？", answer="可以喷涂耐高温漆，请在停暖时进行。",
                            keywords="喷漆 刷漆"))
    db.session.commit()
    # A new FAQ version for the index cache: the tables were emptied and Redis flushed after the
    # test before, so the version counter starts again where a cached index may still sit.
    redis.set(knowledge.VERSION_KEY, f"chat-test-{person['openid']}")
    wechat.say(person["openid"], "卧室暖气片不热")
    wechat.say(person["openid"], "人工")
    return person["openid"]


def _conv(db):
    db.session.expire_all()
    return db.session.scalar(select(Conversation))


def test_agent_takes_answers_and_turns_the_chat_into_a_ticket_over_http(db, console, staff, waiting, wechat, worker):
    agent = staff(Role.AGENT, username="agent9", name="客服九")
    staff(Role.AGENT, username="agent8", name="客服八")
    assert console.login("agent9").status_code == 302
    page = console.get("/console/chats").get_data(as_text=True)
    assert "刘秀英" in page and "排队中" in page
    conv = _conv(db)
    assert console.post(f"/console/chats/{conv.id}/claim").status_code == 302
    res = console.post(f"/console/chats/{conv.id}/reply", data={"text": "您好，请问是哪个房间？"})
    assert res.status_code == 302
    worker()
    inbox = [m.get("content") for m in wechat.inbox(waiting) if m.get("kind") == "custom"]
    assert "您好，请问是哪个房间？" in inbox
    live = console.get(f"/console/chats/live.json?id={conv.id}").get_json()
    assert live["window"]["open"] and "您好，请问是哪个房间？" in live["thread"]
    assert console.get(f"/console/chats/live.json?id={conv.id}&stamp={live['stamp']}").get_json()["same"]
    faq = console.get("/console/chats/faq.json?q=暖气片喷漆").get_json()
    assert faq["items"][0]["answer"] == "可以喷涂耐高温漆，请在停暖时进行。"
    assert console.post(f"/console/chats/{conv.id}/ticket", data={"type": "repair"}).status_code == 302
    ticket = db.session.scalar(select(Ticket))
    assert "卧室暖气片不热" in ticket.description
    assert console.post(f"/console/chats/{conv.id}/close").status_code == 302
    assert _conv(db).status == "closed" and _conv(db).agent_id == agent.id


def test_empty_reply_is_refused_and_changes_nothing(db, console, staff, waiting):
    staff(Role.AGENT, username="agent9", name="客服九")
    console.login("agent9")
    conv = _conv(db)
    console.post(f"/console/chats/{conv.id}/claim")
    res = console.post(f"/console/chats/{conv.id}/reply", data={"text": "  "}, follow_redirects=True)
    assert "请输入回复内容" in res.get_data(as_text=True)
    assert [m.direction for m in _conv(db).messages].count("out") == 1  # only the queue answer


def test_leader_may_look_but_not_reply(db, console, staff, waiting):
    staff(Role.LEADER, username="leader9", name="领导")
    console.login("leader9")
    conv = _conv(db)
    assert console.get(f"/console/chats?id={conv.id}").status_code == 200
    assert console.post(f"/console/chats/{conv.id}/claim").status_code == 403


@pytest.mark.parametrize("viewport,name", [({"width": 1280, "height": 900}, "chats-1280"), (PHONE, "chats-375")])
def test_chat_page_in_a_browser(db, staff, waiting, wechat, live_app, open_page, worker, viewport, name):
    staff(Role.AGENT, username="agent9", name="客服九")
    page = open_page(viewport)
    browser_login(page, live_app.url, "agent9", next_path="/console/chats")
    conv = _conv(db)
    page.goto(f"{live_app.url}/console/chats?id={conv.id}")
    assert page.locator("#chat-queue").inner_text().count("刘秀英") == 1
    page.click("#chat-claim")
    page.wait_for_load_state()
    page.fill("#chat-text", "您好，我是客服九")
    page.click("#chat-send")
    page.wait_for_load_state()
    worker()
    page.wait_for_selector("#chat-thread .msg.out >> text=您好，我是客服九")
    # The resident answers: the page shows it by itself (live poll), no reload.
    wechat.say(waiting, "是卧室")
    page.wait_for_selector("#chat-thread .msg.in >> text=是卧室", timeout=15000)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, name)
