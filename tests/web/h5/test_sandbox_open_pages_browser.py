"""In Chromium: the sandbox page (the demo's phones) opens the official account's pages as the
person whose phone it is — the phone's 打开公众号页面, and the links in their chat (账单's 点击缴费)."""
from __future__ import annotations

from app.services import billing
from tests.web.conftest import screenshot
from tests.web.h5_support import resident_in_arrears, wechat_person


def test_a_phone_opens_the_pages_as_its_person(app, db, live_app, wechat, monkeypatch, open_page, make_area,
                                               make_household, make_season):
    """On the real calendar (the callback checks WeChat's timestamps against the real time)."""
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", live_app.url)
    h5 = wechat
    liu = resident_in_arrears(db, h5, make_area, make_household, make_season, today=billing.local_today())
    other_home = make_household(owner_name="张伟")
    other_person, _ = wechat_person(db, h5, nickname="张伟", household=other_home)
    assert "点击缴费" in h5.say(liu.person["openid"], "账单")

    page = open_page()
    # Signed in as somebody else first: the phone's link must not show their pages.
    page.goto(f"{h5.base}/users/{other_person['openid']}/web")
    assert other_home.account_no in page.text_content("main")

    page.goto(f"{h5.base}/#open={liu.person['openid']}")
    phone = page.locator(f"#phone-{liu.person['openid']}")
    with page.context.expect_page() as opened:
        phone.locator("[data-testid=open-pages]").click()
    mine = opened.value
    mine.wait_for_load_state()
    assert mine.url.split("#")[0] == f"{live_app.url}/me"
    assert liu.household.account_no in mine.text_content("main")
    assert other_home.account_no not in mine.text_content("main")

    link = phone.locator(".bubble a", has_text="点击缴费")
    link.wait_for()
    screenshot(page, "sandbox-phone-links")
    with page.context.expect_page() as paying:
        link.click()
    pay = paying.value
    pay.wait_for_load_state()
    assert pay.url.split("#")[0] == f"{live_app.url}/pay"
    assert liu.household.account_no in pay.text_content("main")
