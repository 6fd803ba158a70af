"""Every ``next`` taken from a request leads to a page of this site, never elsewhere."""
from __future__ import annotations

from urllib.parse import parse_qs, quote, urlparse

import pytest
import requests

from app.models import Role
from app.web.redirects import safe_next
from tests.factories import bind_wechat_user
from tests.web.conftest import PASSWORD, csrf_from

# Known open-redirect bypasses (OWASP Unvalidated Redirects cheat sheet, PayloadsAllTheThings'
# Open Redirect list): other hosts behind slashes, backslashes, encodings, control characters
# browsers drop, schemes, Unicode look-alikes and dot segments.
BYPASSES = [
    "//evil.example", "//evil.example/phish", "///evil.example", "////evil.example/%2f..",
    "/\\evil.example", "\\\\evil.example", "\\/evil.example", "/\\/evil.example", "//\\/\\evil.example/",
    "/%09/evil.example/phish", "/\t/evil.example", "/\n/evil.example", "/\r\n//evil.example",
    "/%0d/evil.example", "/%0a/evil.example", "/%00/evil.example", "/\x00/evil.example",
    "/%2F/evil.example", "/%2f%2fevil.example", "%2F%2Fevil.example", "/%5Cevil.example",
    "/%5C%5Cevil.example", "/%255C%255Cevil.example", "/%25252F%25252Fevil.example",
    "/%2525252F%2525252Fevil.example",
    "https://evil.example", "http://evil.example/", "https:evil.example", "http:/evil.example",
    "HTTPS://evil.example", "javascript:alert(1)", "JaVaScRiPt:alert(1)", "/javascript:alert(1)//%0a",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", "evil.example", "evil.example/x",
    "@evil.example", " //evil.example", "\t//evil.example", "//evil%00.example",
    "/／evil.example", "／／evil.example", "/%EF%BC%8Fevil.example", "/%EF%BC%8F%EF%BC%8Fevil.example",
    "/..//evil.example", "/console/../..//evil.example", "/console/%2e%2e/%2e%2e//evil.example", "/./evil",
    "/%ff/evil", "/\x7f/evil", "/\x85/evil", "", None, 42, ["/console"], "/" + "a" * 3000,
]
LOCAL = [
    "/console/tickets", "/console/tickets?state=open&page=2", "/dashboard/", "/console/tickets/5#timeline",
    "/console/tickets?q=%E5%BC%A0%E4%BC%9F", "/console/tickets?q=张伟", "/console/tickets?q=100%25",
    "/console/tickets?q=a b", "/dashboard/list/open?", "/console/x:y", "/evil.example",
]


@pytest.mark.parametrize("value", BYPASSES)
def test_a_next_that_could_leave_the_site_is_refused(value):
    assert safe_next(value) is None


@pytest.mark.parametrize("value", LOCAL)
def test_a_path_on_this_site_is_kept_as_given(value):
    assert safe_next(value) == value


def _sign_in(client, username, next_value):
    page = client.get("/console/login", query_string={"next": next_value}).get_data(as_text=True)
    return client.post("/console/login", data={"username": username, "password": PASSWORD,
                                               "csrf_token": csrf_from(page), "next": next_value})


@pytest.mark.parametrize("next_value", ["//evil.example/x", "/%09/evil.example/phish", "/\\evil.example",
                                        "https://evil.example", "/\t/evil.example"])
def test_console_sign_in_never_sends_the_browser_elsewhere(app, staff, next_value):
    agent = staff(Role.AGENT)
    client = app.test_client()
    res = _sign_in(client, agent.username, next_value)
    assert res.status_code == 302
    assert urlparse(res.location).netloc in ("", "localhost") and res.location.endswith("/console/tickets")
    assert "evil" not in client.get("/console/login", query_string={"next": next_value}).get_data(as_text=True)


def test_console_sign_in_follows_a_local_next(staff, client):
    agent = staff(Role.AGENT)
    res = _sign_in(client, agent.username, "/console/tickets?state=closed")
    assert res.status_code == 302 and res.location == "/console/tickets?state=closed"


def test_a_page_that_needs_sign_in_comes_back_after_it(staff, client):
    agent = staff(Role.AGENT)
    bounce = client.get("/console/tickets?state=closed&q=%E5%BC%A0")
    next_value = parse_qs(urlparse(bounce.location).query)["next"][0]
    res = _sign_in(client, agent.username, next_value)
    assert res.location == "/console/tickets?state=closed&q=%E5%BC%A0"


def _dashboard_sign_in(client, openid: str, next_value: str):
    start = client.get("/dashboard/login?sandbox_openid=" + openid + "&next=" + quote(next_value, safe=""))
    consent = requests.get(start.location.split("#")[0], allow_redirects=False, timeout=10)
    query = parse_qs(urlparse(consent.headers["Location"]).query)
    return client.get(f"/dashboard/oauth?code={query['code'][0]}&state={query['state'][0]}")


def test_dashboard_wechat_sign_in_never_sends_the_browser_elsewhere(app, db, staff, wechat):
    leader = staff(Role.LEADER)
    person, _ = bind_wechat_user(db, wechat, staff=leader, nickname="李总", mini_program=False)
    db.session.commit()
    for next_value in ("//evil.example", "/%09/evil.example/phish", "/\\evil.example"):
        res = _dashboard_sign_in(app.test_client(), person["openid"], next_value)
        assert res.status_code == 302 and res.location == "/dashboard/", next_value
    res = _dashboard_sign_in(app.test_client(), person["openid"], "/dashboard/list/open")
    assert res.status_code == 302 and res.location == "/dashboard/list/open"
