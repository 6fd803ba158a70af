"""Body limits at every door, over real HTTP (app/http_limits.py).

Bodies are sent chunked (a generator: no Content-Length) or with a declared length but read
lazily, to the live server. Each test counts how much of the body the client managed to
hand over: the server answers 413 and stops reading, so the body is never used up — what
was sent stays within the limit plus what the sockets' buffers hold (a few MB on loopback).
"""
from __future__ import annotations

import hashlib
import io
import time

import pytest
import requests
from PIL import Image
from sqlalchemy import func, select

from app.bridge.signing import sign_headers
from app.models import InboundMessage, Ticket
from app.services import uploads
from mobile_api.auth import issue_token

MiB = 1024 * 1024
SOCKET_SLACK = 16 * MiB       # more than loopback socket buffers ever hold
CALLBACK_TOKEN = "demo-callback-token"


class Feed:
    """A chunked request body: ``head``, then ``size`` bytes of filler, then ``tail``.
    ``sent`` counts what the client took from it; ``done`` tells whether it ran out."""

    def __init__(self, size: int, head: bytes = b"", tail: bytes = b"", chunk: int = 64 * 1024):
        self.size, self.head, self.tail, self.chunk = size, head, tail, chunk
        self.sent, self.done = 0, False

    def __iter__(self):
        if self.head:
            self.sent += len(self.head)
            yield self.head
        block = b"0" * self.chunk
        while self.sent < self.size:
            self.sent += len(block)
            yield block
        if self.tail:
            yield self.tail
        self.done = True


class LazyBody(io.RawIOBase):
    """A body with a declared length whose bytes are made as they are read (counted)."""

    def __init__(self, head: bytes, size: int, tail: bytes):
        self.head, self.size, self.tail, self.read_bytes = head, size, tail, 0
        self._length = len(head) + size + len(tail)

    def __len__(self):
        return self._length

    def readable(self):
        return True

    def tell(self):          # how requests learns the length still to send (Content-Length)
        return self.read_bytes

    def readinto(self, buffer):
        n = min(len(buffer), self._length - self.read_bytes)
        if n <= 0:
            return 0
        out = bytearray()
        pos = self.read_bytes
        while len(out) < n:
            if pos < len(self.head):
                piece = self.head[pos:pos + n - len(out)]
            elif pos < len(self.head) + self.size:
                piece = b"0" * min(n - len(out), len(self.head) + self.size - pos)
            else:
                start = pos - len(self.head) - self.size
                piece = self.tail[start:start + n - len(out)]
            out += piece
            pos += len(piece)
        buffer[:n] = out
        self.read_bytes += n
        return n


def _multipart_file(name: str, filename: str, boundary: str, fields: dict | None = None) -> tuple[bytes, bytes]:
    """The bytes before and after the content of one file part (with some fields before it)."""
    head = b""
    for key, value in (fields or {}).items():
        head += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{key}\"\r\n\r\n{value}\r\n").encode()
    head += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n"
             "Content-Type: image/jpeg\r\n\r\n").encode()
    return head, f"\r\n--{boundary}--\r\n".encode()


@pytest.fixture()
def resident(db, make_household, make_wechat_user):
    household = make_household(owner_name="张伟")
    user = make_wechat_user(household=household)
    db.session.commit()
    return {"token": issue_token(user), "household": household}


def _assert_stopped(feed_or_body, limit: int):
    sent = feed_or_body.sent if isinstance(feed_or_body, Feed) else feed_or_body.read_bytes
    assert sent <= limit + SOCKET_SLACK, f"the server read on: the client sent {sent} bytes"
    if isinstance(feed_or_body, Feed):
        assert not feed_or_body.done


def test_a_chunked_pay_notification_past_64_kb_is_413_in_wechat_pays_format(db, live_app):
    feed = Feed(64 * MiB, head=b'{"id": "')
    answer = requests.post(live_app.url + "/pay/notify", data=feed, timeout=60,
                           headers={"Content-Type": "application/json"})
    assert answer.status_code == 413
    assert answer.json() == {"code": "FAIL", "message": "通知内容过大"}
    _assert_stopped(feed, 64 * 1024)


def test_a_chunked_bridge_event_past_64_kb_is_413_in_our_json_format(db, live_app):
    feed = Feed(64 * MiB, head=b'{"external_id": "')
    answer = requests.post(live_app.url + "/bridge/v1/tickets", data=feed, timeout=60,
                           headers={"Content-Type": "application/json", **sign_headers("x", b"")})
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "payload_too_large"
    assert "64KB" in answer.json()["error"]["message"]
    _assert_stopped(feed, 64 * 1024)


def test_a_chunked_callback_past_one_megabyte_is_413_and_stores_nothing(db, live_app):
    timestamp, nonce = str(int(time.time())), "12345"
    signature = hashlib.sha1("".join(sorted([CALLBACK_TOKEN, timestamp, nonce])).encode()).hexdigest()
    feed = Feed(64 * MiB, head=b"<xml><Content><![CDATA[")
    answer = requests.post(live_app.url + "/wechat/callback", data=feed, timeout=60,
                           params={"signature": signature, "timestamp": timestamp, "nonce": nonce})
    assert answer.status_code == 413 and answer.text == "body too large"
    _assert_stopped(feed, MiB)
    assert db.session.scalar(select(func.count()).select_from(InboundMessage)) == 0


def test_a_chunked_json_request_of_the_mini_program_past_64_kb_is_413(db, live_app, resident):
    feed = Feed(64 * MiB, head=b'{"account_no": "')
    answer = requests.post(live_app.url + "/api/v1/households/bind", data=feed, timeout=60,
                           headers={"Content-Type": "application/json", "Authorization": f"Bearer {resident['token']}"})
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "payload_too_large"
    _assert_stopped(feed, 64 * 1024)


def test_a_chunked_photo_past_10_mb_is_413_when_its_11th_mb_arrives(db, live_app, resident):
    boundary = "limitsboundary"
    head, tail = _multipart_file("photos", "big.jpg", boundary, {
        "household_id": resident["household"].id, "category": "leak", "description": "漏水"})
    feed = Feed(200 * MiB, head=head, tail=tail)
    answer = requests.post(live_app.url + "/api/v1/repairs", data=feed, timeout=60, headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}", "Authorization": f"Bearer {resident['token']}"})
    assert answer.status_code == 413
    assert answer.json()["error"]["message"] == "单个文件不能超过10MB"
    _assert_stopped(feed, uploads.MAX_BYTES)
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_a_50_mb_photo_with_its_length_declared_is_413_and_never_read_whole(db, live_app, resident):
    boundary = "limitsboundary"
    head, tail = _multipart_file("photos", "big.jpg", boundary, {
        "household_id": resident["household"].id, "category": "leak", "description": "漏水"})
    body = LazyBody(head, 50 * MiB, tail)
    answer = requests.post(live_app.url + "/api/v1/repairs", data=body, timeout=60, headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}", "Authorization": f"Bearer {resident['token']}"})
    assert answer.status_code == 413 and answer.json()["error"]["message"] == "单个文件不能超过10MB"
    # How much the client pushed into socket buffers before the server's shutdown landed
    # depends on the machine's load; that the 50 MB were never all taken does not.
    assert body.read_bytes < 50 * MiB, f"the whole body was read ({body.read_bytes} bytes)"


def test_a_body_declared_over_the_limit_is_refused_by_its_length_and_left_unread(db, live_app):
    body = LazyBody(b"{", 10 * MiB, b"}")
    answer = requests.post(live_app.url + "/pay/notify", data=body, timeout=60,
                           headers={"Content-Type": "application/json"})
    assert answer.status_code == 413 and answer.json()["code"] == "FAIL"
    _assert_stopped(body, 0)


def test_a_chunked_repair_within_the_limits_is_read_and_accepted(db, live_app, resident):
    photo = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(photo, "JPEG")
    boundary = "limitsboundary"
    head, tail = _multipart_file("photos", "p.jpg", boundary, {
        "household_id": resident["household"].id, "category": "leak", "description": "漏水"})
    answer = requests.post(live_app.url + "/api/v1/repairs", data=iter([head, photo.getvalue(), tail]), timeout=60,
                           headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                                    "Authorization": f"Bearer {resident['token']}"})
    assert answer.status_code == 201, answer.text
    assert len(answer.json()["photos"]) == 1


def test_a_chunked_console_form_past_one_megabyte_is_413(db, live_app):
    feed = Feed(64 * MiB, head=b"username=")
    answer = requests.post(live_app.url + "/console/login", data=feed, timeout=60,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 413
    assert answer.headers["Content-Type"].startswith("text/html") and "请求内容过大" in answer.text  # a page
    _assert_stopped(feed, MiB)
