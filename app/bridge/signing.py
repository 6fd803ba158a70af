"""The bridge's request signature (DESIGN §4.3 — a contract).

``X-Bridge-Timestamp``: unix seconds; ``X-Bridge-Signature``: lowercase hex of
HMAC-SHA256(BRIDGE_SECRET, timestamp + "." + signed part). The signed part is the raw body;
a request without a body (a GET look-up) signs its method and target instead —
``GET /bridge/v1/callers/13912345678``, the path with its query string exactly as sent on
the wire, percent-encoding included — so one signature cannot be replayed for another
phone number. Used both ways: to check what the phone system sends us and to sign what we
post back to it.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote, urlsplit

TIMESTAMP_HEADER = "X-Bridge-Timestamp"
SIGNATURE_HEADER = "X-Bridge-Signature"
MAX_SKEW_S = 300
BODILESS_METHODS = ("GET", "HEAD")


def signed_part(method: str, target: str, body: bytes) -> bytes:
    """What follows ``timestamp + "."``: the body, or ``METHOD target`` for a bodiless request."""
    method = (method or "POST").upper()
    if method in BODILESS_METHODS:
        return f"{method} {target}".encode("utf-8")
    return body


def signature(secret: str, timestamp: str, message: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + message, hashlib.sha256).hexdigest()


def sign_headers(secret: str, body: bytes = b"", timestamp: int | None = None, *,
                 method: str = "POST", target: str = "") -> dict[str, str]:
    """Headers to send a request signed now (or at ``timestamp``): ``body`` for a POST;
    for a GET, ``target`` — the path and query string as they will go on the wire."""
    ts = str(int(time.time()) if timestamp is None else int(timestamp))
    return {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: signature(secret, ts, signed_part(method, target, body))}


def check(secret: str, timestamp: str | None, sig: str | None, body: bytes, now: float | None = None, *,
          method: str = "POST", target: str = "") -> str | None:
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
    expected = signature(secret, timestamp, signed_part(method, target, body))
    if not hmac.compare_digest(expected, sig.strip().lower()):
        return "wrong signature"
    return None


def wire_target(environ: dict) -> str:
    """The request target as the client sent it: path and query, percent-encoding untouched.

    gunicorn and werkzeug keep it in ``RAW_URI`` / ``REQUEST_URI``; without them it is rebuilt
    from the decoded path (which loses only how unreserved characters were escaped)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not raw:
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        raw = quote(path.encode("latin-1"), safe="/:@!$&'()*+,;=-._~%") + (f"?{query}" if query else "")
    if not raw.startswith("/"):                      # absolute-form (GET http://host/path)
        parts = urlsplit(raw)
        raw = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:                                             # WSGI strings carry bytes as latin-1
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw
