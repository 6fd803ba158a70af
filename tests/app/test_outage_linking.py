"""The rules around linking: what is linked and what is not, held and resumed clocks, the
"still cold" window, the evidence rule, and the dashboard's linked report counts."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.errors import InvalidTransitionError, ValidationError
from app.models import EvidenceRule, Ticket, TicketState, utcnow
from app.services import metrics, outage_linking, outages, tickets
from app.services.actors import Actor
from tests.app.conftest import outbox_rows, start_outage
from tests.factories import bind_wechat_user


@pytest.fixture()
def resident_report(make_wechat_user):
    """``resident_report(household, category=..., type=...)`` → (the bound resident, their ticket)."""

    def report(household, category="no_heat", type="repair"):
        user = make_wechat_user(household=household, nickname="住户")
        return user, tickets.create_ticket(Actor.of_resident(user), type=type, source="mini_program",
                                           description="暖气问题", category=category, household=household)

    return report


def test_other_categories_in_an_outage_area_are_dispatched_with_the_outage_noted(db, make_town, resident_report):
    town = make_town(inside=3, outside=0)
    outage = start_outage(db, town.inside_community)
    _, leak = resident_report(town.inside[0], category="leak")
    _, inquiry = resident_report(town.inside[1], category="no_heat", type="inquiry")
    db.session.commit()
    assert leak.outage_id is None and leak.state == TicketState.ASSIGNED and leak.crew_id == town.crew.id
    created = leak.events[0]
    assert created.data["outage_id"] == outage.id and outage.title in created.note
    assert [m.payload["ticket_id"] for m in outbox_rows(db, "notify.task_assigned")] == [leak.id]
    assert inquiry.outage_id is None  # a question is not a report of the outage


def test_a_linked_report_holds_its_clock_and_gets_fresh_deadlines_when_still_cold(db, make_town, resident_report):
    town = make_town(inside=2, outside=0)
    outage = start_outage(db, town.inside_community)
    user, ticket = resident_report(town.inside[0])
    db.session.commit()
    assert ticket.outage_id == outage.id and ticket.respond_by is None and ticket.finish_by is None
    assert ticket.sla_held_at is not None and ticket.crew_id is None

    with pytest.raises(InvalidTransitionError, match="停热尚未恢复"):
        outage_linking.report_still_cold(ticket, Actor.of_resident(user))
    outage_linking.restore_outage(outage.id, at=utcnow() - timedelta(hours=2))
    db.session.commit()
    now = utcnow()
    outage_linking.report_still_cold(ticket, Actor.of_resident(user), now=now)
    db.session.commit()
    assert ticket.state == TicketState.ASSIGNED and ticket.crew_id == town.crew.id and ticket.sla_held_at is None
    assert ticket.respond_by > now and ticket.finish_by > ticket.respond_by   # counted from now, not from the report
    assert [e.action for e in ticket.events][-2:] == ["still_cold", "assigned"]
    assert [m.payload["ticket_id"] for m in outbox_rows(db, "notify.task_assigned")] == [ticket.id]


def test_still_cold_after_the_window_is_refused_and_the_ticket_closes(app, db, make_town, resident_report):
    town = make_town(inside=1, outside=0)
    outage = start_outage(db, town.inside_community)
    user, ticket = resident_report(town.inside[0])
    hours = app.config["OUTAGE_STILL_COLD_HOURS"]
    outage_linking.restore_outage(outage.id, at=utcnow() - timedelta(hours=hours + 1))
    db.session.commit()
    with pytest.raises(InvalidTransitionError, match="反馈时间已过"):
        outage_linking.report_still_cold(ticket, Actor.of_resident(user))
    assert outage_linking.close_unconfirmed() == 1
    assert ticket.state == TicketState.CLOSED and ticket.closed_at is not None
    # a system close does not message the resident again (the restoration notice said so)
    assert outbox_rows(db, "notify.ticket_change") == []


def test_the_window_is_configurable(app, db, make_town, monkeypatch, resident_report):
    monkeypatch.setitem(app.config, "OUTAGE_STILL_COLD_HOURS", 1)
    town = make_town(inside=1, outside=0)
    outage = start_outage(db, town.inside_community)
    _, ticket = resident_report(town.inside[0])
    outage_linking.restore_outage(outage.id, at=utcnow() - timedelta(minutes=90))
    db.session.commit()
    assert outbox_rows(db, "notify.outage_restored")[0].payload["until"] < utcnow().isoformat()
    assert outage_linking.close_unconfirmed() == 1


def test_the_evidence_rule_requires_a_photo_from_the_crew_before_replying(db, make_town, resident_report):
    town = make_town(inside=1, outside=0)
    # The migration seeds leak → 1 photo (editable data).
    assert db.session.scalar(select(EvidenceRule.min_photos).where(EvidenceRule.category == "leak")) == 1
    _, ticket = resident_report(town.inside[0], category="leak")
    member = Actor.of_staff(ticket.assignee)
    tickets.accept_ticket(ticket, member)
    with pytest.raises(ValidationError) as err:
        tickets.reply_ticket(ticket, member, "已更换阀门")
    assert "漏水" in err.value.message and "至少1张现场照片" in err.value.message
    assert err.value.code == "evidence_required" and "photos" in err.value.fields
    assert ticket.state == TicketState.ACCEPTED
    tickets.reply_ticket(ticket, member, "已更换阀门", photos=["MEDIA-AFTER"])
    assert ticket.state == TicketState.REPLIED


def test_a_photo_sent_earlier_by_the_crew_counts_and_rules_are_per_category(db, make_town, resident_report):
    town = make_town(inside=2, outside=0)
    db.session.execute(update(EvidenceRule).where(EvidenceRule.category == "burst_pipe").values(min_photos=2))
    _, pipe = resident_report(town.inside[0], category="burst_pipe")
    _, noise = resident_report(town.inside[1], category="noise")
    member = Actor.of_staff(pipe.assignee)
    tickets.accept_ticket(pipe, member)
    tickets.add_progress_note(pipe, member, "到场", photos=["BEFORE"])
    with pytest.raises(ValidationError, match="至少2张"):
        tickets.reply_ticket(pipe, member, "已焊接", photos=["BEFORE"])  # the same photo again is not a second
    tickets.reply_ticket(pipe, member, "已焊接", photos=["AFTER"])
    tickets.accept_ticket(noise, Actor.of_staff(noise.assignee))
    tickets.reply_ticket(noise, Actor.of_staff(noise.assignee), "已排气")  # no rule for noise


def test_the_migration_seeds_leak_and_burst_pipe_rules():
    import importlib.util

    from app.config import PROJECT_ROOT

    spec = importlib.util.spec_from_file_location(
        "m0007", PROJECT_ROOT / "migrations" / "versions" / "0007_outage_linking.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert dict(module.EVIDENCE_RULES) == {"leak": 1, "burst_pipe": 1}


def test_the_dashboard_shows_outages_with_their_linked_report_counts(db, make_town, resident_report):
    town = make_town(inside=4, outside=0)
    outage = start_outage(db, town.inside_community)
    for household in town.inside[:3]:
        resident_report(household)
    db.session.commit()
    [row] = metrics.dashboard_summary()["outages"]
    assert row["id"] == outage.id and row["linked_reports"] == 3 and row["waiting_reports"] == 3
    assert row["households"] == 4


def test_an_official_account_resident_reporting_twice_gets_one_ticket(db, wechat, make_town):
    town = make_town(inside=1, outside=0)
    outage = start_outage(db, town.inside_community)
    person, _ = bind_wechat_user(db, wechat, household=town.inside[0], mini_program=False)
    db.session.commit()
    first = wechat.say(person["openid"], "家里暖气不热")
    second = wechat.say(person["openid"], "报修 暖气一点都不热")
    db.session.expire_all()
    [ticket] = db.session.scalars(select(Ticket)).all()
    assert ticket.number in first and ticket.number in second and "无需重复报修" in second
    assert outages.local_time(outage.expected_end_at) in second
    # "还冷" before the restore just repeats the outage
    assert "停热尚未恢复" in wechat.say(person["openid"], "还冷")


def test_an_unbound_question_about_a_cold_radiator_still_gets_the_faq(db, wechat):
    person = wechat.create_user(follow=True)
    reply = wechat.say(person["openid"], "家里暖气不热")
    assert db.session.scalar(select(Ticket)) is None
    assert reply  # the FAQ (or the offer of a person), never a ticket without a household


def test_a_later_phone_event_changing_priority_keeps_the_clock_held(db, make_town):
    town = make_town(inside=1, outside=0)
    start_outage(db, town.inside_community)
    ticket = tickets.create_ticket(Actor.phone(), type="repair", source="phone", description="不热",
                                   category="no_heat", household=town.inside[0], external_id="CC-1")
    tickets.update_details(ticket, Actor.phone(), priority="urgent")
    assert ticket.priority == "urgent" and ticket.finish_by is None and ticket.sla_held_at is not None
