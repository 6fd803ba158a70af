"""Mini-program logins can be ended: logout, refresh-token rotation with reuse detection, an
absolute lifetime, and revocation when staff rights or a WeChat identity change."""
from __future__ import annotations

from datetime import timedelta

import pytest
from itsdangerous import URLSafeTimedSerializer

from app.models import HouseholdBinding, Role, WechatUser
from app.services import binding, identity, sessions, staff_admin
from app.services.actors import Actor
from mobile_api.auth import access_token, refresh_token
from tests.conftest import TEST_NOW


def _login(db, user) -> tuple[str, str]:
    """What POST /api/v1/auth/login answers, without WeChat: a new family's two tokens."""
    family = sessions.open_api_session(user)
    db.session.commit()
    return access_token(family), refresh_token(family)


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _homes(client, token):
    return client.get("/api/v1/households", headers=_bearer(token))


def _refresh(client, token):
    return client.post("/api/v1/auth/refresh", json={"refresh_token": token})


def _code(answer) -> str:
    return answer.json["error"]["code"]


@pytest.fixture()
def resident(db):
    user = WechatUser(mp_openid="mp-resident-sessions")
    db.session.add(user)
    db.session.commit()
    return user


def test_a_refresh_answers_a_new_pair_and_retires_the_refresh_token_presented(client, db, resident):
    access, refresh = _login(db, resident)
    first = _refresh(client, refresh)
    assert first.status_code == 200
    assert first.json["refresh_token"] != refresh and first.json["token"] != access
    assert first.json["roles"] == ["resident"] and first.json["user"]["id"] == resident.id
    assert _homes(client, first.json["token"]).status_code == 200
    assert _homes(client, access).status_code == 200   # requests in flight with the old one still pass
    second = _refresh(client, first.json["refresh_token"])
    assert second.status_code == 200


def test_a_retired_refresh_token_presented_again_revokes_the_whole_family(client, db, resident):
    access, refresh = _login(db, resident)
    other_phone, _ = _login(db, resident)
    rotated = _refresh(client, refresh).json
    reused = _refresh(client, refresh)
    assert reused.status_code == 401 and _code(reused) == "refresh_token_reused"
    # Thief or owner: whoever holds this family's tokens must log in again.
    for token in (access, rotated["token"]):
        ended = _homes(client, token)
        assert ended.status_code == 401 and _code(ended) == "session_ended"
    assert _code(_refresh(client, rotated["refresh_token"])) == "session_ended"
    assert _homes(client, other_phone).status_code == 200   # the person's other login is untouched


def test_logout_ends_the_login_at_once(client, db, resident):
    access, refresh = _login(db, resident)
    other_phone, _ = _login(db, resident)
    assert client.post("/api/v1/auth/logout", headers=_bearer(access)).status_code == 204
    assert _code(_homes(client, access)) == "session_ended"
    assert _code(_refresh(client, refresh)) == "session_ended"
    assert client.post("/api/v1/auth/logout", headers=_bearer(access)).status_code == 401
    assert _homes(client, other_phone).status_code == 200


def test_refresh_needs_a_refresh_token_not_an_access_token(client, db, resident):
    access, refresh = _login(db, resident)
    assert _code(client.post("/api/v1/auth/refresh", headers=_bearer(access))) == "login_required"
    assert _code(_refresh(client, access)) == "token_invalid"
    assert _code(_homes(client, refresh)) == "token_invalid"
    assert _code(_refresh(client, refresh[:-3] + "abc")) == "token_invalid"


def test_tokens_from_before_login_families_are_refused(app, client, db, resident):
    legacy = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="mobile-api-token").dumps({"u": resident.id})
    answer = _homes(client, legacy)
    assert answer.status_code == 401 and _code(answer) == "token_invalid"


def test_an_access_token_opens_the_api_for_two_hours(client, db, resident, clock):
    access, _ = _login(db, resident)
    clock.travel_to(TEST_NOW + timedelta(hours=1, minutes=59))
    assert _homes(client, access).status_code == 200
    clock.travel_to(TEST_NOW + timedelta(hours=2, minutes=1))
    assert _code(_homes(client, access)) == "token_expired"


def test_an_unused_refresh_token_expires_after_seven_days(client, db, resident, clock):
    _, refresh = _login(db, resident)
    clock.travel_to(TEST_NOW + timedelta(days=7, minutes=1))
    assert _code(_refresh(client, refresh)) == "token_expired"


def test_no_login_can_be_refreshed_beyond_thirty_days(client, db, resident, clock):
    _, refresh = _login(db, resident)
    for day in (6, 12, 18, 24):
        clock.travel_to(TEST_NOW + timedelta(days=day))
        answer = _refresh(client, refresh)
        assert answer.status_code == 200, day
        refresh = answer.json["refresh_token"]
    # What is left of the 30 days, not 7 more (less the moments the test itself took).
    assert 6 * 86400 - 60 <= answer.json["refresh_expires_in"] <= 6 * 86400
    clock.travel_to(TEST_NOW + timedelta(days=29, hours=23))
    late = _refresh(client, refresh).json
    clock.travel_to(TEST_NOW + timedelta(days=30, minutes=1))   # the access token is an hour old
    assert _code(_homes(client, late["token"])) == "session_expired"
    assert _code(_refresh(client, late["refresh_token"])) == "session_expired"


def _staff_phone(db, staff, openid) -> WechatUser:
    phone = WechatUser(mp_openid=openid, staff_id=staff.id)
    db.session.add(phone)
    db.session.commit()
    return phone


def test_unbinding_a_staff_wechat_ends_its_logins(client, db, world, make_staff):
    admin = make_staff(Role.ADMIN)
    phone = _staff_phone(db, world.member, "mp-member-unbind")
    access, refresh = _login(db, phone)
    assert client.get("/api/v1/tasks", headers=_bearer(access)).status_code == 200
    assert staff_admin.unbind_wechat(Actor.of_staff(admin), world.member)
    db.session.commit()
    assert _code(client.get("/api/v1/tasks", headers=_bearer(access))) == "session_ended"
    assert _code(_refresh(client, refresh)) == "session_ended"
    again, _ = _login(db, phone)   # the WeChat logs in again, as a resident only
    assert client.get("/api/v1/tasks", headers=_bearer(again)).status_code == 403
    assert _homes(client, again).status_code == 200


def test_binding_a_new_phone_ends_the_old_phones_logins(client, db, world):
    old_phone = _staff_phone(db, world.member, "mp-member-old-phone")
    access, _ = _login(db, old_phone)
    new_phone = WechatUser(mp_openid="mp-member-new-phone")
    db.session.add(new_phone)
    db.session.flush()
    binding.bind_staff(new_phone, binding.issue_staff_bind_code(world.member).code)
    db.session.commit()
    assert _code(client.get("/api/v1/tasks", headers=_bearer(access))) == "session_ended"
    fresh, _ = _login(db, new_phone)
    assert client.get("/api/v1/tasks", headers=_bearer(fresh)).status_code == 200


def test_a_merged_away_users_tokens_keep_opening_the_api_for_the_person(client, db, world, redis):
    oa = WechatUser(oa_openid="oOA_sessions_merge_000000000", subscribed=True)
    db.session.add(oa)
    db.session.flush()
    db.session.add(HouseholdBinding(wechat_user_id=oa.id, household_id=world.household.id, proof="owner_name"))
    mp = WechatUser(mp_openid="oMP_sessions_merge_000000000", unionid="oUNION_sessions_merge_0000000")
    db.session.add(mp)
    db.session.commit()
    access, refresh = _login(db, mp)
    assert _homes(client, access).json["items"] == []

    person = identity.attach_unionid(oa, "oUNION_sessions_merge_0000000")
    db.session.commit()
    assert db.session.get(WechatUser, mp.id) is None and person.id == oa.id
    homes = _homes(client, access)
    assert homes.status_code == 200 and [h["account_no"] for h in homes.json["items"]] == [world.household.account_no]
    refreshed = _refresh(client, refresh)
    assert refreshed.status_code == 200 and refreshed.json["user"]["id"] == oa.id


def test_linking_with_a_code_replaces_the_login(client, db, world, redis):
    oa = WechatUser(oa_openid="oOA_sessions_link_0000000000", subscribed=True)
    mp = WechatUser(mp_openid="oMP_sessions_link_0000000000")
    db.session.add_all([oa, mp])
    db.session.commit()
    access, _ = _login(db, mp)
    code = identity.issue_link_code(oa, redis)
    linked = client.post("/api/v1/auth/link", json={"code": code}, headers=_bearer(access))
    assert linked.status_code == 200 and linked.json["user"]["id"] == oa.id
    assert _code(_homes(client, access)) == "session_ended"
    assert _homes(client, linked.json["token"]).status_code == 200


def test_ended_sessions_are_purged_a_month_later(db, resident, clock):
    from jobs.sessions import purge_sessions

    ended, live = sessions.open_api_session(resident), sessions.open_api_session(resident)
    sessions.revoke_api_session(ended, "logout")
    db.session.commit()
    ended_id, live_id = ended.id, live.id
    clock.travel_to(TEST_NOW + timedelta(days=29))
    assert purge_sessions() == {"api_sessions": 0, "staff_sessions": 0}
    clock.travel_to(TEST_NOW + timedelta(days=31))
    assert purge_sessions()["api_sessions"] == 1      # ended a month ago; the other ran out only yesterday
    db.session.expire_all()
    assert db.session.get(sessions.ApiSession, ended_id) is None
    assert db.session.get(sessions.ApiSession, live_id) is not None


def test_migration_0010_builds_exactly_the_session_models(db):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata)
    assert [d for d in diff if "api_session" in repr(d) or "staff_session" in repr(d)] == []
