"""The ticket lifecycle: who may do what, from which state, and what each change records."""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from app.errors import (
    ConflictError, InvalidTransitionError, NotFoundError, PermissionDeniedError, ValidationError,
)
from app.extensions import db as _db
from app.models import (
    Crew, Household, HouseholdBinding, OutboxMessage, Priority, Role, Staff, Ticket, TicketCategory,
    TicketEvent, TicketPhoto, TicketSource, TicketState, TicketType, WechatUser, utcnow,
)
from app.services.actors import Actor
from app.services.tickets import (
    REOPEN_WINDOW, PhotoInput, accept_ticket, add_progress_note, assign_ticket, cancel_ticket,
    change_priority, close_ticket, create_ticket, forward_ticket, get_ticket, next_ticket_number,
    open_defect_order, record_visit, reopen_ticket, reply_ticket, start_progress,
)
from app.services.ratings import rate_ticket

S = TicketState


# --- a small world: one household, its crew, another crew, staff of every role, residents ----

@dataclass
class World:
    household: Household
    crew: Crew
    other_crew: Crew
    people: dict

    def __getitem__(self, who: str) -> Staff | WechatUser:
        return self.people[who]

    def actor(self, who: str) -> Actor:
        if who == "system":
            return Actor.system()
        person = self.people[who]
        return Actor.of_resident(person) if isinstance(person, WechatUser) else Actor.of_staff(person)


ROLES = ("member", "member2", "lead", "other_lead", "agent", "leader", "admin", "resident", "stranger", "system")


@pytest.fixture()
def world(db, make_area, make_household, make_crew, make_staff, make_wechat_user):
    _, community, station = make_area()
    household = make_household(community=community, station=station)
    crew = make_crew(stations=[station])
    other_crew = make_crew()
    people = {
        # created first: the least-loaded member with the lowest id gets routed repairs
        "member": make_staff(Role.CREW_MEMBER, crew, name="李师傅"),
        "member2": make_staff(Role.CREW_MEMBER, crew),
        "lead": make_staff(Role.CREW_LEAD, crew),
        "other_member": make_staff(Role.CREW_MEMBER, other_crew),
        "other_lead": make_staff(Role.CREW_LEAD, other_crew),
        "agent": make_staff(Role.AGENT),
        "leader": make_staff(Role.LEADER, on_duty=True),
        "admin": make_staff(Role.ADMIN),
        "resident": make_wechat_user(nickname="王女士"),
        "stranger": make_wechat_user(),
    }
    db.session.add(HouseholdBinding(wechat_user_id=people["resident"].id, household_id=household.id,
                                    proof="owner_name"))
    db.session.flush()
    return World(household, crew, other_crew, people)


def report(w: World, **kw) -> Ticket:
    fields = dict(type=TicketType.REPAIR, source=TicketSource.MINI_PROGRAM, description="暖气不热",
                  category=TicketCategory.NO_HEAT, household=w.household)
    fields.update(kw)
    return create_ticket(w.actor("resident"), **fields)


def ticket_in(w: World, state: str, **kw) -> Ticket:
    """A repair reported by the resident, brought to ``state`` through the real path."""
    if state == S.NEW:
        return report(w, household=None, **kw)  # nobody covers it: it waits for an agent
    t = report(w, **kw)
    if state == S.CANCELLED:
        cancel_ticket(t, w.actor("agent"), "重复报修")
        return t
    steps = [
        (S.ACCEPTED, lambda: accept_ticket(t, w.actor("member"))),
        (S.IN_PROGRESS, lambda: start_progress(t, w.actor("member"))),
        (S.REPLIED, lambda: reply_ticket(t, w.actor("member"), "已更换阀门")),
        (S.CLOSED, lambda: close_ticket(t, w.actor("agent"), "已修复，感谢反馈")),
    ]
    for reached, step in steps:
        if t.state == state:
            break
        step()
        assert t.state == reached
    assert t.state == state
    return t


def events_of(db, t: Ticket) -> list[TicketEvent]:
    return list(db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == t.id).order_by(TicketEvent.id)))


def outbox(db, topic: str | None = None) -> list[OutboxMessage]:
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if topic:
        query = query.where(OutboxMessage.topic == topic)
    return list(db.session.scalars(query))


# --- each action: the state used for the permission table, the states it is legal in,
# --- the state it leads to (None: unchanged), the call, and who may do it --------------

@dataclass(frozen=True)
class Action:
    state: str
    legal: tuple
    result: str | None
    call: object
    allowed: frozenset


ACTIONS = {
    "assign": Action(S.NEW, (S.NEW, S.ASSIGNED), S.ASSIGNED,
                     lambda w, t, a: assign_ticket(t, a, crew=w.other_crew),
                     frozenset({"agent", "leader", "admin", "system"})),
    "accept": Action(S.ASSIGNED, (S.ASSIGNED,), S.ACCEPTED,
                     lambda w, t, a: accept_ticket(t, a), frozenset({"member", "lead"})),
    "start": Action(S.ACCEPTED, (S.ACCEPTED,), S.IN_PROGRESS,
                    lambda w, t, a: start_progress(t, a), frozenset({"member", "lead"})),
    "note": Action(S.IN_PROGRESS, (S.ACCEPTED, S.IN_PROGRESS), S.IN_PROGRESS,
                   lambda w, t, a: add_progress_note(t, a, "已到现场"), frozenset({"member", "lead"})),
    "reply": Action(S.IN_PROGRESS, (S.ACCEPTED, S.IN_PROGRESS), S.REPLIED,
                    lambda w, t, a: reply_ticket(t, a, "已排气，温度恢复"), frozenset({"member", "lead"})),
    "close": Action(S.REPLIED, (S.REPLIED,), S.CLOSED,
                    lambda w, t, a: close_ticket(t, a, "已修复"), frozenset({"agent", "admin"})),
    "forward": Action(S.ACCEPTED, (S.ASSIGNED, S.ACCEPTED, S.IN_PROGRESS), S.ASSIGNED,
                      lambda w, t, a: forward_ticket(t, a, reason="不属于本班组管辖", crew=w.other_crew),
                      frozenset({"member", "lead", "agent", "admin"})),
    "reopen": Action(S.CLOSED, (S.REPLIED, S.CLOSED), S.ASSIGNED,
                     lambda w, t, a: reopen_ticket(t, a, "暖气还是不热"),
                     frozenset({"agent", "leader", "admin", "resident"})),
    "cancel": Action(S.ASSIGNED, S.OPEN, S.CANCELLED,
                     lambda w, t, a: cancel_ticket(t, a, "已自行解决"), frozenset({"agent", "admin", "resident"})),
    "defect": Action(S.IN_PROGRESS, (S.ACCEPTED, S.IN_PROGRESS, S.REPLIED), None,
                     lambda w, t, a: open_defect_order(t, a, "楼道立管锈蚀，需更换"), frozenset({"member", "lead"})),
    "rate": Action(S.CLOSED, (S.CLOSED,), None,
                   lambda w, t, a: rate_ticket(t, 5, "师傅很专业", source="api", by=a.user), frozenset({"resident"})),
    "visit": Action(S.CLOSED, (S.CLOSED,), None,
                    lambda w, t, a: record_visit(t, a, "住户表示满意", satisfied=True), frozenset({"agent", "admin"})),
    "priority": Action(S.ASSIGNED, S.OPEN, None,
                       lambda w, t, a: change_priority(t, a, Priority.URGENT, "老人独居"),
                       frozenset({"agent", "leader", "admin", "lead"})),
}

PERMISSION_CASES = [(name, role, role in action.allowed) for name, action in ACTIONS.items() for role in ROLES]


@pytest.mark.parametrize("name, role, allowed", PERMISSION_CASES,
                         ids=[f"{n}-{r}-{'ok' if a else 'denied'}" for n, r, a in PERMISSION_CASES])
def test_only_the_right_people_may_act(db, world, name, role, allowed):
    action = ACTIONS[name]
    t = ticket_in(world, action.state)
    before_state, before_events = t.state, len(events_of(db, t))

    if not allowed:
        with pytest.raises(PermissionDeniedError) as err:
            action.call(world, t, world.actor(role))
        assert "无权" in err.value.message
        assert t.state == before_state
        assert len(events_of(db, t)) == before_events
        return

    action.call(world, t, world.actor(role))
    assert t.state == (action.result or before_state)
    assert len(events_of(db, t)) == before_events + 1  # exactly one event per change


# The acting role per action for the state table: always a permitted one.
STATE_ACTORS = {"assign": "agent", "accept": "member", "start": "member", "note": "member", "reply": "member",
                "close": "agent", "forward": "member", "reopen": "agent", "cancel": "agent", "defect": "member",
                "rate": "resident", "visit": "agent", "priority": "agent"}
STATE_CASES = [(name, state) for name in ACTIONS for state in S.ALL]


def forced(w: World, state: str, type: str = TicketType.REPAIR) -> Ticket:
    """A ticket held by the crew's member, put straight into ``state`` (the rule under test is the state's)."""
    t = report(w, type=type)
    t.crew_id, t.assignee_id, t.state = w.crew.id, w["member"].id, state
    t.replied_at = t.closed_at = utcnow()
    _db.session.flush()
    return t


@pytest.mark.parametrize("name, state", STATE_CASES, ids=[f"{n}-from-{s}" for n, s in STATE_CASES])
def test_each_action_is_legal_only_from_its_states(db, world, name, state):
    action = ACTIONS[name]
    t = forced(world, state)
    actor = world.actor(STATE_ACTORS[name])

    if state in action.legal:
        action.call(world, t, actor)
        assert t.state == (action.result or state)
    else:
        with pytest.raises(InvalidTransitionError) as err:
            action.call(world, t, actor)
        assert S.LABELS[state] in err.value.message
        assert t.state == state


@pytest.mark.parametrize("type", TicketType.DIRECT_CLOSE)
@pytest.mark.parametrize("state", S.ALL)
def test_inquiries_and_suggestions_may_be_closed_directly(db, world, type, state):
    t = forced(world, state, type=type)
    if state in (S.NEW, S.ASSIGNED, S.REPLIED):
        close_ticket(t, world.actor("agent"), "已电话答复")
        assert t.state == S.CLOSED and t.final_answer == "已电话答复"
    else:
        with pytest.raises(InvalidTransitionError):
            close_ticket(t, world.actor("agent"), "已电话答复")


# --- creation -------------------------------------------------------------------------------

def test_ticket_numbers_follow_the_local_day_sequence(db, world):
    evening_utc = datetime(2026, 11, 22, 16, 30, tzinfo=timezone.utc)  # 00:30 on the 23rd in Beijing

    first = report(world, now=evening_utc)
    second = report(world, now=evening_utc + timedelta(minutes=5))
    next_day = report(world, now=evening_utc + timedelta(days=1))

    assert (first.number, second.number, next_day.number) == ("GD20261123-0001", "GD20261123-0002", "GD20261124-0001")


def test_concurrent_creators_never_share_a_number(app, db):
    """Each thread has its own session and transaction (a real race on PostgreSQL)."""
    numbers, errors = [], []
    now = datetime(2026, 12, 1, 3, 0, tzinfo=timezone.utc)
    barrier = threading.Barrier(6)

    def take():
        with app.app_context():
            try:
                barrier.wait()
                numbers.append(next_ticket_number(now))
                db.session.commit()
            except Exception as exc:  # surfaced below
                errors.append(exc)
                db.session.rollback()
            finally:
                db.session.remove()

    threads = [threading.Thread(target=take) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()

    assert not errors
    assert sorted(numbers) == [f"GD20261201-{i:04d}" for i in range(1, 7)]


def test_repair_is_routed_to_the_crew_and_its_member_is_told(db, world):
    t = report(world)

    assert (t.state, t.crew_id, t.assignee_id) == (S.ASSIGNED, world.crew.id, world["member"].id)
    assert [(e.action, e.from_state, e.to_state) for e in events_of(db, t)] == [
        ("created", None, S.NEW), ("assigned", S.NEW, S.ASSIGNED)]
    assert events_of(db, t)[1].actor_kind == "system"
    [msg] = outbox(db, "notify.task_assigned")
    assert msg.payload["ticket_id"] == t.id and msg.payload["staff_id"] == world["member"].id
    assert msg.dedupe_key == f"task_assigned:{t.id}:{events_of(db, t)[1].id}"
    assert t.reporter_id == world["resident"].id and t.address == world.household.address


@pytest.mark.parametrize("type", [TicketType.INQUIRY, TicketType.SUGGESTION])
def test_inquiries_and_suggestions_wait_for_an_agent(db, world, type):
    t = report(world, type=type, category=TicketCategory.BILLING)

    assert t.state == S.NEW and t.crew_id is None
    assert [e.action for e in events_of(db, t)] == ["created"]
    assert outbox(db) == []


@pytest.mark.parametrize("category", TicketCategory.EMERGENCY)
def test_leak_or_burst_pipe_is_an_emergency_that_alerts_the_crew_lead_and_the_leader_on_duty(db, world, category):
    now = utcnow()
    t = report(world, category=category, priority=Priority.NORMAL, now=now)

    assert t.priority == Priority.EMERGENCY
    assert (t.respond_by, t.finish_by) == (now + timedelta(minutes=15), now + timedelta(hours=4))
    alerts = outbox(db, "notify.emergency_alert")
    assert sorted(a.payload["staff_id"] for a in alerts) == sorted([world["lead"].id, world["leader"].id])
    assert {a.payload["ticket_id"] for a in alerts} == {t.id}


def test_unrouted_emergency_alerts_the_leader_on_duty(db, world):
    t = report(world, household=None, category=TicketCategory.BURST_PIPE)

    assert t.state == S.NEW
    assert [m.payload["staff_id"] for m in outbox(db, "notify.emergency_alert")] == [world["leader"].id]


def test_normal_ticket_gets_the_default_deadlines(db, world):
    now = utcnow()
    t = report(world, now=now)

    assert (t.respond_by, t.finish_by) == (now + timedelta(hours=2), now + timedelta(hours=24))


@pytest.mark.parametrize("field, value", [
    ("type", "weather"), ("source", "fax"), ("category", "ghost"), ("priority", "whenever"), ("description", "  "),
])
def test_create_refuses_unknown_values(db, world, field, value):
    with pytest.raises(ValidationError) as err:
        report(world, **{field: value})
    assert field in err.value.fields
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_resident_cannot_claim_a_phone_source(db, world):
    with pytest.raises(ValidationError):
        report(world, source=TicketSource.PHONE)


def test_resident_may_only_report_for_bound_households(db, world, make_household):
    with pytest.raises(PermissionDeniedError):
        report(world, household=make_household())


def test_duplicate_external_id_is_refused(db, world):
    create_ticket(Actor.phone(), type=TicketType.REPAIR, source=TicketSource.PHONE, description="不热",
                  external_id="CC-1")
    with pytest.raises(ConflictError):
        create_ticket(Actor.phone(), type=TicketType.REPAIR, source=TicketSource.PHONE, description="不热",
                      external_id="CC-1")


def test_deactivated_staff_may_do_nothing(db, world):
    t = report(world)
    world["member"].active = False

    with pytest.raises(PermissionDeniedError):
        accept_ticket(t, world.actor("member"))


# --- assignment, acceptance, progress -------------------------------------------------------

def test_agent_assigns_to_a_person_and_the_person_is_told(db, world):
    t = ticket_in(world, S.NEW)

    event = assign_ticket(t, world.actor("agent"), staff=world["member2"])

    assert (t.state, t.crew_id, t.assignee_id) == (S.ASSIGNED, world.crew.id, world["member2"].id)
    [msg] = outbox(db, "notify.task_assigned")
    assert msg.payload == {"ticket_id": t.id, "staff_id": world["member2"].id, "event_id": event.id}


def test_assign_needs_a_target_from_the_field_roles(db, world):
    t = ticket_in(world, S.NEW)
    with pytest.raises(ValidationError):
        assign_ticket(t, world.actor("agent"))
    with pytest.raises(ValidationError):
        assign_ticket(t, world.actor("agent"), staff=world["agent"])
    with pytest.raises(ValidationError):
        assign_ticket(t, world.actor("agent"), crew=world.other_crew, staff=world["member"])


def test_crew_lead_reassigns_only_within_the_crew(db, world):
    t = ticket_in(world, S.ASSIGNED)

    assign_ticket(t, world.actor("lead"), staff=world["member2"])
    assert t.assignee_id == world["member2"].id

    with pytest.raises(PermissionDeniedError):
        assign_ticket(t, world.actor("lead"), crew=world.other_crew)


def test_accept_records_the_first_response_once(db, world):
    t = ticket_in(world, S.ASSIGNED)

    accept_ticket(t, world.actor("member"))
    first = t.accepted_at
    forward_ticket(t, world.actor("member"), reason="片区调整", staff=world["member2"])
    accept_ticket(t, world.actor("member2"))

    assert first is not None and t.accepted_at == first


def test_crew_member_claims_a_ticket_waiting_at_the_crew(db, world):
    t = ticket_in(world, S.NEW)
    assign_ticket(t, world.actor("agent"), crew=world.crew, staff=None)
    t.assignee_id = None  # e.g. nobody was on shift when it arrived
    db.session.flush()

    accept_ticket(t, world.actor("member2"))

    assert t.assignee_id == world["member2"].id and t.state == S.ACCEPTED
    with pytest.raises(PermissionDeniedError):
        accept_ticket(ticket_in(world, S.ASSIGNED), world.actor("member2"))  # someone else's task


def test_progress_note_with_photos_links_them_to_the_event(db, world):
    t = ticket_in(world, S.ACCEPTED)

    event = add_progress_note(t, world.actor("member"), "已关闭进户阀",
                              photos=["MEDIA1", "MEDIA1", PhotoInput(path="2026/11/a.jpg", content_type="image/jpeg")])

    assert t.state == S.IN_PROGRESS and (event.from_state, event.to_state) == (S.ACCEPTED, S.IN_PROGRESS)
    photos = list(db.session.scalars(select(TicketPhoto).where(TicketPhoto.ticket_id == t.id)))
    assert len(photos) == 2  # the repeated media id is one photo
    assert {(p.media_id, p.path) for p in photos} == {("MEDIA1", None), (None, "2026/11/a.jpg")}
    assert {p.event_id for p in photos} == {event.id} and {p.uploaded_by_kind for p in photos} == {"staff"}

    second = add_progress_note(t, world.actor("member"), photos=["MEDIA2"])
    assert t.state == S.IN_PROGRESS and second.note is None and len(second.photos) == 1


def test_progress_note_needs_text_or_a_photo(db, world):
    t = ticket_in(world, S.IN_PROGRESS)
    with pytest.raises(ValidationError):
        add_progress_note(t, world.actor("member"), "   ")


# --- reply, close, notifications -----------------------------------------------------------

def test_reply_and_close_tell_the_resident(db, world):
    t = ticket_in(world, S.IN_PROGRESS)

    reply = reply_ticket(t, world.actor("member"), "已排气", photos=["AFTER1"])
    close = close_ticket(t, world.actor("agent"), "已修复，如有问题请再联系")

    assert t.reply == "已排气" and t.replied_at is not None and t.closed_at is not None
    assert [p.media_id for p in reply.photos] == ["AFTER1"]
    pushed = [(m.payload["event_id"], m.payload["wechat_user_id"]) for m in outbox(db, "notify.ticket_change")]
    assert pushed[-2:] == [(reply.id, world["resident"].id), (close.id, world["resident"].id)]
    # every change the resident is told of (assigned, accepted, …) once, in order
    assert [e for e, _ in pushed] == [e.id for e in t.events if e.action in ("assigned", "accepted", "replied", "closed")]


def test_reply_and_final_answer_are_required(db, world):
    t = ticket_in(world, S.IN_PROGRESS)
    with pytest.raises(ValidationError):
        reply_ticket(t, world.actor("member"), " ")
    reply_ticket(t, world.actor("member"), "已处理")
    with pytest.raises(ValidationError):
        close_ticket(t, world.actor("agent"), "")


def test_phone_tickets_sync_every_state_change_in_order(db, world):
    t = create_ticket(Actor.phone("张客服"), type=TicketType.REPAIR, source=TicketSource.PHONE,
                      description="家里不热", household=world.household, external_id="CC-42")
    accept_ticket(t, world.actor("member"))
    add_progress_note(t, world.actor("member"), "到场")          # accepted -> in progress: a change
    add_progress_note(t, world.actor("member"), "更换阀芯")      # no state change: nothing to sync
    reply_ticket(t, world.actor("member"), "已修复")

    sync = outbox(db, "bridge.status")
    assert [m.payload["state"] for m in sync] == [S.NEW, S.ASSIGNED, S.ACCEPTED, S.IN_PROGRESS, S.REPLIED]
    assert {m.ordering_key for m in sync} == {f"ticket:{t.id}"}
    assert all(m.payload["external_id"] == "CC-42" for m in sync)


def test_tickets_without_external_id_do_not_sync(db, world):
    ticket_in(world, S.REPLIED)
    assert outbox(db, "bridge.status") == []


# --- forwarding (二次转办) ------------------------------------------------------------------

@pytest.mark.parametrize("reason", [None, "", "   "])
def test_forward_requires_reason(db, world, reason):
    t = ticket_in(world, S.ACCEPTED)
    with pytest.raises(ValidationError) as err:
        forward_ticket(t, world.actor("member"), reason=reason, crew=world.other_crew)
    assert "reason" in err.value.fields and t.state == S.ACCEPTED


def test_forward_never_to_oneself(db, world):
    t = ticket_in(world, S.ACCEPTED)
    with pytest.raises(ValidationError):
        forward_ticket(t, world.actor("member"), reason="换人", staff=world["member"])
    with pytest.raises(ValidationError):
        forward_ticket(t, world.actor("lead"), reason="我来", staff=world["lead"])


def test_forward_within_the_crew_picks_someone_else(db, world):
    t = ticket_in(world, S.ACCEPTED)

    forward_ticket(t, world.actor("member"), reason="临时请假", crew=world.crew)

    assert t.assignee_id == world["member2"].id


def test_forward_goes_back_to_assigned_and_records_from_and_to(db, world):
    t = ticket_in(world, S.IN_PROGRESS)

    event = forward_ticket(t, world.actor("member"), reason="属于二级网", crew=world.other_crew)

    assert (t.state, t.crew_id, t.assignee_id) == (S.ASSIGNED, world.other_crew.id, world["other_member"].id)
    assert event.note == "属于二级网"
    assert event.data["from"] == {"crew_id": world.crew.id, "staff_id": world["member"].id}
    assert event.data["to"] == {"crew_id": world.other_crew.id, "staff_id": world["other_member"].id}
    assert outbox(db, "notify.task_assigned")[-1].payload["staff_id"] == world["other_member"].id


def test_forwarded_emergency_alerts_the_new_crew_lead(db, world):
    t = report(world, category=TicketCategory.LEAK)
    accept_ticket(t, world.actor("member"))

    forward_ticket(t, world.actor("member"), reason="外网漏水", crew=world.other_crew)

    assert [m.payload["staff_id"] for m in outbox(db, "notify.emergency_alert")] == [
        world["leader"].id, world["lead"].id, world["other_lead"].id]  # the leader on duty: once, at creation


# --- reopen, cancel ----------------------------------------------------------------------

def test_reopen_goes_back_to_the_same_crew_and_assignee(db, world):
    t = ticket_in(world, S.CLOSED)

    event = reopen_ticket(t, world.actor("resident"), "还是不热")

    assert (t.state, t.crew_id, t.assignee_id, t.closed_at) == (S.ASSIGNED, world.crew.id, world["member"].id, None)
    assert event.action == "reopened" and event.actor_kind == "resident"
    assert outbox(db, "notify.task_assigned")[-1].payload["event_id"] == event.id


def test_resident_reopens_only_within_the_window(db, world):
    t = ticket_in(world, S.CLOSED)
    t.closed_at = utcnow() - REOPEN_WINDOW - timedelta(minutes=1)

    with pytest.raises(PermissionDeniedError):
        reopen_ticket(t, world.actor("resident"), "还是不热")
    reopen_ticket(t, world.actor("agent"), "住户来电反映仍不热")  # staff are not bound by the window
    assert t.state == S.ASSIGNED


def test_reopen_requires_a_reason(db, world):
    t = ticket_in(world, S.REPLIED)
    with pytest.raises(ValidationError):
        reopen_ticket(t, world.actor("agent"), " ")


def test_directly_closed_inquiry_reopens_to_the_agents(db, world):
    t = report(world, type=TicketType.INQUIRY)
    close_ticket(t, world.actor("agent"), "按面积收费")

    reopen_ticket(t, world.actor("resident"), "没看懂")

    assert t.state == S.NEW and t.crew_id is None


def test_resident_cannot_cancel_after_acceptance(db, world):
    t = ticket_in(world, S.ACCEPTED)
    with pytest.raises(InvalidTransitionError) as err:
        cancel_ticket(t, world.actor("resident"))
    assert "已接单" in err.value.message
    cancel_ticket(t, world.actor("agent"), "住户电话撤销")
    assert t.state == S.CANCELLED


# --- defect orders (消缺单) ----------------------------------------------------------------

def test_defect_order_is_a_child_repair_for_the_same_crew(db, world):
    parent = ticket_in(world, S.IN_PROGRESS)

    child = open_defect_order(parent, world.actor("member"), "单元立管锈蚀", category=TicketCategory.VALVE,
                              photos=["DEFECT1"])

    assert (child.parent_id, child.type, child.source) == (parent.id, TicketType.REPAIR, TicketSource.STAFF)
    assert (child.state, child.crew_id, child.household_id) == (S.ASSIGNED, world.crew.id, parent.household_id)
    assert child.created_by_id == world["member"].id and child.reporter_id is None
    assert child.number != parent.number and child.photos[0].media_id == "DEFECT1"
    last = events_of(db, parent)[-1]
    assert (last.action, last.data["child_id"]) == ("defect_order_opened", child.id)
    assert parent.state == S.IN_PROGRESS


# --- rating and visits -----------------------------------------------------------------

def test_resident_rates_a_closed_ticket_once(db, world):
    t = ticket_in(world, S.CLOSED)

    rate_ticket(t, 4, " 来得快 ", source="api", by=world.actor("resident").user)

    assert (t.rating, t.rating_comment) == (4, "来得快") and t.rated_at is not None
    with pytest.raises(ConflictError):
        rate_ticket(t, 5, None, source="api", by=world.actor("resident").user)
    assert t.rating == 4


@pytest.mark.parametrize("rating", [0, 6, "5", True, 4.5, None])
def test_rating_is_a_whole_number_from_1_to_5(db, world, rating):
    t = ticket_in(world, S.CLOSED)
    with pytest.raises(ValidationError):
        rate_ticket(t, rating, None, source="api", by=world.actor("resident").user)
    assert t.rating is None


def test_visit_result_is_recorded_on_closed_tickets(db, world):
    t = ticket_in(world, S.CLOSED)

    event = record_visit(t, world.actor("agent"), "电话回访，住户满意", satisfied=True)

    assert t.visit_result == "电话回访，住户满意" and t.visited_at is not None
    assert event.data == {"satisfied": True}
    with pytest.raises(ValidationError):
        record_visit(t, world.actor("agent"), "")


# --- priority changes recompute deadlines --------------------------------------------------

def test_priority_change_recomputes_deadlines_from_opening(db, world):
    t = ticket_in(world, S.ASSIGNED)

    change_priority(t, world.actor("agent"), Priority.URGENT)

    assert (t.respond_by, t.finish_by) == (t.created_at + timedelta(minutes=30), t.created_at + timedelta(hours=8))


def test_leak_stays_an_emergency(db, world):
    t = report(world, category=TicketCategory.LEAK)
    with pytest.raises(ValidationError):
        change_priority(t, world.actor("agent"), Priority.NORMAL)


# --- one transaction: the change, its event and its outbox rows together ------------------

def test_change_event_and_outbox_rows_commit_or_roll_back_together(app, db, world):
    t = ticket_in(world, S.ACCEPTED)
    db.session.commit()
    events_before, outbox_before = len(events_of(db, t)), len(outbox(db))

    forward_ticket(t, world.actor("member"), reason="不属于本班组", crew=world.other_crew)
    assert len(events_of(db, t)) == events_before + 1
    assert len(outbox(db)) == outbox_before + 2  # the new assignee and the resident

    db.session.rollback()

    t = db.session.get(Ticket, t.id)
    assert (t.state, t.crew_id) == (S.ACCEPTED, world.crew.id)
    assert len(events_of(db, t)) == events_before
    assert len(outbox(db)) == outbox_before


def test_get_ticket_raises_not_found_for_unknown_ids(db, world):
    t = report(world)
    assert get_ticket(t.id, for_update=True) is t
    with pytest.raises(NotFoundError):
        get_ticket(t.id + 1000)


def test_error_messages_name_the_state_in_chinese(db, world):
    t = ticket_in(world, S.CLOSED)
    with pytest.raises(InvalidTransitionError) as err:
        accept_ticket(t, world.actor("member"))
    assert err.value.message == "工单当前状态为“已办结”，不能接单"
    assert re.search(r"[\u4e00-\u9fff]", str(err.value))
