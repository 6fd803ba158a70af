"""Property-based run of schemathesis over the mobile API's OpenAPI document (bounded).

Every operation of the mobile API gets a few generated requests through the WSGI app, with
a valid resident token (bound to a household with a bill): no 5xx, and every answer matches
the schema documented for its status code.
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from app.models import HouseholdBinding, WechatUser
from mobile_api.auth import issue_token

MAX_EXAMPLES = 4


@pytest.fixture()
def resident_token(db, pay_wechat, world):
    person = pay_wechat.create_user()
    user = WechatUser(mp_openid=person["mp_openid"])
    db.session.add(user)
    db.session.flush()
    db.session.add(HouseholdBinding(wechat_user_id=user.id, household_id=world.household.id, proof="owner_name"))
    db.session.commit()
    return issue_token(user)


def test_mobile_api_never_fails_and_answers_match_the_schema(app, resident_token):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    # The mobile API only (the bridge and the web pages have their own tests); login calls WeChat.
    schema = schema.include(tag_regex="^mobile_").exclude(path="/api/v1/auth/login")
    headers = {"Authorization": f"Bearer {resident_token}"}
    checks = [not_a_server_error, status_code_conformance, response_schema_conformance]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        def run(case):
            case.call_and_validate(headers=headers, checks=checks)

        run()
