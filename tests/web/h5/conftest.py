"""Official-account pages: people signed in through the sandbox's real OAuth.

``h5.resident(nickname)`` makes a WeChat user in the sandbox and returns a ``Phone`` — a test
client of its own (its own cookie) that signs in the way WeChat's browser does: our page →
/h5/login → the sandbox's /connect/oauth2/authorize (over HTTP, consenting as that user) →
/h5/oauth with the code → back to the page.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import requests

from app.extensions import db as _db
from app.models import WechatUser


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "page has no CSRF token"
    return found.group(1)


class Phone:
    """One person's WeChat browser: a test client signed in as a sandbox user."""

    def __init__(self, app, openid: str, nickname: str):
        self.client = app.test_client()
        self.openid, self.nickname = openid, nickname

    def consent(self, start) -> str:
        """Follow a redirect to WeChat's authorisation; returns our callback's path+query."""
        assert start.status_code == 302, start.get_data(as_text=True)
        authorize = start.location
        if "sandbox_openid" not in authorize:
            authorize = authorize.replace("#wechat_redirect", "") + "&sandbox_openid=" + self.openid
        res = requests.get(authorize.split("#")[0], allow_redirects=False, timeout=10)
        assert res.status_code == 302, res.text
        back = urlsplit(res.headers["Location"])
        return f"{back.path}?{back.query}"

    def sign_in(self, next_path: str = "/me"):
        """Sign in through the sandbox's OAuth; returns the answer of the callback."""
        start = self.client.get(f"/h5/login?next={next_path}&sandbox_openid={self.openid}")
        return self.client.get(self.consent(start))

    def open(self, path: str):
        """Open ``path`` as WeChat's browser does, signing in first when the page asks."""
        res = self.client.get(path)
        if res.status_code == 302 and res.location.startswith("/h5/login"):
            start = self.client.get(res.location)
            back = self.client.get(self.consent(start))
            assert back.status_code == 302, back.get_data(as_text=True)
            res = self.client.get(back.location)
        return res

    def post(self, path: str, data: dict | None = None, *, form_page: str | None = None, **kw):
        """POST a form with the CSRF token of ``form_page`` (default: ``path``)."""
        page = self.open(form_page or path)
        data = {"csrf_token": csrf_of(page.get_data(as_text=True)), **(data or {})}
        return self.client.post(path, data=data, **kw)

    @property
    def user(self) -> WechatUser:
        return _db.session.query(WechatUser).filter_by(oa_openid=self.openid).one()


class H5:
    def __init__(self, app, wechat):
        self.app, self.wechat = app, wechat

    def resident(self, nickname: str = "王芳") -> Phone:
        person = self.wechat.create_user(nickname=nickname)
        return Phone(self.app, person["openid"], nickname)


@pytest.fixture()
def h5(app, db, wechat):
    return H5(app, wechat)
