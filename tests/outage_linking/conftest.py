"""Fixtures of the outage-aware service tests: a town with a community in an outage."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.models import HouseholdBinding, OutboxMessage, Role, WechatUser, utcnow
from app.services import outages


@dataclass
class Town:
    inside_community: object
    inside_station: object
    outside_community: object
    outside_station: object
    crew: object            # serves the inside station
    other_crew: object      # serves the outside station
    lead: object
    member: object
    other_member: object
    leader: object          # leader on duty
    inside: list = field(default_factory=list)    # households of the inside community
    outside: list = field(default_factory=list)


@pytest.fixture()
def make_town(db, make_area, make_household, make_crew, make_staff):
    def make(inside=50, outside=5) -> Town:
        _, c_in, st_in = make_area(community="暖山小区", station="一号换热站")
        _, c_out, st_out = make_area(community="河畔小区", station="二号换热站")
        crew = make_crew(name="一号站维修班", stations=[st_in])
        other_crew = make_crew(name="二号站维修班", stations=[st_out])
        town = Town(
            c_in, st_in, c_out, st_out, crew, other_crew,
            lead=make_staff(Role.CREW_LEAD, crew=crew, name="李班长"),
            member=make_staff(Role.CREW_MEMBER, crew=crew, name="王师傅"),
            other_member=make_staff(Role.CREW_MEMBER, crew=other_crew, name="赵师傅"),
            leader=make_staff(Role.LEADER, name="值班领导", on_duty=True),
        )
        for i in range(inside):
            town.inside.append(make_household(community=c_in, station=st_in, building=str(i % 5 + 1),
                                              owner_phone=f"1360000{i:04d}", account_no=f"IN{i:06d}"))
        for i in range(outside):
            town.outside.append(make_household(community=c_out, station=st_out,
                                               owner_phone=f"1370000{i:04d}", account_no=f"OUT{i:05d}"))
        db.session.commit()
        return town

    return make


def start_outage(db, community, hours=4):
    outage = outages.create_outage(
        title="暖山小区管网抢修", kind="unplanned", reason="一次网管道爆裂", starts_at=utcnow() - timedelta(minutes=5),
        expected_end_at=utcnow() + timedelta(hours=hours), areas=[{"community_id": community.id}])
    db.session.commit()
    return outage


def bind(db, household, *, oa_openid=None, mp_openid=None, nickname="住户") -> WechatUser:
    user = WechatUser(oa_openid=oa_openid, mp_openid=mp_openid, subscribed=True, nickname=nickname)
    db.session.add(user)
    db.session.flush()
    db.session.add(HouseholdBinding(wechat_user_id=user.id, household_id=household.id, proof="owner_name"))
    return user


def outbox_rows(db, topic):
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == topic)
                                   .order_by(OutboxMessage.id)))


class SignedPhone:
    """The phone system posting signed ticket events to the live server over HTTP."""

    def __init__(self, app, base_url: str):
        self.secret, self.base_url = app.config["BRIDGE_SECRET"], base_url

    def post_ticket(self, payload: dict):
        import json

        import requests

        from app.bridge.signing import sign_headers

        body = json.dumps(payload, ensure_ascii=False).encode()
        return requests.post(f"{self.base_url}/bridge/v1/tickets", data=body, timeout=30,
                             headers={"Content-Type": "application/json", **sign_headers(self.secret, body)})


@pytest.fixture()
def signed_phone(app, live_app):
    return SignedPhone(app, live_app.url)


@pytest.fixture()
def status_receiver(app, monkeypatch):
    from tests.bridge.conftest import Receiver

    r = Receiver(app.config["BRIDGE_SECRET"])
    monkeypatch.setitem(app.config, "BRIDGE_OUTBOUND_URL", r.url)
    yield r
    r.stop()


def mp_login(wechat, live_app, openid: str) -> str:
    """wx.login in the mini-program: a one-time code from the sandbox, exchanged for our token."""
    import requests

    code = wechat._post(f"/users/{openid}/login-code")["code"]
    answer = requests.post(f"{live_app.url}/api/v1/auth/login", json={"code": code}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


def mp_post(live_app, token: str, path: str, *, form: dict | None = None, json: dict | None = None):
    import requests

    headers = {"Authorization": f"Bearer {token}"}
    if form is not None:  # multipart/form-data, as wx.uploadFile / the mini-program sends it
        return requests.post(f"{live_app.url}{path}", headers=headers, timeout=30,
                             files={k: (None, str(v)) for k, v in form.items()})
    return requests.post(f"{live_app.url}{path}", headers=headers, json=json or {}, timeout=30)
