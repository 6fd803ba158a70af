"""Fixtures: the sandbox on a real port, a fake backend it calls, and real WeChat clients.

The sandbox runs in a thread (werkzeug make_server); so does `backend`, a tiny server that
plays the backend's callback URL and pay notify URL, records what arrives and answers with
whatever the test sets. The sandbox's state is reset before each test.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest
import requests
from werkzeug.wrappers import Request, Response

from tests.live import LiveServer
from wechat.sandbox import create_sandbox_app
from wechat.sandbox.crypto import generate_rsa_key, private_key_pem

AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"  # wechatpy's test vector key
TOKEN = "sandbox-test-token"
OA_APPID, OA_SECRET = "wx_test_oa", "test-oa-secret"
MP_APPID, MP_SECRET = "wx_test_mp", "test-mp-secret"
MCHID = "1900009999"
APIV3_KEY = "0123456789abcdef0123456789abcdef"
MERCHANT_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
# The account's templates, as the sandbox's setting (what sandbox_link passes from the backend).
TEMPLATES = [
    {"template_id": "TPL", "app": "oa", "title": "服务通知", "content": "事项:{{thing1.DATA}}\n"},
    {"template_id": "TPL_BILL", "app": "oa", "title": "缴费提醒", "content": "户号:{{character_string1.DATA}}\n"
     "欠费金额:{{amount2.DATA}}\n缴费截止:{{time3.DATA}}\n"},
    {"template_id": "T_OA", "app": "oa", "type": "subscribe", "title": "停热通知", "content": "通知:{{thing1.DATA}}\n"},
    {"template_id": "TID", "app": "mp", "title": "维修进度", "content": "事项:{{thing1.DATA}}\n"},
    {"template_id": "TID_REPAIR", "app": "mp", "title": "报修进度", "content": "报修事项:{{thing1.DATA}}\n"},
]


@dataclass
class Received:
    path: str
    args: dict
    headers: dict
    body: bytes


@dataclass
class FakeBackend:
    """Answers `success` to callbacks and 204 to pay notifications unless told otherwise."""

    received: list = field(default_factory=list)
    answer: object = None  # callable(Received) -> (status, body) or None for the default

    def __call__(self, environ, start_response):
        request = Request(environ)
        item = Received(request.path, dict(request.args), dict(request.headers), request.get_data())
        self.received.append(item)
        if self.answer is not None:
            status, body = self.answer(item)
        else:
            status, body = (204, b"") if request.path == "/pay/notify" else (200, b"success")
        return Response(body, status=status)(environ, start_response)

    def wait_for(self, predicate, timeout: float = 5.0) -> Received:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for item in list(self.received):
                if predicate(item):
                    return item
            time.sleep(0.02)
        raise AssertionError("the backend never received the expected request")


@dataclass
class SandboxHandle:
    base: str
    sandbox: object  # wechat.sandbox.core.Sandbox
    merchant_key_pem: str

    def post(self, path: str, **kwargs):
        return requests.post(self.base + path, timeout=10, **kwargs)

    def get(self, path: str, **kwargs):
        return requests.get(self.base + path, timeout=10, **kwargs)

    def create_user(self, **kwargs) -> dict:
        response = self.post("/users", json=kwargs)
        assert response.status_code == 201, response.text
        return response.json()

    def faults(self, **kwargs) -> dict:
        response = self.post("/faults", json=kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def inbox(self, openid: str, both: bool = False) -> list:
        return self.get(f"/users/{openid}/inbox", params={"all": "1"} if both else {}).json()


@pytest.fixture(scope="session")
def backend():
    fake = FakeBackend()
    server = LiveServer(fake)
    fake.url = server.url
    yield fake
    server.stop()


@pytest.fixture(scope="session")
def merchant_key(tmp_path_factory):
    pem = private_key_pem(generate_rsa_key())
    path = tmp_path_factory.mktemp("merchant") / "apiclient_key.pem"
    path.write_text(pem)
    return str(path), pem


def _start(tmp_path_factory, backend, merchant_key, **overrides):
    folder = tmp_path_factory.mktemp("sandbox")
    config = {
        "store_path": str(folder / "sandbox.db"),
        "callback_url": backend.url + "/wechat/callback",
        "token": TOKEN,
        "oa_appid": OA_APPID, "oa_secret": OA_SECRET, "mp_appid": MP_APPID, "mp_secret": MP_SECRET,
        "mchid": MCHID, "apiv3_key": APIV3_KEY,
        "pay_public_key_path": str(folder / "wechatpay_public_key.pem"),
        "merchant_key_path": merchant_key[0],
        "merchant_cert_serial": MERCHANT_SERIAL,
        "events_async": True,
        "callback_timeout": 2.0,
        "oauth_domain": "heat.example.com,h5.example",  # the tests' web pages
        "templates": TEMPLATES,
        **overrides,
    }
    app = create_sandbox_app(config)
    server = LiveServer(app)
    return server, SandboxHandle(server.url + "/sandbox", app.extensions["wechat_sandbox"], merchant_key[1])


@pytest.fixture(scope="session")
def _plain_server(tmp_path_factory, backend, merchant_key):
    server, handle = _start(tmp_path_factory, backend, merchant_key)
    yield handle
    server.stop()


@pytest.fixture(scope="session")
def _safe_server(tmp_path_factory, backend, merchant_key):
    server, handle = _start(tmp_path_factory, backend, merchant_key, aes_key=AES_KEY)
    yield handle
    server.stop()


def _fresh(handle, backend):
    assert handle.post("/reset").status_code == 200
    backend.received.clear()
    backend.answer = None
    return handle


@pytest.fixture
def sandbox(_plain_server, backend):
    """The sandbox in plain mode, state reset."""
    yield _fresh(_plain_server, backend)
    backend.answer = None


@pytest.fixture
def safe_sandbox(_safe_server, backend):
    """The sandbox in safe mode (EncodingAESKey set), state reset."""
    yield _fresh(_safe_server, backend)
    backend.answer = None


def wechat_client(base: str, appid: str, secret: str):
    """A real wechatpy client pointed at the sandbox (WECHAT.md §9)."""
    from wechatpy import WeChatClient

    class SandboxClient(WeChatClient):
        API_BASE_URL = base + "/cgi-bin/"

        def fetch_access_token(self):
            return self._fetch_access_token(
                url=base + "/cgi-bin/token",
                params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
            )

    client = SandboxClient(appid, secret)
    client.wxa.API_BASE_URL = base + "/"
    return client


@pytest.fixture
def oa_client(sandbox):
    return wechat_client(sandbox.base, OA_APPID, OA_SECRET)


@pytest.fixture
def mp_client(sandbox):
    return wechat_client(sandbox.base, MP_APPID, MP_SECRET)


@pytest.fixture
def wxpay(sandbox, backend):
    """A real wechatpayv3 client in public-key mode, gateway pointed at the sandbox."""
    from wechatpayv3 import WeChatPay, WeChatPayType

    keys = sandbox.get("/pay/public-key").json()
    pay = WeChatPay(
        wechatpay_type=WeChatPayType.MINIPROG, mchid=MCHID, private_key=sandbox.merchant_key_pem,
        cert_serial_no=MERCHANT_SERIAL, appid=MP_APPID, apiv3_key=APIV3_KEY,
        notify_url=backend.url + "/pay/notify", public_key=keys["public_key_pem"],
        public_key_id=keys["public_key_id"],
    )
    pay._core._gate_way = sandbox.base
    return pay
