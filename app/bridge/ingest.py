"""The bridge's boundary for inbound events: parse, deduplicate, process, commit, answer.

Each event is processed in one transaction that starts by claiming its ``event_id`` in
``bridge_event`` (INSERT ... ON CONFLICT DO NOTHING). A concurrent copy of the same event
waits on that unique key and, once the first commits, finds the stored answer instead of
doing the work again — so twenty copies make one ticket and one push. The answer is
stored with the effect, in the same commit, and a repeat gets exactly that answer back.

A payload that cannot be parsed, validated or processed is kept raw in
``bridge_dead_letter`` with the reason (in its own transaction, after the rollback) and
answered with our JSON error shape plus ``dead_letter_id``; staff list and replay it.
"""
from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from datetime import datetime

from marshmallow import ValidationError as SchemaValidationError
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from app.bridge.schemas import (
    CallAnswerSchema, CallEventArgs, RatingAnswerSchema, RatingArgs, TicketAnswerSchema, TicketEventArgs,
)
from app.dbutil import insert_or_skip
from app.errors import DomainError
from app.extensions import db
from app.http_errors import error_body
from app.models import BridgeDeadLetter, BridgeEvent, utcnow
from app.services import bridge as bridge_service
from app.services import ratings

log = logging.getLogger(__name__)

KINDS = {"tickets": "ticket", "calls": "call", "ratings": "rating"}  # endpoint -> BridgeEvent.kind
# Schema instances are built once (building one costs more than a load or a dump) and hold no
# per-request state.
_ARGS = {"tickets": TicketEventArgs(), "calls": CallEventArgs(), "ratings": RatingArgs()}
_TICKET_ANSWER, _RATING_ANSWER, _CALL_ANSWER = TicketAnswerSchema(), RatingAnswerSchema(), CallAnswerSchema()
ATTEMPTS = 3  # a lost race on a unique key (same external_id or call_id) is retried as an update


@dataclass
class Answer:
    status: int
    body: dict


def encode_raw(raw: bytes) -> str:
    """Text to keep in ``raw_body``: the UTF-8 text, or ``base64:`` + the bytes when it is not
    UTF-8 or holds a NUL (PostgreSQL text cannot)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        return "base64:" + base64.b64encode(raw).decode()
    return text


def decode_raw(text: str) -> bytes:
    return base64.b64decode(text[7:]) if text.startswith("base64:") else text.encode("utf-8")


class _Reject(Exception):
    def __init__(self, status: int, code: str, message: str, fields: dict | None = None, detail: str = ""):
        super().__init__(message)
        self.status, self.code, self.message, self.fields, self.detail = status, code, message, fields, detail


def ingest(endpoint: str, raw: bytes, *, received_at: datetime | None = None,
           dead_letter: BridgeDeadLetter | None = None) -> Answer:
    """Process one signed request body for ``endpoint`` ("tickets", "calls" or "ratings").

    With ``dead_letter`` (a replay), a failure is written to that row instead of a new one.
    """
    received_at = received_at or utcnow()
    try:
        data = _parse(endpoint, raw)
        for attempt in range(ATTEMPTS):
            try:
                answer = _process(endpoint, data, received_at)
                db.session.commit()
                return answer
            except (IntegrityError, OperationalError) as exc:
                # Lost a race on a unique key (or SQLite was busy): the winner's work is now
                # visible, so the next attempt finds the stored answer or updates.
                db.session.rollback()
                if attempt == ATTEMPTS - 1:
                    raise _Reject(500, "processing_failed", "处理失败，已记录，请稍后重试", detail=repr(exc)) from exc
            except DomainError as exc:
                db.session.rollback()
                raise _Reject(_status(exc), exc.code, exc.message, exc.fields) from exc
    except _Reject as rej:
        return _dead(endpoint, raw, rej, dead_letter)
    except Exception as exc:  # a bug or an outage: keep the payload, answer 500
        db.session.rollback()
        log.exception("bridge: processing a %s event failed", endpoint)
        return _dead(endpoint, raw, _Reject(500, "processing_failed", "处理失败，已记录，请稍后重试",
                                            detail=f"{type(exc).__name__}: {exc}"), dead_letter)
    raise AssertionError("unreachable")  # pragma: no cover


def _status(exc: DomainError) -> int:
    """A state conflict (a closed ticket, a rated call) stays 409 (DESIGN §4.2); any other
    refusal of a valid payload (unknown assignee, call or ticket) is 422; outages keep theirs."""
    if exc.status == 409 or exc.status >= 500:
        return exc.status
    return 422


def _parse(endpoint: str, raw: bytes) -> dict:
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Reject(400, "invalid_json", "请求内容不是有效的JSON", detail=str(exc)) from exc
    if not isinstance(payload, dict):
        raise _Reject(400, "invalid_json", "请求内容应为JSON对象")
    try:
        return _ARGS[endpoint].load(payload)
    except SchemaValidationError as exc:
        fields = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise _Reject(400, "invalid_input", "提交的内容有误，请检查后重试", fields) from exc


_STATEMENTS: dict = {}


def _statements() -> tuple:
    """The claim and the answer's UPDATE of ``bridge_event``, built once per database kind
    (the values travel as parameters): every event runs both."""
    dialect = db.engine.dialect.name
    found = _STATEMENTS.get(dialect)
    if found is None:
        table = BridgeEvent.__table__
        found = _STATEMENTS[dialect] = (
            insert_or_skip(table, conflict=["event_id"]).returning(table.c.id),
            update(table).where(table.c.id == bindparam("claimed_id")),
        )
    return found


def _stored(event_id: str, kind: str) -> Answer | None:
    row = db.session.scalar(select(BridgeEvent).where(BridgeEvent.event_id == event_id))
    if row is None:
        return None
    if row.kind != kind:
        raise _Reject(409, "event_id_reused", "事件编号已被其他类型的事件使用",
                      {"event_id": [f"已用于 {row.kind} 事件"]})
    return Answer(row.response_status, row.response or {})


def _process(endpoint: str, data: dict, received_at: datetime) -> Answer:
    kind = KINDS[endpoint]
    event_id = data["event_id"]
    # Claim first (one statement for a new event); only a repeat — sent again, or a
    # concurrent copy that committed first — reads the stored answer.
    claim, answered = _statements()
    claimed = db.session.execute(claim, {
        "event_id": event_id, "kind": kind, "external_id": data.get("external_id") or data.get("call_id"),
        "response_status": 0, "received_at": received_at}).scalar()
    if claimed is None:
        stored = _stored(event_id, kind)
        db.session.rollback()
        if kind == "rating" and stored.status < 300 and (stored.body.get("call") or {}).get("rating") != data["score"]:
            raise _Reject(409, "call_already_rated", "该通话已评价，不能以不同的评分再次评价",
                          {"score": [f"已记录{stored.body['call']['rating']}分"]})
        return stored
    if kind == "ticket":
        outcome = bridge_service.apply_ticket_event(data, received_at=received_at)
        status = 201 if outcome.result == "created" else 200
        body = _TICKET_ANSWER.dump({"result": outcome.result, "event_id": event_id, "ticket": outcome.ticket,
                                          **bridge_service.outage_answer(outcome.ticket)})
        ticket_id, occurred_at = outcome.ticket.id, outcome.occurred_at
    elif kind == "rating":
        outcome = ratings.record_call_rating(data["call_id"], data["score"], rated_at=data["rated_at"],
                                             ticket_number=data.get("ticket_number"),
                                             caller_phone=data["caller_phone"].e164 if data.get("caller_phone") else None)
        status = 200
        body = _RATING_ANSWER.dump({"result": "recorded", "call": outcome.call, "ticket_rated": outcome.ticket_rated,
                                          "ticket_number": outcome.ticket.number if outcome.ticket else None})
        ticket_id, occurred_at = outcome.call.ticket_id, data["rated_at"]
    else:
        outcome = bridge_service.record_call_event(data, received_at=received_at)
        status = 200
        body = _CALL_ANSWER.dump({"result": outcome.result, "event_id": event_id, "call": outcome.call,
                                        "callback_task_id": outcome.callback.id if outcome.callback else None})
        ticket_id, occurred_at = outcome.call.ticket_id, data.get("occurred_at") or received_at
    db.session.execute(answered, {"claimed_id": claimed, "response_status": status, "response": body,
                                  "ticket_id": ticket_id, "occurred_at": occurred_at})
    return Answer(status, body)


def _dead(endpoint: str, raw: bytes, rej: _Reject, dead_letter: BridgeDeadLetter | None) -> Answer:
    reason = f"{rej.status} {rej.code}: {rej.message}"
    if rej.fields:
        reason += " " + json.dumps(rej.fields, ensure_ascii=False)
    if rej.detail:
        reason += f" ({rej.detail})"
    db.session.rollback()
    if dead_letter is not None:
        dead_letter = db.session.merge(dead_letter)
        dead_letter.replayed_at, dead_letter.replay_result = utcnow(), "failed: " + reason
        row = dead_letter
    else:
        row = BridgeDeadLetter(endpoint=endpoint, raw_body=encode_raw(raw), reason=reason[:4000])
        db.session.add(row)
    db.session.commit()
    log.warning("bridge: %s payload kept as dead letter %s: %s", endpoint, row.id, reason)
    return Answer(rej.status, error_body(rej.code, rej.message, rej.fields, dead_letter_id=row.id))


# --- staff: list and replay -------------------------------------------------------------------

def list_dead_letters(*, include_replayed: bool = False, limit: int = 50) -> list[BridgeDeadLetter]:
    query = select(BridgeDeadLetter).order_by(BridgeDeadLetter.id.desc()).limit(limit)
    if not include_replayed:
        query = query.where(or_replay_failed())
    return list(db.session.scalars(query))


def or_replay_failed():
    """Still waiting for someone: never replayed, or replayed without success."""
    from sqlalchemy import or_

    return or_(BridgeDeadLetter.replayed_at.is_(None), BridgeDeadLetter.replay_result.like("failed:%"))


def replay(dead_letter_id: int, raw: bytes | None = None) -> Answer:
    """Process a stored payload again (optionally corrected by staff), as first received.

    Success marks the dead letter replayed (``ok: <status> <result>``); a failure is written
    to the same row and no new dead letter is made.
    """
    row = db.session.get(BridgeDeadLetter, dead_letter_id)
    if row is None:
        raise LookupError(f"no dead letter {dead_letter_id}")
    if row.endpoint not in KINDS:
        raise ValueError(f"dead letter {dead_letter_id} came to an unknown endpoint {row.endpoint!r}")
    received_at, endpoint = row.received_at, row.endpoint
    body = raw if raw is not None else decode_raw(row.raw_body)
    answer = ingest(endpoint, body, received_at=received_at, dead_letter=row)
    if answer.status < 300:
        row = db.session.get(BridgeDeadLetter, dead_letter_id)
        row.replayed_at = utcnow()
        row.replay_result = f"ok: {answer.status} {answer.body.get('result', '')}".strip()
        if raw is not None:
            row.replay_result += " (corrected payload)"
        db.session.commit()
    return answer
