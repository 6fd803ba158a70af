"""Bridge fixtures: a phone system that signs its requests, and a tiny receiver for status posts."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from app.bridge.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, check, sign_headers
from app.models import Role


class PhoneSystem:
    """Signs and sends like the call center does: through the test client or over HTTP."""

    def __init__(self, app, client, base_url: str | None = None):
        self.app = app
        self.client = client
        self.base_url = base_url
        self.secret = app.config["BRIDGE_SECRET"]

    def body(self, payload) -> bytes:
        return payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()

    def headers(self, body: bytes, *, timestamp: int | None = None, secret: str | None = None,
                method: str = "POST", target: str = "") -> dict:
        return {"Content-Type": "application/json",
                **sign_headers(secret or self.secret, body, timestamp, method=method, target=target)}

    def post(self, path: str, payload, **kw):
        body = self.body(payload)
        return self.client.post(f"/bridge/v1{path}", data=body, headers=self.headers(body, **kw))

    def get(self, path: str, **kw):
        """A signed GET: the signature covers "GET " + the path and query as sent."""
        target = f"/bridge/v1{path}"
        return self.client.get(target, headers=self.headers(b"", method="GET", target=target, **kw))

    def http_post(self, path: str, payload, **kw) -> requests.Response:
        body = self.body(payload)
        return requests.post(f"{self.base_url}/bridge/v1{path}", data=body, headers=self.headers(body, **kw), timeout=30)


@pytest.fixture()
def phone(app, client):
    return PhoneSystem(app, client)


@pytest.fixture()
def live_phone(app, db, live_app):
    return PhoneSystem(app, app.test_client(), live_app.url)


class Receiver:
    """The phone system's status endpoint: answers scripted statuses, records what it got."""

    def __init__(self, secret: str):
        self.secret = secret
        self.script: list[int] = []      # statuses to answer first; then 200
        self.received: list[dict] = []   # every request, with its answer
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    status = receiver.script.pop(0) if receiver.script else 200
                    receiver.received.append({
                        "status": status, "body": json.loads(raw),
                        "signature_ok": check(receiver.secret, self.headers.get(TIMESTAMP_HEADER),
                                              self.headers.get(SIGNATURE_HEADER), raw) is None,
                    })
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}' if status < 300 else b'{"error": "busy"}')

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/status"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def accepted(self) -> list[dict]:
        return [r["body"] for r in self.received if r["status"] < 300]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver(app, monkeypatch):
    r = Receiver(app.config["BRIDGE_SECRET"])
    monkeypatch.setitem(app.config, "BRIDGE_OUTBOUND_URL", r.url)
    yield r
    r.stop()


@pytest.fixture()
def crew_setup(db, make_area, make_household, make_crew, make_staff):
    """A community served by a crew with a lead and one member, and a household in it."""
    _, community, station = make_area()
    crew = make_crew(stations=[station])
    lead = make_staff(Role.CREW_LEAD, crew=crew, name="李班长")
    member = make_staff(Role.CREW_MEMBER, crew=crew, name="王师傅")
    household = make_household(community=community, station=station, owner_phone="13812345678",
                               account_no="A0001001")
    return {"community": community, "station": station, "crew": crew, "lead": lead, "member": member,
            "household": household}
