"""The reminder ladder (限时提醒及催办) with shifted time, and each step once across
schedulers, workers and re-runs."""
import itertools
from datetime import timedelta

from sqlalchemy import func, select

from app.models import (
    ReminderSent, Role, Ticket, TicketSource, TicketState, TicketType, utcnow,
)
from app.services import tickets as ticket_service
from app.services.actors import Actor
from jobs import reminders
from tests.jobs.conftest import card, wait_until
from wechat import templates

_numbers = itertools.count(1)


def _people(db, make_crew, make_staff, bind_staff):
    crew = make_crew()
    member = make_staff(Role.CREW_MEMBER, crew=crew, name="王师傅")
    lead = make_staff(Role.CREW_LEAD, crew=crew, name="李班长")
    leader = make_staff(Role.LEADER, name="赵经理", on_duty=True)
    make_staff(Role.LEADER, name="休班领导", on_duty=False)
    openids = {"member": bind_staff(member), "lead": bind_staff(lead), "leader": bind_staff(leader)}
    return crew, member, openids


def _ticket(db, crew, assignee, *, respond_by, finish_by, state=TicketState.ASSIGNED):
    t = Ticket(number=f"GD20261123-{next(_numbers):06d}", source=TicketSource.PHONE, type=TicketType.REPAIR,
               category="no_heat", state=state, description="暖气不热", crew_id=crew.id, assignee_id=assignee.id,
               address="和平区测试小区1号楼", respond_by=respond_by, finish_by=finish_by)
    db.session.add(t)
    db.session.commit()
    return t


def _titles(wechat, openid):
    """The ladder steps a person received, as the cards read: the template's title, then the
    reminder type (工单超时提醒: 即将超时 / 已到时限) or the overdue type (工单催办提醒)."""
    steps = []
    for m in wechat.inbox(openid):
        shown = card(m)
        if m.get("title") == "工单超时提醒":
            steps.append(f"{shown['提醒类型']}·{shown['时限类型']}")
        elif m.get("title") == "工单催办提醒":
            steps.append(f"超时催办·{shown['超时类型']}")
    return steps


def test_ladder_fires_in_order_and_stops_when_the_ticket_moves_on(
        db, wechat, worker, make_crew, make_staff, bind_staff):
    crew, member, who = _people(db, make_crew, make_staff, bind_staff)
    t0 = utcnow().replace(microsecond=0)
    ticket = _ticket(db, crew, member, respond_by=t0 + timedelta(minutes=30), finish_by=t0 + timedelta(hours=4))
    number = ticket.number

    def at(minutes):
        reminders.scan_deadlines(now=t0 + timedelta(minutes=minutes))
        worker()

    at(-5)                       # 35 minutes before respond-by: nothing yet
    assert all(_titles(wechat, o) == [] for o in who.values())
    at(1)                        # 29 minutes before: the assignee is reminded
    assert _titles(wechat, who["member"]) == ["即将超时·响应时限"]
    (first,) = [card(m) for m in wechat.inbox(who["member"])]
    assert first["工单编号"] == number and first["截止时间"] == templates.time_text(ticket.respond_by)
    assert _titles(wechat, who["lead"]) == []
    at(2)                        # the same step again: nothing more
    assert len(_titles(wechat, who["member"])) == 1
    at(31)                       # the deadline: the assignee and the crew lead
    assert _titles(wechat, who["member"])[-1] == "已到时限·响应时限"
    assert _titles(wechat, who["lead"]) == ["已到时限·响应时限"]
    assert _titles(wechat, who["leader"]) == []
    at(91)                       # an hour past it: the leader on duty
    assert _titles(wechat, who["leader"]) == ["超时催办·响应超时"]
    assert card(wechat.inbox(who["leader"])[0])["处理人"] == "王师傅"

    ticket_service.accept_ticket(db.session.get(Ticket, ticket.id), Actor.of_staff(member))
    db.session.commit()
    at(215)                      # accepted: the respond-by ladder is over; finish-by in 25 min
    assert _titles(wechat, who["member"])[-1] == "即将超时·办结时限"
    ticket_service.reply_ticket(db.session.get(Ticket, ticket.id), Actor.of_staff(member), "已处理，阀门已打开")
    db.session.commit()
    at(400)                      # replied: nothing more, even long past finish-by
    assert len(_titles(wechat, who["member"])) == 3
    assert len(_titles(wechat, who["lead"])) == 1
    assert len(_titles(wechat, who["leader"])) == 1


def test_a_late_scan_skips_the_warning_and_sends_due_and_overdue_once(
        db, wechat, worker, make_crew, make_staff, bind_staff):
    crew, member, who = _people(db, make_crew, make_staff, bind_staff)
    now = utcnow()
    _ticket(db, crew, member, respond_by=now - timedelta(hours=3), finish_by=now + timedelta(days=1))
    assert reminders.scan_deadlines(now=now) == 2      # due + overdue of respond-by
    assert reminders.scan_deadlines(now=now) == 0
    worker()
    assert _titles(wechat, who["member"]) == ["已到时限·响应时限"]
    assert _titles(wechat, who["leader"]) == ["超时催办·响应超时"]
    assert db.session.scalar(select(func.count()).select_from(ReminderSent)) == 2


def test_two_workers_with_cron_schedulers_send_each_reminder_once(
        db, wechat, make_crew, make_staff, bind_staff, start_worker, redis):
    crew, member, who = _people(db, make_crew, make_staff, bind_staff)
    now = utcnow()
    _ticket(db, crew, member, respond_by=now + timedelta(minutes=10), finish_by=now + timedelta(days=1))
    _ticket(db, crew, member, respond_by=now - timedelta(hours=3), finish_by=now - timedelta(hours=2))
    # Expected: ticket 1 before(respond) → member; ticket 2 due+overdue of both deadlines.
    expected = {"member": 1 + 2, "lead": 2, "leader": 2}
    start_worker("--with-cron")
    start_worker("--with-cron")
    reminders.scan_deadlines()  # and a third scan racing them from here

    def arrived():
        return all(len(_titles(wechat, who[k])) >= n for k, n in expected.items())

    wait_until(arrived, timeout=90, what="the reminders")
    import time

    time.sleep(3)  # room for any duplicate to show up
    assert {k: len(_titles(wechat, o)) for k, o in who.items()} == expected
    assert db.session.scalar(select(func.count()).select_from(ReminderSent)) == 5
