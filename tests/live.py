"""The backend served on a real port and the WeChat sandbox pointed at it, both in threads.

Tests act as WeChat users through the sandbox's control endpoints; the sandbox signs (and
in safe mode encrypts) their messages and posts them to our real callback over HTTP, and our
clients call the sandbox's API over HTTP. Nothing of our code is patched.
"""
from __future__ import annotations

import threading

import pytest
import requests
from werkzeug.serving import make_server

from wechat.sandbox import create_sandbox_app
from wechat.sandbox_link import sandbox_config


class LiveServer:
    def __init__(self, wsgi_app):
        self.server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()


class SandboxDriver:
    """Plays the people on the other side of WeChat."""

    def __init__(self, base: str):
        self.base = base  # http://host:port/sandbox

    def _post(self, path, **kw):
        res = requests.post(self.base + path, timeout=30, **kw)
        assert res.status_code < 300, res.text
        return res.json() if res.content else None

    def create_user(self, **kw) -> dict:
        return self._post("/users", json=kw)

    def say(self, openid: str, text: str) -> str | None:
        """The user sends a text; returns the text of our passive reply (None if none)."""
        result = self._post(f"/users/{openid}/messages", json={"type": "text", "content": text})
        assert result["ok"], result
        return (result.get("reply") or {}).get("Content")

    def send(self, openid: str, **message) -> dict:
        result = self._post(f"/users/{openid}/messages", json=message)
        assert result["ok"], result
        return result

    def inbox(self, openid: str) -> list[dict]:
        return requests.get(f"{self.base}/users/{openid}/inbox", timeout=10).json()

    def faults(self, **kw):
        return self._post("/faults", json=kw)

    def reset(self):
        requests.post(self.base + "/reset", timeout=10)
        requests.delete(self.base + "/faults", timeout=10)


@pytest.fixture(scope="session")
def live_app(app):
    server = LiveServer(app)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _sandbox_server(app, live_app, tmp_path_factory):
    folder = tmp_path_factory.mktemp("wechat-sandbox")
    cfg = app.config
    sandbox = create_sandbox_app(sandbox_config(
        cfg, store_path=str(folder / "sandbox.db"), callback_url=f"{live_app.url}/wechat/callback",
        pay_public_key_path=str(folder / "wechatpay_public_key.pem"), events_async=False,
    ))
    server = LiveServer(sandbox)
    yield server
    server.stop()


@pytest.fixture()
def wechat(app, db, _sandbox_server, monkeypatch):
    """The sandbox, reset, with our WeChat clients pointed at it for this test."""
    base = f"{_sandbox_server.url}/sandbox"
    monkeypatch.setitem(app.config, "WECHAT_API_BASE", base + "/")
    monkeypatch.setitem(app.config, "WECHATPAY_API_BASE", base)
    app.extensions.pop("wechat_clients", None)
    driver = SandboxDriver(base)
    driver.reset()
    yield driver
    app.extensions.pop("wechat_clients", None)
