"""The sandbox page's "打开公众号页面": the backend's pages as that sandbox user, through WeChat's
web authorisation (the backend's sign-in entry → /connect/oauth2/authorize?sandbox_openid=)."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests

from tests.factories import bind_wechat_user


@pytest.fixture()
def public_live(app, live_app, monkeypatch):
    """Our pages are where WeChat sends people back to (PUBLIC_BASE_URL = the live server)."""
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", live_app.url)
    return live_app


def _resident(db, wechat, make_household, name):
    household = make_household(owner_name=name)
    person, _ = bind_wechat_user(db, wechat, household=household, nickname=name, mini_program=False)
    db.session.commit()
    return person, household


def test_open_pages_signs_the_browser_in_as_that_user(db, wechat, public_live, make_household):
    liu, liu_home = _resident(db, wechat, make_household, "刘秀英")
    zhang, zhang_home = _resident(db, wechat, make_household, "张伟")
    browser = requests.Session()

    page = browser.get(f"{wechat.base}/users/{liu['openid']}/web", timeout=30)
    hops = [urlsplit(r.headers["Location"]) for r in page.history]
    assert [h.path for h in hops] == ["/h5/login", "/sandbox/connect/oauth2/authorize", "/h5/oauth", "/me"]
    assert f"sandbox_openid={liu['openid']}" in hops[1].query
    assert page.status_code == 200 and urlsplit(page.url).path == "/me"
    assert liu_home.account_no in page.text and zhang_home.account_no not in page.text

    # The same browser, now as another person: the earlier sign-in is replaced, not reused.
    other = browser.get(f"{wechat.base}/users/{zhang['openid']}/web", params={"path": "/t"}, timeout=30)
    assert other.status_code == 200 and urlsplit(other.url).path == "/t"
    mine = browser.get(f"{public_live.url}/me", timeout=30)
    assert zhang_home.account_no in mine.text and liu_home.account_no not in mine.text


def test_open_pages_refuses_an_unknown_user_and_a_foreign_address(db, wechat, public_live):
    person = wechat.create_user()
    unknown = requests.get(f"{wechat.base}/users/nobody/web", allow_redirects=False, timeout=10)
    assert unknown.status_code == 404
    for path in ("https://evil.example.com/", "//evil.example.com/me"):
        res = requests.get(f"{wechat.base}/users/{person['openid']}/web", params={"path": path},
                           allow_redirects=False, timeout=10)
        assert res.status_code == 400
