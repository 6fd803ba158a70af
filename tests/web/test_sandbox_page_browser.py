"""The sandbox page (/sandbox/) in headless Chromium with a demo-city-sized crowd.

The page must stay usable with hundreds of simulated users: it opens only a few phones, finds
a person by search, keeps the open phones in the address and polls only those. The sandbox
runs on its own port with its callback pointed at the real app (``wechat`` fixture).
"""
from __future__ import annotations

import re
import time

import requests

from tests.web.conftest import DESKTOP, screenshot

STAFF = ["leader1", "leader2", "admin", "agent1", "agent2"] + [
    f"crew{c}_{m}" for c in range(1, 6) for m in ("lead", "m1", "m2", "m3")]


def _register_crowd(wechat, residents: int = 275) -> dict:
    """~300 users through the bulk registration, as `make run` registers the demo city."""
    nicknames = STAFF + [f"住户{i:03d}" for i in range(residents)]
    res = requests.post(f"{wechat.base}/users", json={"users": [{"nickname": n} for n in nicknames]}, timeout=30)
    assert res.status_code == 200 and res.json()["created"] == len(nicknames), res.text
    users = requests.get(f"{wechat.base}/users", timeout=30).json()
    assert len(users) == len(nicknames)
    return {u["nickname"]: u for u in users}


def _open_ids(page) -> list[str]:
    found = re.search(r"open=([^&]*)", page.evaluate("location.hash"))
    return [i for i in (found.group(1) if found else "").split(",") if i]


def _polled_openids(page, seconds: float = 2.6) -> set[str]:
    """The openids whose inbox the page asks for during `seconds` (one poll round or more)."""
    polled: set[str] = set()

    def seen(request):
        found = re.search(r"/users/([^/?]+)/inbox", request.url)
        if found:
            polled.add(found.group(1))

    page.on("request", seen)
    time.sleep(seconds)
    page.remove_listener("request", seen)
    return polled


def test_with_300_users_the_page_opens_a_few_phones_and_search_finds_a_crew_member_to_chat_as(
        live_app, wechat, open_page):
    users = _register_crowd(wechat)
    member = users["crew1_m1"]

    page = open_page(DESKTOP)
    page.goto(f"{wechat.base}/")
    # Nothing in the address: the 4 most recently active (none has talked yet: the first 4).
    page.wait_for_function("document.querySelectorAll('.phone').length === 4")
    assert _open_ids(page) == [users[n]["openid"] for n in STAFF[:4]]
    page.wait_for_selector("#chips [data-open]")
    assert page.locator("#chips [data-open]").count() == len(STAFF)  # staff as quick chips, no residents

    page.fill("#search", "crew1_m1")
    page.wait_for_function("document.querySelector('#results-title').textContent === '搜索结果'")
    row = page.wait_for_selector(f"#results li[data-openid='{member['openid']}']")
    assert "crew1_m1" in row.text_content() and "已关注" in row.text_content()
    assert page.locator("#results li[data-openid]").count() == 1
    row.query_selector("button").click()

    phone = page.wait_for_selector(f"#phone-{member['openid']}")
    assert _open_ids(page)[0] == member["openid"]
    phone.query_selector("input").fill("你好")
    phone.query_selector("button[type=submit]").click()
    page.wait_for_function(
        "id => [...document.querySelectorAll('#phone-' + id + ' .row.in .bubble')]"
        ".some(b => b.textContent === '你好')", arg=member["openid"])
    screenshot(page, "sandbox-page-crowd")

    # The crowd stays closed: five phones on the page, and only they are polled.
    open_now = _open_ids(page)
    assert page.locator(".phone").count() == len(open_now) == 5
    assert _polled_openids(page) <= set(open_now)

    # The one who talked is now the most recently active: first on a fresh visit.
    fresh = open_page(DESKTOP)
    fresh.goto(f"{wechat.base}/")
    fresh.wait_for_function("document.querySelectorAll('.phone').length === 4")
    assert _open_ids(fresh)[0] == member["openid"]


def test_a_link_with_open_opens_that_persons_phone_and_a_reload_keeps_it(live_app, wechat, open_page):
    users = _register_crowd(wechat, residents=60)
    resident = users["住户042"]

    page = open_page(DESKTOP)
    page.goto(f"{wechat.base}/#open={resident['openid']}")
    page.wait_for_selector(f"#phone-{resident['openid']}")
    assert "住户042" in page.text_content(f"#phone-{resident['openid']} .title")
    time.sleep(0.5)
    assert page.locator(".phone").count() == 1

    page.reload()
    page.wait_for_selector(f"#phone-{resident['openid']}")
    assert page.locator(".phone").count() == 1

    # A chip opens a second phone; the close button shuts the first; the address follows.
    leader = users["leader1"]
    page.click(f"#chips [data-open='{leader['openid']}']")
    page.wait_for_selector(f"#phone-{leader['openid']}")
    assert _open_ids(page) == [leader["openid"], resident["openid"]]
    page.click(f"#phone-{resident['openid']} .close")
    page.wait_for_selector(f"#phone-{resident['openid']}", state="detached")
    assert _open_ids(page) == [leader["openid"]]

    # "新建模拟用户" creates someone and opens their phone.
    page.click("#new-user")
    page.wait_for_function("document.querySelectorAll('.phone').length === 2")
    created = _open_ids(page)[0]
    assert created not in {u["openid"] for u in users.values()}
    assert requests.get(f"{wechat.base}/users/{created}", timeout=10).status_code == 200

    # Closing every phone leaves an empty state in Chinese, not the crowd.
    for openid in _open_ids(page):
        page.click(f"#phone-{openid} .close")
    page.wait_for_function("document.querySelectorAll('.phone').length === 0")
    assert "没有打开的手机" in page.text_content("#empty")

    # An openid the sandbox does not know is dropped with a word, not a broken phone.
    page.goto(f"{wechat.base}/#open=oUnknownOpenid0000000000000,{leader['openid']}")
    page.wait_for_selector(f"#phone-{leader['openid']}")
    page.wait_for_function("document.querySelector('#empty').textContent.includes('没有 openid 为')")
    assert _open_ids(page) == [leader["openid"]]
