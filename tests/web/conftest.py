"""Web fixtures: staff with passwords, a signed-in test client, and headless Chromium.

The browser is Debian's Chromium driven by Playwright (never a downloaded browser); the
pages are served by the ``live_app`` fixture on a real port. Screenshots go under
``artifacts/screenshots/`` (git-ignored).
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT
from app.models import Role

PASSWORD = "demo1234"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", PROJECT_ROOT / "artifacts")) / "screenshots"
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1366, "height": 900}


@pytest.fixture()
def staff(db, make_staff):
    """make(role) → a committed staff member whose password is PASSWORD."""

    def make(role=Role.AGENT, **kw):
        member = make_staff(role=role, password=PASSWORD, **kw)
        db.session.commit()
        return member

    return make


def csrf_from(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "page has no CSRF token"
    return found.group(1)


class Console:
    """A test client signed in to the console, posting forms with the session's CSRF token."""

    def __init__(self, client):
        self.client = client
        self.token = None

    def login(self, username: str, password: str = PASSWORD):
        page = self.client.get("/console/login").get_data(as_text=True)
        res = self.client.post("/console/login", data={
            "username": username, "password": password, "csrf_token": csrf_from(page)})
        if res.status_code == 302:
            self.token = csrf_from(self.client.get("/console/faq").get_data(as_text=True))
        return res

    def post(self, url: str, data: dict | None = None, *, csrf: bool = True, **kw):
        data = dict(data or {})
        if csrf:
            data["csrf_token"] = self.token
        return self.client.post(url, data=data, **kw)

    def get(self, url: str, **kw):
        return self.client.get(url, **kw)


@pytest.fixture()
def console(client):
    return Console(client)


# --- the browser --------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (.ci/run installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    chromium = pw.chromium.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"])
    yield chromium
    chromium.close()
    pw.stop()


@pytest.fixture()
def open_page(browser):
    """open_page(viewport=PHONE|DESKTOP) → a fresh page (own cookies); closed after the test."""
    contexts = []

    def make(viewport=DESKTOP):
        context = browser.new_context(viewport=viewport, locale="zh-CN", timezone_id="Asia/Shanghai")
        context.set_default_timeout(15000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def browser_login(page, base_url: str, username: str, password: str = PASSWORD, next_path: str = "") -> None:
    page.goto(f"{base_url}/console/login" + (f"?next={next_path}" if next_path else ""))
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()
