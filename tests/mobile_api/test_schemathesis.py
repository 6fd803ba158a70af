"""Property-based run of schemathesis over every operation of the OpenAPI document.

Every operation (mini-program API and phone-system bridge) gets generated requests through
the WSGI app — valid ones and invalid ones — as each kind of caller: nobody, a resident
with a bound household (and a bill), a crew member, and the phone system with valid
signatures. Whatever is sent: never a 5xx, and every answer is documented (status, content
type, headers, body schema).

Deterministic and bounded: hypothesis derandomized (the same cases every run), a fixed
number of examples per operation and mode, no example database.
"""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_headers_conformance, response_schema_conformance, status_code_conformance,
)

from app.bridge.signing import sign_headers
from app.models import HouseholdBinding, TicketSource, TicketType, WechatUser
from app.services import tickets
from app.services.actors import Actor
from app.services.billing import create_payment
from app.services.uploads import store_image
from mobile_api.auth import issue_token
from tests.mobile_api.conftest import jpeg_with_exif

EXAMPLES = {GenerationMode.POSITIVE: 20, GenerationMode.NEGATIVE: 12}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


@pytest.fixture()
def callers(app, db, pay_wechat, world):
    """Headers per kind of caller, and the ids of what they may touch: the resident's
    household, bill, payment, and a repair with a photo that the crew member holds."""
    resident = WechatUser(mp_openid=pay_wechat.create_user()["mp_openid"])
    crew = WechatUser(mp_openid=pay_wechat.create_user()["mp_openid"], staff_id=world.member.id)
    db.session.add_all([resident, crew])
    db.session.flush()
    db.session.add(HouseholdBinding(wechat_user_id=resident.id, household_id=world.household.id, proof="owner_name"))
    payment = create_payment(resident, [world.bill])
    path, content_type, size = store_image(jpeg_with_exif())
    ticket = tickets.create_ticket(
        Actor.of_resident(resident), type=TicketType.REPAIR, source=TicketSource.MINI_PROGRAM, description="不热",
        household=world.household, photos=[tickets.PhotoInput(path=path, content_type=content_type, size_bytes=size)])
    db.session.commit()
    assert ticket.assignee_id == world.member.id
    known = {"household_id": world.household.id, "ticket_id": ticket.id, "photo_id": ticket.photos[0].id,
             "out_trade_no": payment.out_trade_no, "bill_ids": [world.bill.id], "crew_id": world.other_crew.id,
             "staff_id": world.other_member.id, "account_no": world.household.account_no,
             "caller_phone": world.household.owner_phone, "phone": world.household.owner_phone}
    return {"anonymous": {}, "resident": {"Authorization": f"Bearer {issue_token(resident)}"},
            "crew": {"Authorization": f"Bearer {issue_token(crew)}"}, "known": known}


def _aim(case, known: dict, aimed: bool):
    """Half of the cases name things that exist (so they reach the services, not just a 404)."""
    if not aimed:
        return case
    for name in list(case.path_parameters or {}):
        if name in known:
            case.path_parameters[name] = known[name]
    if isinstance(case.body, dict):
        for name in ("household_id", "bill_ids", "crew_id", "staff_id", "account_no", "caller_phone"):
            if name in case.body:
                case.body[name] = known[name]
    return case


def _operations(app, tag_regex: str | None = None):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    if tag_regex:
        schema = schema.include(tag_regex=tag_regex)
    return [result.ok() for result in schema.get_all_operations()]


def _fuzz(operations, call, known: dict) -> list[str]:
    """Run every operation in both modes; the failures, one line each (all of them, not the first)."""
    failures = []
    for operation in operations:
        for mode, examples in EXAMPLES.items():
            strategy = st.tuples(operation.as_strategy(generation_mode=mode), st.booleans())

            @given(case=strategy.map(lambda pair: _aim(pair[0], known, pair[1])))
            @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def run(case):
                call(case)

            try:
                run()
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 (collect, then fail with all of them)
                failures.append(f"{operation.label} [{mode.value}]: {_summary(exc)}")
    return failures


def _summary(exc: BaseException) -> str:
    """Each failure's title and first line of detail, the status line and the curl to
    reproduce, from schemathesis's report."""
    lines = [line.strip() for line in str(exc).splitlines()]
    keep = []
    for i, line in enumerate(lines):
        if line.startswith("- "):
            detail = next((x for x in lines[i + 1:] if x), "")
            keep.append(f"{line}: {detail}")
        elif line.startswith(("[", "curl")):
            keep.append(line)
    return " | ".join(keep)[:1500] or lines[0][:300]


@pytest.mark.parametrize("who", ["anonymous", "resident", "crew"])
def test_every_operation_never_fails_and_answers_match_the_schema(app, callers, who):
    operations = _operations(app)
    assert len(operations) >= 30
    headers = callers[who]
    failures = _fuzz(operations, lambda case: case.call_and_validate(headers=headers, checks=CHECKS), callers["known"])
    assert not failures, "\n".join(failures)


def test_signed_bridge_requests_never_fail_and_answers_match_the_schema(app, callers):
    secret = app.config["BRIDGE_SECRET"]

    def call(case):
        if case.method.upper() == "GET":   # a look-up signs its path as sent (DESIGN §4.3)
            target = quote(case.operation.schema.get_full_path(case.formatted_path))
            case.call_and_validate(headers=sign_headers(secret, method="GET", target=target), checks=CHECKS)
            return
        body = b"" if isinstance(case.body, NotSet) else case.body
        raw = (bytes(body) if isinstance(body, (bytes, bytearray)) else body.encode() if isinstance(body, str)
               else json.dumps(body, ensure_ascii=False).encode())
        case.call_and_validate(headers=sign_headers(secret, raw), data=raw, checks=CHECKS)

    operations = _operations(app, "^bridge")
    assert len(operations) >= 3
    failures = _fuzz(operations, call, callers["known"])
    assert not failures, "\n".join(failures)
