"""Status back to the phone system: one signed POST per ticket change, in order per ticket.

The ticket service records a "bridge.status" outbox row for every change the phone system
should know, with ``ordering_key`` "ticket:<id>". This handler posts it to
``BRIDGE_OUTBOUND_URL`` signed like the inbound requests (DESIGN §4.3). Order per ticket:
under a Redis lock on the ordering key, every earlier row of the same ticket that is not
done yet (pending, enqueued, parked or failed) is posted first, oldest first, and marked
done; if one of them fails, this row fails too and RQ retries it with backoff. So a row is
never posted before the rows before it, and a failed row is retried by every later change
of its ticket as well as by RQ and the sweeper. After a few quick attempts a failing row
is parked with a growing delay (up to an hour) rather than given up: never lost.

The receiver sees at-least-once delivery: the same ``delivery_id`` may come twice after a
crash between its 2xx and our bookkeeping; ``sequence`` rises per ticket.
"""
from __future__ import annotations

import json
import logging
from datetime import timedelta

import requests
from flask import current_app
from sqlalchemy import select, update

from app.bridge.signing import sign_headers
from app.extensions import db
from app.models import OutboxMessage, OutboxStatus, Ticket, TicketEvent, TicketState, utcnow
from app.queue import Deferred, get_redis

log = logging.getLogger(__name__)

LOCK_TTL_S = 120
LOCK_WAIT_S = 10
NOT_CONFIGURED_RETRY = timedelta(minutes=10)
BUSY_RETRY = timedelta(seconds=5)
# The first attempts fail the job (RQ retries with backoff, the sweeper re-enqueues); after
# that the row is parked with a growing delay instead, so a long outage of the phone system
# never makes a status post "failed" — it keeps waiting, in order, until a 2xx.
QUICK_ATTEMPTS = 5
PARK_FIRST = timedelta(minutes=5)
PARK_MAX = timedelta(hours=1)


class StatusPostError(Exception):
    """The phone system did not answer 2xx (RQ retries with backoff)."""


def status_body(row: OutboxMessage) -> dict:
    """The JSON posted for one outbox row: the change as it happened, plus who did it."""
    p = row.payload
    body = {
        "delivery_id": row.id, "sequence": row.id, "external_id": p.get("external_id"),
        "ticket_id": p.get("ticket_id"), "number": p.get("number"), "action": p.get("action"),
        "from_state": p.get("from_state"), "state": p.get("state"),
        "state_label": TicketState.LABELS.get(p.get("state")), "note": p.get("note"), "at": p.get("at"),
    }
    event = db.session.get(TicketEvent, p["event_id"]) if p.get("event_id") else None
    if event is not None:
        body["actor"] = event.actor_name
    data = p.get("data") or {}
    if p.get("action") == "rated":
        ticket = db.session.get(Ticket, p["ticket_id"])
        body["rating"] = data.get("rating")
        body["rating_comment"] = ticket.rating_comment if ticket else None
    if p.get("action") in ("assigned", "forwarded", "reopened"):
        ticket = db.session.get(Ticket, p["ticket_id"])
        body["assignee"] = ticket.assignee.name if ticket and ticket.assignee else None
        body["crew"] = ticket.crew.name if ticket and ticket.crew else None
    if p.get("action") == "replied" or p.get("action") == "closed":
        body["answer"] = p.get("note")
    return body


def _post(url: str, row: OutboxMessage) -> None:
    body = json.dumps(status_body(row), ensure_ascii=False, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "X-Bridge-Delivery": str(row.id),
               **sign_headers(current_app.config["BRIDGE_SECRET"], body)}
    timeout = current_app.config["WECHAT_TIMEOUT"] * 2
    try:
        res = requests.post(url, data=body, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        raise StatusPostError(f"status post {row.id} failed: {exc}") from exc
    if not 200 <= res.status_code < 300:
        raise StatusPostError(f"status post {row.id}: phone system answered {res.status_code} {res.text[:200]}")


def post_status(payload: dict, outbox_id: int) -> None:
    url = current_app.config.get("BRIDGE_OUTBOUND_URL")
    if not url:
        # Nowhere to post yet: park the row (kept, sent once the URL is configured).
        raise Deferred(utcnow() + NOT_CONFIGURED_RETRY, "BRIDGE_OUTBOUND_URL is not set")
    row = db.session.get(OutboxMessage, outbox_id)
    key = row.ordering_key or f"outbox:{outbox_id}"
    lock = get_redis().lock(f"bridge:status:{key}", timeout=LOCK_TTL_S, blocking_timeout=LOCK_WAIT_S)
    if not lock.acquire():
        raise Deferred(utcnow() + BUSY_RETRY, f"another delivery for {key} is running")
    try:
        _post_in_order(url, row, outbox_id, key)
    except StatusPostError as exc:
        if row.attempts < QUICK_ATTEMPTS:
            raise
        delay = min(PARK_FIRST * 2 ** (row.attempts - QUICK_ATTEMPTS), PARK_MAX)
        raise Deferred(utcnow() + delay, str(exc)[:500]) from exc
    finally:
        try:
            lock.release()
        except Exception:  # expired while we worked: harmless, the next holder re-checks
            log.warning("bridge: status lock for %s expired before release", key)


def _post_in_order(url: str, row: OutboxMessage, outbox_id: int, key: str) -> None:
    """Post every earlier undelivered row of the same ordering key, oldest first, then this one."""
    db.session.expire_all()  # fresh state under the lock
    if db.session.get(OutboxMessage, outbox_id).status == OutboxStatus.DONE:
        return  # a later row of this ticket already posted it
    earlier = list(db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.ordering_key == row.ordering_key,
                                    OutboxMessage.id < outbox_id, OutboxMessage.status != OutboxStatus.DONE)
        .order_by(OutboxMessage.id))) if row.ordering_key else []
    for before in earlier:
        _post(url, before)
        db.session.execute(update(OutboxMessage).where(OutboxMessage.id == before.id).values(
            status=OutboxStatus.DONE, done_at=utcnow(), last_error=None))
        db.session.commit()
        log.info("bridge: posted earlier status %s before %s (%s)", before.id, outbox_id, key)
    _post(url, db.session.get(OutboxMessage, outbox_id))
