"""Factory fixtures: small, explicit builders of domain rows for tests.

Each factory adds and flushes (so ids exist) but never commits: the test decides.
"""
from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

import pytest

from app import phones
from app.models import (
    Community, Crew, CrewArea, District, HeatingSeason, Household, HouseholdBinding, Role, Staff, Station,
    WechatUser,
)

_seq = itertools.count(1)


@pytest.fixture()
def make_area(db):
    """Returns (district, community, station) — a community served by a station."""

    def make(district="和平区", community=None, station=None):
        n = next(_seq)
        d = db.session.query(District).filter_by(name=district).one_or_none() or District(name=district)
        st = Station(code=f"HR{n:03d}", name=station or f"测试换热站{n}")
        c = Community(district=d, name=community or f"测试小区{n}", station=st)
        db.session.add_all([d, st, c])
        db.session.flush()
        return d, c, st

    return make


@pytest.fixture()
def make_household(db, make_area):
    def make(community=None, station=None, area_m2="89.50", owner_name="张伟", owner_phone="13800138000",
             building="1", unit="1", room=None, **kw):
        if community is None:
            _, community, station = make_area()
        n = next(_seq)
        h = Household(
            account_no=kw.pop("account_no", f"R{n:08d}"),
            district_id=community.district_id, community_id=community.id,
            station_id=(station.id if station else community.station_id),
            building=building, unit=unit, room=room or f"{n % 30 + 101}",
            area_m2=Decimal(area_m2), owner_name=owner_name,
            owner_phone=phones.normalise(owner_phone) if owner_phone else None, **kw,  # stored as E.164
        )
        db.session.add(h)
        db.session.flush()
        return h

    return make


@pytest.fixture()
def make_crew(db):
    def make(name=None, stations=(), communities=()):
        crew = Crew(name=name or f"维修{next(_seq)}班")
        for st in stations:
            crew.areas.append(CrewArea(station_id=st.id))
        for c in communities:
            crew.areas.append(CrewArea(community_id=c.id))
        db.session.add(crew)
        db.session.flush()
        return crew

    return make


@pytest.fixture()
def make_staff(db):
    def make(role=Role.AGENT, crew=None, name=None, password=None, **kw):
        n = next(_seq)
        s = Staff(username=kw.pop("username", f"user{n}"), name=name or f"员工{n}", role=role,
                  crew_id=crew.id if crew else None, phone=phones.normalise(kw.pop("phone", f"139{n:08d}")), **kw)
        if password:
            s.set_password(password)
        db.session.add(s)
        db.session.flush()
        return s

    return make


@pytest.fixture()
def make_season(db):
    def make(code="2026-2027", unit_price_fen=2400, due_on=date(2026, 11, 30),
             starts_on=date(2026, 11, 15), ends_on=date(2027, 3, 15), late_fee_bp_per_day=None):
        s = HeatingSeason(code=code, unit_price_fen=unit_price_fen, due_on=due_on, starts_on=starts_on,
                          ends_on=ends_on, late_fee_bp_per_day=late_fee_bp_per_day)
        db.session.add(s)
        db.session.flush()
        return s

    return make


@pytest.fixture()
def make_wechat_user(db):
    """``make_wechat_user(household=None, **columns)``: a WechatUser the sandbox does not know
    (no WeChat traffic in the test), following, bound to ``household`` if given."""

    def make(household: Household | None = None, **kw):
        n = next(_seq)
        u = WechatUser(oa_openid=kw.pop("oa_openid", f"oTEST{n:024d}"), subscribed=kw.pop("subscribed", True), **kw)
        db.session.add(u)
        db.session.flush()
        if household is not None:
            db.session.add(HouseholdBinding(wechat_user_id=u.id, household_id=household.id, proof="owner_name"))
            db.session.flush()
        return u

    return make


def bind_wechat_user(db, wechat, *, staff: Staff | None = None, household: Household | None = None,
                     follow: bool = True, nickname: str | None = None, mini_program: bool = True,
                     **user_kw) -> tuple[dict, WechatUser]:
    """A person of the WeChat sandbox (``wechat``: its driver) known to us: their WechatUser
    (following or not; with the mini-program openid unless ``mini_program=False``), bound to
    ``staff`` and/or to ``household`` (proved by the owner's name). Returns (the sandbox person,
    the WechatUser); flushes, never commits."""
    person = wechat.create_user(follow=follow, **({"nickname": nickname} if nickname else {}))
    user_kw.setdefault("subscribed", follow)
    user = WechatUser(oa_openid=person["openid"], mp_openid=person["mp_openid"] if mini_program else None,
                      nickname=nickname, staff_id=staff.id if staff is not None else None, **user_kw)
    db.session.add(user)
    db.session.flush()
    if household is not None:
        db.session.add(HouseholdBinding(wechat_user_id=user.id, household_id=household.id, proof="owner_name"))
        db.session.flush()
    return person, user


@pytest.fixture()
def bind_wechat(db, wechat):
    """``bind_wechat(staff=..., household=..., follow=..., nickname=...)`` → (person, WechatUser):
    ``bind_wechat_user`` with this test's sandbox."""

    def bind(**kw):
        return bind_wechat_user(db, wechat, **kw)

    return bind
