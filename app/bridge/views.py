"""HTTP surface of the bridge (DESIGN §4.2): /bridge/v1/tickets, /calls, /ratings, /callers/<phone>.

Every request is signed (DESIGN §4.3). The raw body is read and verified before anything
is parsed, then handed as bytes to :mod:`app.bridge.ingest`, which parses it with the
marshmallow schemas itself — so a malformed payload can still be stored raw as a dead letter.
"""
from __future__ import annotations

import logging
from functools import wraps

from flask import current_app, jsonify, request

from app import phones
from app.bridge import ingest, signing
from app.bridge.schemas import (
    CallAnswerSchema, CallerSchema, CallEventArgs, RatingAnswerSchema, RatingArgs,
    TicketAnswerSchema, TicketEventArgs,
)
from app.http_errors import ApiErrorSchema, error_response
from app.http_limits import limit_blueprint
from app.openapi import Blueprint
from app.services import bridge as bridge_service

log = logging.getLogger(__name__)

bp = Blueprint(
    "bridge", __name__, url_prefix="/bridge/v1",
    description="呼叫中心对接 (phone-system bridge). Every request carries X-Bridge-Timestamp and "
                "X-Bridge-Signature = hex HMAC-SHA256(BRIDGE_SECRET, timestamp + '.' + raw body); "
                "a GET signs timestamp + '.' + method + ' ' + path with its query string as sent "
                "(e.g. '1733112000.GET /bridge/v1/callers/13912345678'); see docs/bridge.md.",
)
MAX_BODY = 64 * 1024
limit_blueprint(bp, MAX_BODY)
SIGNED = [{"bridgeSignature": []}]
TIMESTAMP_PARAM = {"in": "header", "name": signing.TIMESTAMP_HEADER, "required": True,
                   "schema": {"type": "integer"}, "description": "unix seconds; ±300 s of our clock"}
ERRORS = {
    "401": {"description": "missing or wrong signature, or timestamp outside ±300 s", "content": {"application/json": {"schema": ApiErrorSchema}}},
    "413": {"description": "body over 64 KB (also when sent chunked); nothing is read past the limit", "content": {"application/json": {"schema": ApiErrorSchema}}},
}
DEAD_LETTER_ERRORS = {
    **ERRORS,
    "400": {"description": "not JSON or fails validation; stored as a dead letter (see error.dead_letter_id)",
            "content": {"application/json": {"schema": ApiErrorSchema}}},
    "409": {"description": "a state conflict: the ticket is closed or cancelled (invalid_transition), or the "
                           "event_id was used by another kind of event (event_id_reused); stored as a dead letter",
            "content": {"application/json": {"schema": ApiErrorSchema}}},
    "422": {"description": "valid but cannot be processed (e.g. unknown assignee); stored as a dead letter",
            "content": {"application/json": {"schema": ApiErrorSchema}}},
    "500": {"description": "processing failed on our side; stored as a dead letter — retry with the same event_id",
            "content": {"application/json": {"schema": ApiErrorSchema}}},
}


def signed(view):
    """Verify the signature (over the raw body; for a GET, over method, path and query)
    before the view sees anything."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        raw = request.get_data(cache=True)  # 413 past MAX_BODY, chunked or not (app/http_limits.py)
        reason = signing.check(current_app.config["BRIDGE_SECRET"], request.headers.get(signing.TIMESTAMP_HEADER),
                               request.headers.get(signing.SIGNATURE_HEADER), raw, method=request.method,
                               target=signing.wire_target(request.environ))
        if reason:
            log.warning("bridge: refused %s %s from %s: %s", request.method, request.path, request.remote_addr, reason)
            return error_response(401, "bad_signature", "签名校验失败或请求已过期")
        return view(*args, **kwargs)

    return wrapper


def _answer(answer: ingest.Answer):
    response = jsonify(answer.body)
    response.status_code = answer.status
    return response


@bp.route("/tickets", methods=["POST"])
@bp.doc(security=SIGNED, parameters=[TIMESTAMP_PARAM],
        requestBody={"required": True, "content": {"application/json": {"schema": TicketEventArgs}}},
        responses=DEAD_LETTER_ERRORS)
@bp.response(200, TicketAnswerSchema, description="updated, unchanged, stale — or the stored answer to a repeated event_id")
@bp.alt_response(201, schema=TicketAnswerSchema, description="ticket created")
@signed
def post_ticket():
    """Create or update a ticket (工单) from the phone system."""
    return _answer(ingest.ingest("tickets", request.get_data(cache=True)))


@bp.route("/calls", methods=["POST"])
@bp.doc(security=SIGNED, parameters=[TIMESTAMP_PARAM],
        requestBody={"required": True, "content": {"application/json": {"schema": CallEventArgs}}},
        responses=DEAD_LETTER_ERRORS)
@bp.response(200, CallAnswerSchema)
@signed
def post_call():
    """Record a call event (ringing, answered, hangup, missed)."""
    return _answer(ingest.ingest("calls", request.get_data(cache=True)))


@bp.route("/ratings", methods=["POST"])
@bp.doc(security=SIGNED, parameters=[TIMESTAMP_PARAM],
        requestBody={"required": True, "content": {"application/json": {"schema": RatingArgs}}},
        responses={**DEAD_LETTER_ERRORS, "409": {
            "description": "the call was rated already with another score, or it belongs to another ticket than "
                           "ticket_number; stored as a dead letter",
            "content": {"application/json": {"schema": ApiErrorSchema}}}})
@bp.response(200, RatingAnswerSchema, description="recorded — or the stored answer to the same rating sent again")
@signed
def post_rating():
    """第三方使用的服务评价接口: the caller's post-call (IVR) rating, 1–5, once per call."""
    return _answer(ingest.ingest("ratings", request.get_data(cache=True)))


@bp.route("/callers/<phone>", methods=["GET"])
@bp.doc(security=SIGNED, parameters=[TIMESTAMP_PARAM], responses={**ERRORS, "400": {
    "description": "not a phone number", "content": {"application/json": {"schema": ApiErrorSchema}}}})
@bp.response(200, CallerSchema)
@signed
def get_caller(phone: str):
    """来电弹屏: households, arrears, open and recent tickets, live outages for a phone number.

    Signed over the method and the path as sent: timestamp + "." + "GET /bridge/v1/callers/<phone>"
    (with the query string, if any), so a signature opens one phone number only.
    """
    try:
        number = phones.normalise(phone)
    except phones.PhoneError as exc:
        return error_response(400, "invalid_input", exc.message, {"phone": [exc.message]})
    return bridge_service.caller_profile(number)
