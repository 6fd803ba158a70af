"""What the phone system sends (``*Args``) and what it gets back (``*Schema``).

Codes or the Chinese labels the agents see are both accepted for type, category and
priority (``"repair"`` or ``"报修"``). The phone system's emergency categories — gas smell,
burst pipe, flooding — map to our leak / burst-pipe categories, which are emergencies.
Times without a zone are Beijing time.
"""
from __future__ import annotations

import hashlib
import re

from marshmallow import Schema, ValidationError, fields, post_load, pre_load, validate, validates

from app.clock import BEIJING  # the contract: times without a zone are Beijing time
from app.fields import CleanString, PhoneField
from app.models import CallStatus, Priority, TicketCategory, TicketState, TicketType


TYPE_ALIASES = {**{code: code for code in TicketType.ALL}, **{v: k for k, v in TicketType.LABELS.items()}}
PRIORITY_ALIASES = {**{code: code for code in Priority.ALL}, **{v: k for k, v in Priority.LABELS.items()}}
# phone-system category -> (our category, a tag kept in front of the description or None)
CATEGORY_ALIASES: dict[str, tuple[str, str | None]] = {
    **{code: (code, None) for code in TicketCategory.ALL},
    **{label: (code, None) for code, label in TicketCategory.LABELS.items()},
    "不热": (TicketCategory.NO_HEAT, None), "停暖": (TicketCategory.NO_HEAT, None),
    "温度低": (TicketCategory.LOW_TEMPERATURE, None), "跑水": (TicketCategory.LEAK, None),
    "水管爆裂": (TicketCategory.BURST_PIPE, None), "阀门": (TicketCategory.VALVE, None),
    "暖气片": (TicketCategory.RADIATOR, None), "收费": (TicketCategory.BILLING, None),
    "服务": (TicketCategory.SERVICE, None),
    # Emergencies of the phone system's IVR menu.
    "gas_smell": (TicketCategory.LEAK, "燃气异味"), "燃气异味": (TicketCategory.LEAK, "燃气异味"),
    "燃气味": (TicketCategory.LEAK, "燃气异味"),
    "flooding": (TicketCategory.LEAK, "水淹"), "水淹": (TicketCategory.LEAK, "水淹"),
    "泡水": (TicketCategory.LEAK, "水淹"),
}

REQUIRED = {"required": "必填", "null": "不能为空"}


def _one_of(choices) -> validate.OneOf:
    return validate.OneOf(list(choices), error="取值不正确，可选：{choices}")


def phone_args(data: dict) -> None:
    """``caller_phone`` (an ``app.phones.Phone``) as stored: E.164 and its extension apart."""
    phone = data["caller_phone"]
    data["caller_phone"], data["caller_phone_ext"] = phone.e164, phone.extension


def _time(**kw):
    return fields.AwareDateTime(default_timezone=BEIJING, **kw)


# C0 control characters other than tab and line breaks: no phone system means them, and
# PostgreSQL cannot store NUL in text — refused at the door with a field message (400).
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class BridgeArgs(Schema):
    """What the phone system sends: text fields must be free of control characters."""

    @pre_load
    def _refuse_control_characters(self, data, **kwargs):
        if isinstance(data, dict):
            bad = {key: ["含有不可见的控制字符"] for key, value in data.items()
                   if isinstance(value, str) and CONTROL_CHARS.search(value)}
            if bad:
                raise ValidationError(bad)
        return data


class TicketEventArgs(BridgeArgs):
    """A ticket event: the first one for an ``external_id`` creates the ticket, later ones update it."""

    external_id = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(1, 64),
                                metadata={"description": "呼叫中心工单号 (the phone system's ticket number)"})
    event_id = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(1, 64),
                             metadata={"description": "unique per event (across tickets and calls); a repeat returns the first answer"})
    type = fields.String(required=True, error_messages=REQUIRED, validate=_one_of(TYPE_ALIASES),
                         metadata={"description": "repair|complaint|inquiry|suggestion|report|help or 报修/投诉/咨询/建议/举报/求助"})
    caller_phone = PhoneField(required=True, error_messages=REQUIRED)
    description = CleanString(required=True, error_messages=REQUIRED, multiline=True,
                              validate=validate.Length(1, 2000))
    occurred_at = _time(metadata={"description": "when this event happened at the phone system; the newest wins "
                                                 "(default: created_at, else the time we receive it)"})
    account_no = CleanString(validate=validate.Length(1, 20), allow_none=True)
    address = CleanString(validate=validate.Length(1, 200), allow_none=True)
    caller_name = CleanString(validate=validate.Length(1, 40), allow_none=True)
    category = fields.String(validate=_one_of(CATEGORY_ALIASES), allow_none=True)
    priority = fields.String(validate=_one_of(PRIORITY_ALIASES), allow_none=True)
    recording_url = fields.Url(validate=validate.Length(max=500), allow_none=True)
    agent = CleanString(validate=validate.Length(1, 40), allow_none=True,
                        metadata={"description": "the call-center agent's name (shown in the timeline)"})
    assignee = CleanString(validate=validate.Length(1, 40), allow_none=True,
                           metadata={"description": "staff username or phone; overrides automatic routing"})
    created_at = _time(allow_none=True)

    @post_load
    def _normalise(self, data, **kwargs):
        phone_args(data)
        data["type"] = TYPE_ALIASES[data["type"]]
        if data.get("priority"):
            data["priority"] = PRIORITY_ALIASES[data["priority"]]
        data["category_tag"] = None
        if data.get("category"):
            data["category"], data["category_tag"] = CATEGORY_ALIASES[data["category"]]
            if data["category_tag"]:
                data["priority"] = Priority.EMERGENCY
        data["description"] = data["description"].strip()
        if not data["description"]:
            raise ValidationError({"description": ["请填写问题描述"]})
        return data


class CallEventArgs(BridgeArgs):
    """A call event; all events of one call share its ``call_id``."""

    event_id = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(1, 64))
    call_id = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(1, 64))
    event = fields.String(required=True, error_messages=REQUIRED, validate=_one_of(CallStatus.ALL),
                          metadata={"description": "ringing | answered | hangup | missed"})
    caller_phone = PhoneField(required=True, error_messages=REQUIRED)
    occurred_at = _time(metadata={"description": "when it happened (default: when we receive it)"})
    agent = CleanString(validate=validate.Length(1, 40), allow_none=True)
    duration_s = fields.Integer(validate=validate.Range(0, 24 * 3600), allow_none=True,
                                metadata={"description": "talk time in seconds (with hangup)"})
    recording_url = fields.Url(validate=validate.Length(max=500), allow_none=True)
    external_id = fields.String(validate=validate.Length(1, 64), allow_none=True,
                                metadata={"description": "the phone system's ticket number, when the call is about one"})
    account_no = CleanString(validate=validate.Length(1, 20), allow_none=True)

    @post_load
    def _phone(self, data, **kwargs):
        phone_args(data)
        return data


RATING_EVENT_PREFIX = "rating:"


class RatingArgs(BridgeArgs):
    """The caller's post-call IVR satisfaction rating (seed 001 §1.9.4); once per call.

    Idempotent by ``call_id``: the same rating sent again gets the first answer back.
    """

    call_id = fields.String(required=True, error_messages=REQUIRED, validate=validate.Length(1, 64),
                            metadata={"description": "the call that was rated (as in POST /bridge/v1/calls)"})
    score = fields.Integer(required=True, strict=True, error_messages={**REQUIRED, "invalid": "评分应为1到5的整数"},
                           validate=validate.Range(1, 5, error="评分应为1到5分"),
                           metadata={"description": "1 (very dissatisfied) … 5 (very satisfied)"})
    rated_at = _time(required=True, error_messages=REQUIRED,
                     metadata={"description": "when the caller pressed the key (Beijing time without a zone)"})
    ticket_number = fields.String(validate=validate.Length(1, 64), allow_none=True,
                                  metadata={"description": "our ticket number (GD…) or the phone system's own, "
                                                          "when the call was about a ticket"})
    caller_phone = PhoneField(allow_none=True, metadata={"description": "the caller's number; lets a rating "
                                                                        "arriving before the call's events be kept"})

    @post_load
    def _event_id(self, data, **kwargs):
        # One rating per call: the call id is the event id of the bridge's idempotency table.
        key = RATING_EVENT_PREFIX + data["call_id"]
        data["event_id"] = key if len(key) <= 64 else RATING_EVENT_PREFIX + hashlib.sha256(
            data["call_id"].encode()).hexdigest()[:56]
        return data


# --- answers --------------------------------------------------------------------------------

class BridgeTicketSchema(Schema):
    id = fields.Integer()
    number = fields.String(metadata={"description": "our ticket number (GD...)"})
    external_id = fields.String()
    type = fields.String()
    category = fields.String()
    priority = fields.String()
    state = fields.String(validate=validate.OneOf(TicketState.ALL))
    state_label = fields.Function(lambda t: TicketState.LABELS.get(t.state))
    household_id = fields.Integer(allow_none=True)
    outage_id = fields.Integer(allow_none=True, metadata={"description": "the outage this report is linked to"})
    account_no = fields.Function(lambda t: t.household.account_no if t.household else None)
    address = fields.String(allow_none=True)
    crew = fields.Function(lambda t: t.crew.name if t.crew else None)
    assignee = fields.Function(lambda t: t.assignee.name if t.assignee else None)
    respond_by = fields.AwareDateTime()
    finish_by = fields.AwareDateTime()
    created_at = fields.AwareDateTime()


class BridgeOutageSchema(Schema):
    id = fields.Integer()
    title = fields.String()
    reason = fields.String()
    status = fields.String()
    starts_at = fields.AwareDateTime()
    expected_end_at = fields.AwareDateTime(allow_none=True)


class TicketAnswerSchema(Schema):
    result = fields.String(metadata={"description": "created | updated | unchanged | stale (an older event, "
                                                    "recorded but not applied)"})
    event_id = fields.String()
    ticket = fields.Nested(BridgeTicketSchema)
    outage = fields.Nested(BridgeOutageSchema, allow_none=True,
                           metadata={"description": "the active outage covering the caller's household, if any"})
    linked = fields.Boolean(metadata={"description": "true: the report is linked to that outage (no crew is sent; "
                                                     "the caller is told when heat comes back)"})
    message = fields.String(allow_none=True, metadata={"description": "what the agent can tell the caller now (Chinese)"})


class CallLogSchema(Schema):
    id = fields.Integer()
    call_id = fields.String()
    caller_phone = fields.String()
    status = fields.String()
    agent = fields.String(allow_none=True)
    started_at = fields.AwareDateTime()
    answered_at = fields.AwareDateTime(allow_none=True)
    ended_at = fields.AwareDateTime(allow_none=True)
    duration_s = fields.Integer(allow_none=True)
    recording_url = fields.String(allow_none=True)
    household_id = fields.Integer(allow_none=True)
    ticket_id = fields.Integer(allow_none=True)


class CallAnswerSchema(Schema):
    result = fields.String(metadata={"description": "recorded | stale"})
    event_id = fields.String()
    call = fields.Nested(CallLogSchema)
    callback_task_id = fields.Integer(allow_none=True,
                                      metadata={"description": "set when a missed call outside working hours "
                                                               "became a call-back task"})


class RatingCallSchema(Schema):
    call_id = fields.String()
    rating = fields.Integer()
    rated_at = fields.AwareDateTime()
    ticket_id = fields.Integer(allow_none=True)


class RatingAnswerSchema(Schema):
    result = fields.String(metadata={"description": "recorded"})
    call = fields.Nested(RatingCallSchema)
    ticket_number = fields.String(allow_none=True, metadata={"description": "our number of the call's ticket"})
    ticket_rated = fields.Boolean(metadata={"description": "true: the call's ticket was closed and not rated yet, "
                                                           "and this is now its rating (counted once)"})


class CallerTicketSchema(Schema):
    id = fields.Integer()
    number = fields.String()
    external_id = fields.String(allow_none=True)
    type = fields.String()
    category = fields.String()
    priority = fields.String()
    state = fields.String()
    state_label = fields.Function(lambda t: TicketState.LABELS.get(t.state))
    description = fields.String()
    household_id = fields.Integer(allow_none=True)
    created_at = fields.AwareDateTime()
    finish_by = fields.AwareDateTime(allow_none=True)


class ArrearsSeasonSchema(Schema):
    season = fields.String()
    due_on = fields.Date()
    principal_fen = fields.Integer()
    late_fee_fen = fields.Integer()


class CallerOutageSchema(BridgeOutageSchema):
    kind = fields.String()


class CallerHouseholdSchema(Schema):
    id = fields.Integer()
    account_no = fields.String()
    address = fields.String()
    owner_name = fields.String()
    status = fields.String()
    area_m2 = fields.Decimal(as_string=True, metadata={"type": "string", "description": "m², a decimal string"})
    arrears_fen = fields.Integer(metadata={"description": "principal + late fees due today, in fen"})
    arrears = fields.List(fields.Nested(ArrearsSeasonSchema))
    outages = fields.List(fields.Nested(CallerOutageSchema))


class CallerSchema(Schema):
    phone = fields.String()
    known = fields.Boolean(metadata={"description": "a household or an earlier ticket matches this phone"})
    households = fields.List(fields.Nested(CallerHouseholdSchema))
    open_tickets = fields.List(fields.Nested(CallerTicketSchema))
    recent_tickets = fields.List(fields.Nested(CallerTicketSchema), metadata={"description": "the last five"})
    open_callbacks = fields.Integer(metadata={"description": "call-back tasks still open for this phone"})
