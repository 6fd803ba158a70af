"""Shared by the official-account page tests (tests/web/h5_*): a WeChat sandbox that knows our
merchant key (so its WeixinJSBridge stand-in checks paySign), the app served on a real port
with PUBLIC_BASE_URL pointing at it, one calendar for both sides, a resident in arrears, and
following a link as a WeChat user through the sandbox's web authorisation.

The app's clock travels to ``H5_NOW`` (a fixed instant, so late fees and deadlines do not depend
on the day the tests run) and the sandbox's clock is moved forward to the same instant, so an
order's ``time_expire`` is two hours ahead for WeChat Pay too.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select

from app import clock as app_clock
from app.config import PROJECT_ROOT
from app.models import Bill, WechatUser
from app.services import billing
from bench.pages.measure import WECHAT_PHONE, first_load, sign_in_browser  # noqa: F401 (for the tests)
from tests.factories import bind_wechat_user
from tests.live import LiveServer, SandboxDriver
from wechat.sandbox import create_sandbox_app
from wechat.sandbox.crypto import generate_rsa_key, private_key_pem
from wechat.sandbox_link import sandbox_config

H5_NOW = datetime(2031, 1, 10, 2, 0, tzinfo=timezone.utc)     # 10:00 in Beijing, mid-season


@pytest.fixture(scope="session")
def h5_merchant_key(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("h5-merchant") / "apiclient_key.pem"
    path.write_text(private_key_pem(generate_rsa_key()))
    return str(path)


@pytest.fixture(scope="session")
def _h5_sandbox(app, live_app, tmp_path_factory, h5_merchant_key):
    folder = tmp_path_factory.mktemp("h5-sandbox")
    sandbox_app = create_sandbox_app(sandbox_config(
        app.config, store_path=str(folder / "sandbox.db"), callback_url=f"{live_app.url}/wechat/callback",
        pay_public_key_path=str(folder / "wechatpay_public_key.pem"), merchant_key_path=h5_merchant_key,
        events_async=False, oauth_domain="127.0.0.1"))
    server = LiveServer(sandbox_app)
    server.public_key_path = str(folder / "wechatpay_public_key.pem")
    yield server
    server.stop()


class H5Driver(SandboxDriver):
    def order(self, out_trade_no: str) -> dict:
        return requests.get(f"{self.base}/pay/{out_trade_no}", timeout=10).json()["order"]

    def bridge(self, action: str, params: dict) -> dict:
        """What the WeixinJSBridge stand-in asks the sandbox (``check`` or ``pay``)."""
        res = requests.post(f"{self.base}/jsbridge/{action}", data=json.dumps(params),
                            headers={"Content-Type": "text/plain;charset=UTF-8"}, timeout=30)
        assert res.status_code == 200, res.text
        return res.json()


@pytest.fixture()
def h5(app, db, live_app, _h5_sandbox, h5_merchant_key, monkeypatch) -> H5Driver:
    """The sandbox (reset) as WeChat and WeChat Pay for the live app, both clocks at H5_NOW."""
    base = f"{_h5_sandbox.url}/sandbox"
    for key, value in {
        "WECHAT_API_BASE": base + "/", "WECHATPAY_API_BASE": base, "PUBLIC_BASE_URL": live_app.url,
        "WECHATPAY_PRIVATE_KEY_PATH": h5_merchant_key, "WECHATPAY_PUBLIC_KEY_PATH": _h5_sandbox.public_key_path,
        "WECHATPAY_PUBLIC_KEY_ID": None, "WECHATPAY_NOTIFY_URL": live_app.url + "/pay/notify",
    }.items():
        monkeypatch.setitem(app.config, key, value)
    app.extensions.pop("wechat_clients", None)
    app.extensions.pop("wechatpay", None)
    driver = H5Driver(base)
    driver.reset()
    app_clock.travel_to(H5_NOW)
    ahead = H5_NOW.timestamp() - driver._post("/clock", json={})["now"]
    assert ahead > 0, "H5_NOW must lie in the future of the machine's clock"
    driver._post("/clock", json={"advance": ahead})
    yield driver
    app_clock.back_to_real_time()
    app.extensions.pop("wechat_clients", None)
    app.extensions.pop("wechatpay", None)


@dataclass
class Resident:
    person: dict          # the sandbox user
    user: WechatUser
    household: object
    bills: list           # newest season first


def resident_in_arrears(db, driver, make_area, make_household, make_season, *, nickname="刘秀英",
                        owner_name="刘秀英", bind=True, today: date | None = None) -> Resident:
    """A resident like the demo's 刘秀英: two seasons unpaid, the current one 40 days late
    (``today``: H5_NOW's date, the calendar of the ``h5`` fixture)."""
    _, community, station = make_area(district="和平区")
    household = make_household(community=community, station=station, owner_name=owner_name, area_m2="80.00")
    today = today or H5_NOW.date()
    older = make_season(code=f"{today.year - 2}-{today.year - 1}", due_on=today - timedelta(days=406),
                        starts_on=today - timedelta(days=420), ends_on=today - timedelta(days=300))
    current = make_season(code=f"{today.year - 1}-{today.year}", due_on=today - timedelta(days=40),
                          starts_on=today - timedelta(days=56), ends_on=today + timedelta(days=64))
    billing.issue_bills(older, [household])
    billing.issue_bills(current, [household])
    person, user = bind_wechat_user(db, driver, nickname=nickname, household=household if bind else None)
    db.session.commit()
    bills = [db.session.scalar(select(Bill).where(Bill.household_id == household.id, Bill.season_id == s.id))
             for s in (current, older)]
    return Resident(person, user, household, bills)


def wechat_person(db, driver, *, nickname: str, staff=None, household=None) -> tuple[dict, WechatUser]:
    """A sandbox user following the account, and their WechatUser (bound to ``staff`` and to
    ``household`` if given); committed."""
    person, user = bind_wechat_user(db, driver, nickname=nickname, staff=staff, household=household)
    db.session.commit()
    return person, user


# WeChat's own browser says so in its User-Agent (the dashboard's sign-in goes straight to
# WeChat's authorisation for it, a password form elsewhere).
WECHAT_BROWSER_UA = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Mobile Safari/537.36 MicroMessenger/8.0.50"


def open_as(session: requests.Session, url: str, openid: str, **kw) -> requests.Response:
    """GET ``url`` in a WeChat browser of ``openid``: without a sign-in the page sends us through
    WeChat's web authorisation; the sandbox's consent screen is answered as that user
    (``sandbox_openid``), and the browser comes back to the page."""
    kw["headers"] = {"User-Agent": WECHAT_BROWSER_UA, **(kw.get("headers") or {})}
    res = session.get(url, timeout=30, **kw)
    if "/connect/oauth2/authorize" in res.url:
        assert res.status_code == 200, res.text      # the sandbox's consent screen
        res = session.get(res.url.split("#")[0] + "&sandbox_openid=" + openid, timeout=30, **kw)
    return res


def is_page(res: requests.Response) -> bool:
    return res.headers.get("Content-Type", "").startswith("text/html")


def same_site(url: str, base: str) -> bool:
    return urlsplit(url).netloc == urlsplit(base).netloc


# --- the browser -----------------------------------------------------------------------------------

PAGE_FIGURES = Path(os.environ.get("ARTIFACTS_DIR", PROJECT_ROOT / "artifacts")) / "h5_pages.json"


def record_figures(name: str, figures: list[dict]) -> None:
    """Keep the measured first loads under artifacts/ (printed by bench/pages/run.py too)."""
    PAGE_FIGURES.parent.mkdir(parents=True, exist_ok=True)
    known = json.loads(PAGE_FIGURES.read_text()) if PAGE_FIGURES.exists() else {}
    known[name] = figures
    PAGE_FIGURES.write_text(json.dumps(known, ensure_ascii=False, indent=2))
    for f in figures:
        print(f"{name}: {f['url']} {f['bytes']} bytes in {f['requests']} requests, load {f['load_ms']} ms")


def fits_a_phone(page) -> None:
    """No sideways scrolling at 375 px, body text ≥ 16 px, every visible button or link ≥ 44 px tall."""
    assert page.evaluate("document.documentElement.scrollWidth") <= WECHAT_PHONE["width"]
    assert page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= 16
    small = page.evaluate("""() => [...document.querySelectorAll('main button, main a.button, nav a')]
        .filter(e => e.offsetParent !== null && e.getBoundingClientRect().height < 44)
        .map(e => e.textContent.trim())""")
    assert small == [], f"tap targets under 44 px: {small}"
