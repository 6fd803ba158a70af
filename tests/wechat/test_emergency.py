"""Emergencies in a resident's own words, through the real callback and the sandbox."""
import pytest
from sqlalchemy import func, select

from app.models import OutboxMessage, Priority, Ticket, TicketCategory, TicketEvent
from tests.wechat.residents import bound_resident, crewed_home


def _alerts(db):
    return sorted(m.payload["staff_id"] for m in db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.topic == "notify.emergency_alert")))


@pytest.mark.parametrize("words, category", [
    ("暖气漏水了，快来人", TicketCategory.LEAK),
    ("暖气管子爆了", TicketCategory.BURST_PIPE),
    ("家里暖气管爆了，水一直往外喷，怎么办", TicketCategory.BURST_PIPE),
    ("天花板滴水", TicketCategory.LEAK),
])
def test_an_emergency_in_words_opens_an_emergency_ticket_at_once_and_alerts_lead_and_leader_on_duty(
        db, wechat, app, make_household, make_crew, make_staff, words, category):
    home, crew, member, lead, leader = crewed_home(make_household, make_crew, make_staff)
    openid, user = bound_resident(db, wechat, home)

    reply = wechat.say(openid, words)

    db.session.expire_all()
    [ticket] = db.session.scalars(select(Ticket)).all()
    assert ticket.priority == Priority.EMERGENCY and ticket.category == category
    assert ticket.reporter_id == user.id and ticket.household_id == home.id and ticket.description == words
    assert ticket.crew_id == crew.id
    assert _alerts(db) == sorted([lead.id, leader.id])  # not the leader off duty
    assert ticket.number in reply and app.config["HOTLINE_NUMBER"] in reply
    assert "阀门" in reply and "烫" in reply  # short safety advice


def test_the_same_emergency_written_again_adds_to_the_open_ticket(db, wechat, make_household, make_crew, make_staff):
    home, *_ = crewed_home(make_household, make_crew, make_staff)
    openid, _ = bound_resident(db, wechat, home)
    first = wechat.say(openid, "暖气漏水了")
    second = wechat.say(openid, "水越来越多了，快来人啊，地上全是水")

    db.session.expire_all()
    [ticket] = db.session.scalars(select(Ticket)).all()
    assert ticket.number in first and ticket.number in second
    notes = db.session.scalars(select(TicketEvent.note).where(TicketEvent.action == "resident_note")).all()
    assert notes == ["水越来越多了，快来人啊，地上全是水"]


def test_gas_smell_gives_the_gas_companys_number_and_opens_no_ticket(db, wechat, app, monkeypatch, make_household,
                                                                     make_crew, make_staff):
    home, *_ = crewed_home(make_household, make_crew, make_staff)
    openid, _ = bound_resident(db, wechat, home)
    monkeypatch.setitem(app.config, "GAS_COMPANY_HOTLINE", "96655")
    reply = wechat.say(openid, "有煤气味")
    assert "96655" in reply and "开窗通风" in reply and "电器" in reply
    assert db.session.scalar(select(func.count(Ticket.id))) == 0
    assert _alerts(db) == []


def test_an_unbound_residents_emergency_gets_the_hotline_advice_and_how_to_bind(db, wechat, app):
    person = wechat.create_user()
    reply = wechat.say(person["openid"], "暖气管子爆了，水一直往外喷")
    assert app.config["HOTLINE_NUMBER"] in reply and "地址" in reply and "绑定" in reply and "阀门" in reply
    assert db.session.scalar(select(func.count(Ticket.id))) == 0


def test_the_hotline_number_comes_from_the_setting(db, wechat, app, monkeypatch, make_household, make_crew,
                                                   make_staff):
    home, *_ = crewed_home(make_household, make_crew, make_staff)
    openid, _ = bound_resident(db, wechat, home)
    monkeypatch.setitem(app.config, "HOTLINE_NUMBER", "0411-96001")
    assert "0411-96001" in wechat.say(openid, "热水烫")
