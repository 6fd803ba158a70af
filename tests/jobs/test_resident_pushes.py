"""Residents kept informed: one push per ticket change, held in quiet hours (never for
emergencies), never twice — through the outbox, the worker and the WeChat sandbox."""
from datetime import datetime, time, timedelta, timezone

import pytest
from sqlalchemy import select

from app.models import OutboxMessage, OutboxStatus, Role, TicketCategory, TicketSource, TicketType
from app.services import tickets
from app.services.actors import Actor
from jobs.outbox import deliver_outbox_message, sweep_outbox
from jobs.resident_pushes import push_ticket_change
from tests.jobs.conftest import card, template_titles

QUIET = (time(22, 0), time(7, 0))
LATE_EVENING = datetime(2026, 11, 25, 15, 30, tzinfo=timezone.utc)   # 23:30 in Beijing
NEXT_MORNING = datetime(2026, 11, 25, 23, 0, tzinfo=timezone.utc)    # 07:00 in Beijing


@pytest.fixture()
def town(db, make_resident, make_crew, make_staff):
    """A bound resident, two crews (a lead and a member each) and an agent."""
    openid, user, home = make_resident()
    crew = make_crew(name="和平一班")
    other = make_crew(name="和平二班")
    people = {
        "agent": make_staff(Role.AGENT, name="客服小李"),
        "member": make_staff(Role.CREW_MEMBER, crew=crew, name="张志强"),
        "lead": make_staff(Role.CREW_LEAD, crew=crew, name="王班长"),
        "other": make_staff(Role.CREW_MEMBER, crew=other, name="刘建国"),
    }
    db.session.commit()
    return {"openid": openid, "user": user, "home": home, "crew": crew, "other_crew": other, **people}


def _report(town, category=TicketCategory.NO_HEAT):
    return tickets.create_ticket(Actor.of_resident(town["user"]), type=TicketType.REPAIR,
                                 source=TicketSource.OFFICIAL_ACCOUNT, description="卧室暖气片不热",
                                 category=category, household=town["home"])


def _as(town, who):
    return Actor.of_staff(town[who]) if who != "resident" else Actor.of_resident(town["user"])


def test_each_change_reaches_the_resident_once_with_a_link_to_the_ticket_page(app, db, wechat, worker, town):
    t = _report(town)
    db.session.commit()
    steps = [
        lambda: tickets.assign_ticket(t, _as(town, "agent"), crew=town["crew"], staff=town["member"]),
        lambda: tickets.accept_ticket(t, _as(town, "member")),
        lambda: tickets.forward_ticket(t, _as(town, "member"), reason="不属于本班组片区", crew=town["other_crew"],
                                       staff=town["other"]),
        lambda: tickets.accept_ticket(t, _as(town, "other")),
        lambda: tickets.reply_ticket(t, _as(town, "other"), "已排气，暖气恢复"),
        lambda: tickets.close_ticket(t, _as(town, "agent"), "已修复，如有问题请再联系"),
        lambda: tickets.reopen_ticket(t, _as(town, "resident"), "暖气还是不热"),
    ]
    for step in steps:
        step()
        db.session.commit()
        worker()

    inbox = wechat.inbox(town["openid"])
    assert template_titles(inbox) == ["维修派单通知", "工单进度通知", "维修派单通知", "工单进度通知", "工单进度通知",
                                      "工单进度通知", "维修派单通知"]
    assigned, accepted, forwarded, _, replied, closed, reopened = (card(m) for m in inbox)
    assert (assigned["维修班组"], assigned["维修人员"]) == ("和平一班", "张志强") and assigned["预计响应"]
    assert accepted["工单状态"] == "已接单" and "张志强" in accepted["处理结果"]
    assert (forwarded["维修班组"], forwarded["维修人员"]) == ("和平二班", "刘建国")
    assert "不属于本班组片区" in forwarded["说明"]
    assert (replied["工单状态"], replied["处理结果"]) == ("已回复", "已排气，暖气恢复")
    assert closed["工单状态"] == "已办结" and reopened["维修班组"] == "和平二班"
    url = f"{app.config['PUBLIC_BASE_URL']}/t/{t.number}"
    assert all(m["url"] == url for m in inbox)

    # At-least-once delivery: every row delivered again, and a repeated event, send nothing more.
    rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "notify.ticket_change")).all()
    assert len(rows) == 7 and {r.status for r in rows} == {OutboxStatus.DONE}
    for row in rows:
        push_ticket_change(dict(row.payload), row.id)
        row.status = OutboxStatus.PENDING
    db.session.commit()
    for row in rows:
        deliver_outbox_message(row.id)
    tickets.resident_notices.record_ticket_change(t, t.events[-1])
    db.session.commit()
    worker()
    assert len(wechat.inbox(town["openid"])) == 7


def test_changes_the_resident_is_not_told_about_send_nothing(db, wechat, worker, town):
    t = _report(town)
    tickets.assign_ticket(t, _as(town, "agent"), crew=town["crew"], staff=town["member"])
    tickets.accept_ticket(t, _as(town, "member"))
    db.session.commit()
    worker()
    tickets.add_progress_note(t, _as(town, "member"), "正在检查阀门")
    tickets.change_priority(t, _as(town, "agent"), "urgent", "老人独居")
    db.session.commit()
    worker()
    assert len(wechat.inbox(town["openid"])) == 2


def test_pushes_wait_for_the_end_of_quiet_hours(app, db, wechat, worker, town, clock, monkeypatch):
    monkeypatch.setitem(app.config, "QUIET_HOURS", QUIET)
    clock.travel_to(LATE_EVENING)
    t = _report(town)
    tickets.assign_ticket(t, _as(town, "agent"), crew=town["crew"], staff=town["member"])
    db.session.commit()
    worker()
    assert wechat.inbox(town["openid"]) == []
    row = db.session.scalar(select(OutboxMessage).where(OutboxMessage.topic == "notify.ticket_change"))
    db.session.refresh(row)
    assert row.status == OutboxStatus.PENDING and row.available_at == NEXT_MORNING
    assert "免打扰" in row.last_error

    clock.travel_to(NEXT_MORNING - timedelta(minutes=5))   # 06:55: still held
    sweep_outbox()
    worker()
    assert wechat.inbox(town["openid"]) == []

    clock.travel_to(NEXT_MORNING + timedelta(minutes=1))   # 07:01: sent, once
    assert sweep_outbox() == 1
    worker()
    sweep_outbox()
    worker()
    assert template_titles(wechat.inbox(town["openid"])) == ["维修派单通知"]


def test_emergency_tickets_are_never_held(app, db, wechat, worker, town, clock, monkeypatch):
    monkeypatch.setitem(app.config, "QUIET_HOURS", QUIET)
    clock.travel_to(LATE_EVENING)
    t = _report(town, category=TicketCategory.LEAK)
    tickets.assign_ticket(t, _as(town, "agent"), crew=town["crew"], staff=town["member"])
    db.session.commit()
    worker()
    (pushed,) = wechat.inbox(town["openid"])
    assert pushed["title"] == "维修派单通知" and card(pushed)["工单编号"] == t.number


def test_quiet_hours_may_be_switched_off(app, db, wechat, worker, town, clock, monkeypatch):
    monkeypatch.setitem(app.config, "QUIET_HOURS", None)
    clock.travel_to(LATE_EVENING)
    t = _report(town)
    tickets.assign_ticket(t, _as(town, "agent"), crew=town["crew"], staff=town["member"])
    db.session.commit()
    worker()
    assert len(wechat.inbox(town["openid"])) == 1


def test_a_phone_ticket_tells_the_households_bound_residents(db, wechat, worker, town, make_resident):
    second, _, _ = make_resident(town["home"])
    t = tickets.create_ticket(Actor.phone("话务员小王"), type=TicketType.REPAIR, source=TicketSource.PHONE,
                              description="暖气不热", household=town["home"], caller_phone="13800138000")
    tickets.assign_ticket(t, Actor.phone(), crew=town["crew"], staff=town["member"])
    db.session.commit()
    worker()
    for openid in (town["openid"], second):
        assert template_titles(wechat.inbox(openid)) == ["维修派单通知"]
