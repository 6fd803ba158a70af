"""Fixtures of the mobile API tests.

``pay_wechat``: a WeChat sandbox of our own on a real port that also checks our WeChat Pay
request signatures (it is given the merchant key we generate here), with the app's WeChat
and WeChat Pay settings pointed at it and the pay notify URL at the live app. ``api``: a
small HTTP client of the live server. ``world``: households, bills, a crew and staff.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
import requests
from PIL import Image

from app.models import Bill, Role, WechatUser
from app.services.billing import issue_bills
from tests.factories import bind_wechat_user
from tests.live import LiveServer, SandboxDriver
from wechat.sandbox_link import sandbox_config
from wechat.sandbox import create_sandbox_app
from wechat.sandbox.crypto import generate_rsa_key, private_key_pem


@pytest.fixture(scope="session")
def merchant_key_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("merchant") / "apiclient_key.pem"
    path.write_text(private_key_pem(generate_rsa_key()))
    return str(path)


@pytest.fixture(scope="session")
def _pay_sandbox(app, live_app, tmp_path_factory, merchant_key_path):
    folder = tmp_path_factory.mktemp("pay-sandbox")
    cfg = app.config
    sandbox_app = create_sandbox_app(sandbox_config(
        cfg, store_path=str(folder / "sandbox.db"), callback_url=f"{live_app.url}/wechat/callback",
        pay_public_key_path=str(folder / "wechatpay_public_key.pem"), merchant_key_path=merchant_key_path,
        events_async=False, refund_auto_settle=None,   # refunds settle when a test says so
    ))
    server = LiveServer(sandbox_app)
    server.sandbox = sandbox_app.extensions["wechat_sandbox"]
    server.public_key_path = str(folder / "wechatpay_public_key.pem")
    yield server
    server.stop()


class PayDriver(SandboxDriver):
    def login_code(self, openid: str) -> str:
        return self._post(f"/users/{openid}/login-code")["code"]

    def pay(self, out_trade_no: str, **kw) -> dict:
        return self._post(f"/pay/{out_trade_no}/pay", json=kw)

    def notify(self, out_trade_no: str) -> dict:
        return requests.post(f"{self.base}/pay/{out_trade_no}/notify", timeout=30).json()

    def order(self, out_trade_no: str) -> dict:
        return requests.get(f"{self.base}/pay/{out_trade_no}", timeout=10).json()

    def settle_refund(self, out_refund_no: str, status: str = "SUCCESS") -> dict:
        """WeChat Pay finishes the refund and posts REFUND.<status> to the refund notify URL."""
        return self._post(f"/pay/refunds/{out_refund_no}/settle", json={"status": status})

    def refund_notify(self, out_refund_no: str) -> dict:
        return requests.post(f"{self.base}/pay/refunds/{out_refund_no}/notify", timeout=30).json()

    def refund(self, out_refund_no: str) -> dict:
        return requests.get(f"{self.base}/pay/refunds/{out_refund_no}", timeout=10).json()

    def advance_clock(self, seconds: float) -> float:
        """Move WeChat's clock forward; returns its new time (unix seconds)."""
        return self._post("/clock", json={"advance": seconds})["now"]


@pytest.fixture()
def pay_wechat(app, db, live_app, _pay_sandbox, merchant_key_path, monkeypatch):
    base = f"{_pay_sandbox.url}/sandbox"
    monkeypatch.setitem(app.config, "WECHAT_API_BASE", base + "/")
    monkeypatch.setitem(app.config, "WECHATPAY_API_BASE", base)
    monkeypatch.setitem(app.config, "WECHATPAY_PRIVATE_KEY_PATH", merchant_key_path)
    monkeypatch.setitem(app.config, "WECHATPAY_PUBLIC_KEY_PATH", _pay_sandbox.public_key_path)
    monkeypatch.setitem(app.config, "WECHATPAY_PUBLIC_KEY_ID", None)
    monkeypatch.setitem(app.config, "WECHATPAY_NOTIFY_URL", live_app.url + "/pay/notify")
    app.extensions.pop("wechat_clients", None)
    app.extensions.pop("wechatpay", None)
    driver = PayDriver(base)
    driver.reset()
    driver.sandbox = _pay_sandbox.sandbox
    yield driver
    app.extensions.pop("wechat_clients", None)
    app.extensions.pop("wechatpay", None)


class Api:
    """requests against the live server, with a bearer token."""

    def __init__(self, base: str, token: str | None = None):
        self.base, self.token = base, token

    def _headers(self, headers=None):
        out = dict(headers or {})
        if self.token:
            out["Authorization"] = f"Bearer {self.token}"
        return out

    def get(self, path, **kw):
        return requests.get(self.base + path, headers=self._headers(kw.pop("headers", None)), timeout=30, **kw)

    def post(self, path, **kw):
        return requests.post(self.base + path, headers=self._headers(kw.pop("headers", None)), timeout=30, **kw)

    def delete(self, path, **kw):
        return requests.delete(self.base + path, headers=self._headers(kw.pop("headers", None)), timeout=30, **kw)


@pytest.fixture()
def api(live_app):
    return lambda token=None: Api(live_app.url, token)


def jpeg_with_exif(color=(200, 30, 30), size=(64, 48)) -> bytes:
    """A small JPEG carrying EXIF with a GPS entry (what phones write)."""
    image = Image.new("RGB", size, color)
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"          # Make
    exif[0x8825] = {1: "N", 2: (39.0, 54.0, 0.0)}   # GPSInfo
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


@dataclass
class World:
    community: object
    station: object
    crew: object
    other_crew: object
    member: object       # crew member of ``crew`` (routing target)
    lead: object
    other_member: object
    agent: object
    household: object
    season: object
    bill: Bill


@pytest.fixture()
def world(db, make_area, make_household, make_crew, make_staff, make_season) -> World:
    _, community, station = make_area()
    _, other_community, other_station = make_area()
    crew = make_crew(stations=[station])
    other_crew = make_crew(stations=[other_station])
    member = make_staff(role=Role.CREW_MEMBER, crew=crew, name="李师傅")
    lead = make_staff(role=Role.CREW_LEAD, crew=crew, name="王班长")
    other_member = make_staff(role=Role.CREW_MEMBER, crew=other_crew, name="赵师傅")
    agent = make_staff(role=Role.AGENT, name="客服小刘")
    household = make_household(community=community, station=station, owner_name="张伟", owner_phone="13800001234")
    today = date.today()
    season = make_season(code="2026-2027", due_on=today - timedelta(days=10), starts_on=today - timedelta(days=20),
                         ends_on=today + timedelta(days=100))
    issue_bills(season, [household])
    db.session.flush()
    bill = db.session.query(Bill).filter_by(household_id=household.id).one()
    return World(community, station, crew, other_crew, member, lead, other_member, agent, household, season, bill)


def bind_staff_wechat(db, driver, staff) -> tuple[dict, WechatUser]:
    """A sandbox person who is ``staff``, following the official account."""
    return bind_wechat_user(db, driver, staff=staff)
