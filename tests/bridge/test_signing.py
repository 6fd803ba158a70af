"""DESIGN §4.3: a GET is signed over its method, path and query as sent, so a signature made
for one phone number opens that number only; a POST is signed over its body."""
from __future__ import annotations

import hashlib
import hmac
import time

import requests

from app.bridge.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, check, sign_headers

SECRET = "a-shared-bridge-secret-of-32-chars!"


def test_the_get_signature_is_the_one_the_design_spells_out():
    expected = hmac.new(SECRET.encode(), b"1733112000.GET /bridge/v1/callers/13912345678", hashlib.sha256).hexdigest()
    headers = sign_headers(SECRET, timestamp=1733112000, method="GET", target="/bridge/v1/callers/13912345678")
    assert headers == {TIMESTAMP_HEADER: "1733112000", SIGNATURE_HEADER: expected}
    assert check(SECRET, "1733112000", expected, b"", now=1733112000, method="GET",
                 target="/bridge/v1/callers/13912345678") is None
    assert check(SECRET, "1733112000", expected, b"", now=1733112000, method="GET",
                 target="/bridge/v1/callers/13912345679") == "wrong signature"


def test_a_post_is_still_signed_over_its_body():
    body = b'{"external_id": "CC-1"}'
    expected = hmac.new(SECRET.encode(), b"1733112000." + body, hashlib.sha256).hexdigest()
    assert sign_headers(SECRET, body, 1733112000)[SIGNATURE_HEADER] == expected
    assert check(SECRET, "1733112000", expected, body, now=1733112000) is None


def _signed_for(app, target: str, method: str = "GET") -> dict:
    return sign_headers(app.config["BRIDGE_SECRET"], method=method, target=target)


def test_a_signature_for_one_phone_does_not_open_another(app, db, client, crew_setup):
    db.session.commit()
    headers = _signed_for(app, "/bridge/v1/callers/13812345678")
    mine = client.get("/bridge/v1/callers/13812345678", headers=headers)
    assert mine.status_code == 200 and mine.get_json()["known"] is True
    other = client.get("/bridge/v1/callers/13900000000", headers=headers)
    assert other.status_code == 401 and other.get_json()["error"]["code"] == "bad_signature"


def test_the_query_string_is_part_of_the_signature(app, db, client):
    headers = _signed_for(app, "/bridge/v1/callers/13812345678?recent=5")
    assert client.get("/bridge/v1/callers/13812345678?recent=5", headers=headers).status_code == 200
    assert client.get("/bridge/v1/callers/13812345678", headers=headers).status_code == 401
    assert client.get("/bridge/v1/callers/13812345678?recent=50", headers=headers).status_code == 401


def test_the_old_signature_over_an_empty_body_no_longer_opens_a_look_up(app, db, client):
    old_style = sign_headers(app.config["BRIDGE_SECRET"], b"")
    assert client.get("/bridge/v1/callers/13812345678", headers=old_style).status_code == 401


def test_a_post_signature_cannot_be_used_for_a_get(app, db, client):
    headers = _signed_for(app, "/bridge/v1/callers/13812345678", method="POST")
    assert client.get("/bridge/v1/callers/13812345678", headers=headers).status_code == 401


def test_over_http_the_path_is_checked_as_sent_percent_encoding_included(app, db, live_app, crew_setup):
    db.session.commit()
    encoded = "/bridge/v1/callers/%2B8613812345678"
    ok = requests.get(live_app.url + encoded, headers=_signed_for(app, encoded), timeout=10)
    assert ok.status_code == 200 and ok.json()["phone"] == "+8613812345678"
    # The same number written differently on the wire is another request: sign what you send.
    plain = requests.get(live_app.url + "/bridge/v1/callers/+8613812345678", headers=_signed_for(app, encoded), timeout=10)
    assert plain.status_code == 401


def test_a_signed_get_still_expires_after_300_seconds(app, db, client):
    target = "/bridge/v1/callers/13812345678"
    stale = sign_headers(app.config["BRIDGE_SECRET"], timestamp=int(time.time()) - 301, method="GET", target=target)
    assert client.get(target, headers=stale).status_code == 401
