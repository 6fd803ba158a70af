"""The bridge's request signature (DESIGN §4.3 — a contract, never change it).

``X-Bridge-Timestamp``: unix seconds; ``X-Bridge-Signature``: lowercase hex of
HMAC-SHA256(BRIDGE_SECRET, timestamp + "." + raw body). Used both ways: to check what the
phone system sends us and to sign what we post back to it.
"""
from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Bridge-Timestamp"
SIGNATURE_HEADER = "X-Bridge-Signature"
MAX_SKEW_S = 300


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def sign_headers(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers to send ``body`` signed now (or at ``timestamp``)."""
    ts = str(int(time.time()) if timestamp is None else int(timestamp))
    return {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: signature(secret, ts, body)}


def check(secret: str, timestamp: str | None, sig: str | None, body: bytes, now: float | None = None) -> str | None:
    """None when the request is authentic; otherwise the reason it is refused (for logs)."""
    if not timestamp or not sig:
        return "missing signature headers"
    try:
        ts = int(timestamp)
    except ValueError:
        return "timestamp is not an integer"
    now = time.time() if now is None else now
    if abs(now - ts) > MAX_SKEW_S:
        return "timestamp outside the allowed window"
    if not hmac.compare_digest(signature(secret, timestamp, body), sig.strip().lower()):
        return "wrong signature"
    return None
