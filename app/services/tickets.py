"""The ticket lifecycle (工单): create, assign, accept, work, reply, close, forward, reopen, ...

States: new → assigned → accepted → in_progress → replied → closed, and cancelled; forwarding
(二次转办) and reopening lead back to assigned. Every function takes the acting
:class:`~app.services.actors.Actor`, checks who may act (``PermissionDeniedError``), then
the current state (``InvalidTransitionError``), then the input (``ValidationError``), and
appends exactly one ``TicketEvent`` per change. Notifications are outbox rows written in the
same transaction. Functions flush (ids are needed for events and outbox keys) but never
commit: the caller commits once. Callers that act on an existing ticket should load it with
``get_ticket(id, for_update=True)`` so two people cannot move the same ticket at once.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Iterable

from sqlalchemy import select

from app.errors import (
    ConflictError, InvalidTransitionError, NotFoundError, PermissionDeniedError, ValidationError,
)
from app.clock import local_now
from app.dbutil import insert_or_update
from app.extensions import db
from app.models import (
    Crew, EvidenceRule, Household, HouseholdBinding, Outage, Priority, Role, Staff, Ticket, TicketCategory,
    TicketCounter, TicketEvent, TicketPhoto, TicketSource, TicketState, TicketType, utcnow,
)
from app.services import clusters, outages, outbox, resident_notices
from app.services.actors import Actor, ActorKind
from app.services.routing import Route, pick_assignee, route_ticket
from app.services.sla import apply_deadlines, deadlines_for

S = TicketState
# A resident may reopen a replied or closed ticket for this long after the answer.
REOPEN_WINDOW = timedelta(days=7)
# Roles that give the final answer, cancel and visit (customer service).
SERVICE_ROLES = (Role.AGENT, Role.ADMIN)
# Staff a ticket can be assigned or forwarded to.
FIELD_ROLES = (Role.CREW_MEMBER, Role.CREW_LEAD)
RESIDENT_SOURCES = (TicketSource.OFFICIAL_ACCOUNT, TicketSource.MINI_PROGRAM)

# What each timeline event is called where people read it (console, mini-program).
EVENT_LABELS = {
    "created": "创建工单", "assigned": "派单", "accepted": "接单", "started": "开始处理",
    "progress_note": "记录进展", "photo_added": "补充照片", "replied": "维修回复", "closed": "办结",
    "forwarded": "转办", "reopened": "重新打开", "cancelled": "撤销", "defect_order_opened": "开具消缺单",
    "rated": "用户评价", "call_rated": "来电评价", "visited": "回访", "priority_changed": "调整优先级", "details_updated": "更新信息",
    "linked_to_outage": "关联停热", "outage_restored": "恢复供热", "still_cold": "反馈仍不热",
    "resident_note": "住户补充",
}

ACTION_LABELS = {
    "create": "提交", "assign": "派单", "accept": "接单", "start": "开始处理", "note": "记录进展",
    "reply": "回复", "close": "办结", "forward": "转办", "reopen": "重新打开", "cancel": "撤销",
    "defect": "开具消缺单", "rate": "评价", "visit": "回访", "priority": "调整优先级", "photo": "上传照片",
    "update": "更新", "still_cold": "反馈仍不热",
}
# Timeline actions without a state change that the phone system is still told about.
BRIDGE_SYNC_ACTIONS = ("rated", "linked_to_outage", "outage_restored")
# Reports about heat (不热/温度低) of these types are linked to an active outage covering the
# household instead of being dispatched one by one (see docs/outage_linking.md).
HEAT_CATEGORIES = (TicketCategory.NO_HEAT, TicketCategory.LOW_TEMPERATURE)
LINKABLE_TYPES = (TicketType.REPAIR, TicketType.COMPLAINT, TicketType.HELP)


@dataclass(frozen=True)
class PhotoInput:
    """A photo to attach: a WeChat media id (fetched later by a job) and/or a stored file path."""

    media_id: str | None = None
    path: str | None = None
    content_type: str | None = None
    size_bytes: int | None = None


PhotoArg = PhotoInput | str  # a plain string is a WeChat media id


# --- loading and numbering ------------------------------------------------------------------

def get_ticket(ticket_id: int, *, for_update: bool = False) -> Ticket:
    query = select(Ticket).where(Ticket.id == ticket_id)
    if for_update:
        query = query.with_for_update()
    ticket = db.session.scalar(query)
    if ticket is None:
        raise NotFoundError("工单不存在")
    return ticket


def _local_day(now: datetime) -> str:
    return local_now(now).strftime("%Y%m%d")


def next_ticket_number(now: datetime | None = None) -> str:
    """GD<local day>-<per-day sequence>, e.g. GD20261123-0001.

    One upsert that increments and returns: on PostgreSQL it locks the day's counter row
    until commit, so concurrent creators wait for each other and never share or skip a
    number; SQLite serialises writers anyway.
    """
    day = _local_day(now or utcnow())
    dialect = db.engine.dialect.name
    statement = _NUMBERING.get(dialect)
    if statement is None:  # built once per database kind: the day travels as a parameter
        counter = TicketCounter.__table__
        statement = _NUMBERING[dialect] = insert_or_update(
            counter, conflict=["day"], set_={"value": counter.c.value + 1}).returning(counter.c.value)
    value = db.session.execute(statement, {"day": day, "value": 1}).scalar_one()
    return f"GD{day}-{value:04d}"


_NUMBERING: dict = {}


# --- shared checks ------------------------------------------------------------------------

def _deny(action: str, why: str = "") -> PermissionDeniedError:
    return PermissionDeniedError(f"您无权{ACTION_LABELS[action]}该工单{why}", code="ticket_forbidden")


def _require_state(ticket: Ticket, allowed: Iterable[str], action: str) -> None:
    if ticket.state not in allowed:
        raise InvalidTransitionError(
            f"工单当前状态为“{S.LABELS[ticket.state]}”，不能{ACTION_LABELS[action]}",
            code="invalid_transition",
        )


def _required_text(value: str | None, field: str, message: str) -> str:
    text = (value or "").strip()
    if not text:
        raise ValidationError(message, fields={field: [message]})
    return text


def _is_crew_side(ticket: Ticket, actor: Actor) -> bool:
    """The ticket's assignee, or the lead of the crew holding it."""
    return actor.role is not None and (
        (ticket.assignee_id is not None and actor.staff_id == ticket.assignee_id)
        or actor.leads_crew(ticket.crew_id)
    )


def _is_reporter(ticket: Ticket, actor: Actor) -> bool:
    return actor.kind == ActorKind.RESIDENT and ticket.reporter_id is not None and actor.user_id == ticket.reporter_id


# --- one flush per use case -------------------------------------------------------------------

_LATER_KEY = "tickets_after_flush"


@contextmanager
def _one_flush():
    """Build the whole change (ticket, timeline rows, routing) without flushing, then flush
    once and run what needs the new ids (outbox promises, the cluster count) in the order it
    was asked for. A nested use joins the outer one. Used by :func:`create_ticket`: the ticket
    is inserted in its final state and its timeline rows in one INSERT, instead of an INSERT,
    an UPDATE and one INSERT (and one flush) per event."""
    session = db.session
    if _LATER_KEY in session.info:
        yield
        return
    later: list[Callable[[], object]] = []
    session.info[_LATER_KEY] = later
    try:
        with session.no_autoflush:
            yield
    finally:
        session.info.pop(_LATER_KEY, None)
    session.flush()
    for fn in later:
        fn()


def _deferring() -> bool:
    return _LATER_KEY in db.session.info


def _later(fn: Callable[[], object]) -> None:
    """Run ``fn`` now, or inside :func:`_one_flush` after its flush."""
    later = db.session.info.get(_LATER_KEY)
    if later is None:
        fn()
    else:
        later.append(fn)


# --- events, photos and notifications -------------------------------------------------------

# Outbox topic: fetch a photo sent through WeChat (jobs.media).
FETCH_PHOTO = "media.ticket_photo"


def _record_event(ticket: Ticket, actor: Actor, action: str, *, to_state: str | None = None,
                  from_state: str | None = None, note: str | None = None, data: dict | None = None,
                  photos: Iterable[PhotoArg] = (), at: datetime | None = None) -> TicketEvent:
    event = TicketEvent(
        ticket=ticket, action=action, from_state=from_state, to_state=to_state,
        actor_kind=actor.kind, actor_staff_id=actor.staff_id, actor_user_id=actor.user_id,
        actor_name=actor.name, note=note, data=data, created_at=at or utcnow(),
    )
    db.session.add(event)
    to_fetch = _attach_photos(ticket, event, actor, photos)
    sync = bool(ticket.external_id) and (from_state != to_state or action in BRIDGE_SYNC_ACTIONS)

    def promises() -> None:
        for photo in to_fetch:
            # WeChat keeps temporary media 3 days: the promise to fetch it rides in this
            # transaction, so a photo is never left without its file because Redis was down.
            outbox.record(FETCH_PHOTO, {"photo_id": photo.id}, dedupe_key=f"{FETCH_PHOTO}:{photo.id}")
        if sync:
            _sync_bridge(ticket, event)

    if not _deferring():
        db.session.flush()  # ids for the outbox keys
    _later(promises)
    return event


def note_event(ticket: Ticket, actor: Actor, action: str, *, note: str | None = None, data: dict | None = None,
               at: datetime | None = None) -> TicketEvent:
    """A timeline entry without a state change (a rating, a call's rating, …)."""
    return _record_event(ticket, actor, action, from_state=ticket.state, to_state=ticket.state, note=note,
                         data=data, at=at)


def _move(ticket: Ticket, actor: Actor, action: str, to_state: str, **kw) -> TicketEvent:
    """Change the state and record the change."""
    from_state = ticket.state
    ticket.state = to_state
    return _record_event(ticket, actor, action, from_state=from_state, to_state=to_state, **kw)


def _attach_photos(ticket: Ticket, event: TicketEvent, actor: Actor,
                   photos: Iterable[PhotoArg]) -> list[TicketPhoto]:
    """Add the photos to the ticket; the new ones still to be fetched from WeChat (media ids)."""
    photos = list(photos)
    if not photos:
        return []  # most events carry none: don't load the ticket's photos for nothing
    to_fetch = []
    seen = {p.media_id for p in ticket.photos if p.media_id}
    for photo in photos:
        if isinstance(photo, str):
            photo = PhotoInput(media_id=photo)
        if not photo.media_id and not photo.path:
            raise ValidationError("照片缺少媒体编号或文件", fields={"photos": ["照片缺少媒体编号或文件"]})
        if photo.media_id and photo.media_id in seen:
            continue  # the same WeChat media sent twice is one photo
        if photo.media_id:
            seen.add(photo.media_id)
        row = TicketPhoto(
            event=event, media_id=photo.media_id, path=photo.path, content_type=photo.content_type,
            size_bytes=photo.size_bytes, uploaded_by_kind=actor.kind,
        )
        ticket.photos.append(row)
        if row.media_id and not row.path:
            to_fetch.append(row)
    return to_fetch


def _notify_assignee(ticket: Ticket, event: TicketEvent) -> None:
    if ticket.assignee_id is None:
        return
    outbox.record(
        "notify.task_assigned",
        {"ticket_id": ticket.id, "staff_id": ticket.assignee_id, "event_id": event.id},
        dedupe_key=f"task_assigned:{ticket.id}:{event.id}",
    )


def _notify_reporter(ticket: Ticket, event: TicketEvent) -> None:
    """The resident hears of this change (once per timeline event; app/services/resident_notices.py)."""
    resident_notices.record_ticket_change(ticket, event)


def _alert_emergency(ticket: Ticket, event: TicketEvent, *, leaders: bool = False) -> None:
    """An emergency goes to the crew lead(s) at once; with no crew (or ``leaders``: a new
    emergency), to the leaders on duty (``Staff.on_duty``)."""
    if ticket.crew_id is not None and not leaders:
        who = select(Staff).where(Staff.crew_id == ticket.crew_id, Staff.role == Role.CREW_LEAD)
    else:
        who = select(Staff).where(Staff.role == Role.LEADER, Staff.on_duty.is_(True))
    for staff in db.session.scalars(who.where(Staff.active.is_(True)).order_by(Staff.id)):
        outbox.record(
            "notify.emergency_alert",
            {"ticket_id": ticket.id, "staff_id": staff.id, "event_id": event.id},
            dedupe_key=f"emergency_alert:{ticket.id}:{event.id}:{staff.id}",
        )


def _sync_bridge(ticket: Ticket, event: TicketEvent) -> None:
    outbox.record(
        "bridge.status",
        {
            "ticket_id": ticket.id, "number": ticket.number, "external_id": ticket.external_id,
            "event_id": event.id, "action": event.action, "from_state": event.from_state,
            "state": event.to_state, "note": event.note, "at": event.created_at.isoformat(),
            "data": event.data,
        },
        dedupe_key=f"bridge_status:{ticket.id}:{event.id}",
        ordering_key=f"ticket:{ticket.id}",
    )


def _hand_over(ticket: Ticket, actor: Actor, action: str, crew: Crew | None, assignee: Staff | None, *,
               note: str | None = None, data: dict | None = None) -> TicketEvent:
    """Put the ticket in the hands of a crew/person (state assigned), record and notify."""
    before = {"crew_id": ticket.crew_id, "staff_id": ticket.assignee_id}
    # The objects too, not only the keys: the answer shows them without loading them again.
    ticket.crew, ticket.crew_id = crew, crew.id if crew is not None else None
    ticket.assignee, ticket.assignee_id = assignee, assignee.id if assignee is not None else None
    after = {"crew_id": ticket.crew_id, "staff_id": ticket.assignee_id}
    event = _move(ticket, actor, action, S.ASSIGNED, note=note,
                  data={"from": before, "to": after, **(data or {})})
    alert = ticket.priority == Priority.EMERGENCY and ticket.crew_id is not None and ticket.crew_id != before["crew_id"]

    def promises() -> None:
        _notify_assignee(ticket, event)
        _notify_reporter(ticket, event)
        if alert:
            _alert_emergency(ticket, event)

    _later(promises)
    return event


def _resolve_target(crew: Crew | None, staff: Staff | None, *, exclude: Iterable[int] = ()) -> tuple[Crew | None, Staff | None]:
    """Validate a crew and/or staff target; a crew alone gets its least-loaded member."""
    if crew is None and staff is None:
        raise ValidationError("请选择班组或人员", fields={"assignee": ["请选择班组或人员"]})
    if staff is not None:
        if not staff.active or staff.role not in FIELD_ROLES:
            raise ValidationError("只能派给在岗的维修人员或班组长", fields={"assignee": ["只能派给在岗的维修人员或班组长"]})
        if crew is not None and staff.crew_id != crew.id:
            raise ValidationError("该人员不属于所选班组", fields={"assignee": ["该人员不属于所选班组"]})
        return staff.crew or crew, staff
    return crew, pick_assignee(crew, exclude=exclude)


# --- use cases ----------------------------------------------------------------------------

def ticket_field_errors(actor: Actor, *, type: str, source: str, category: str, priority: str | None,
                        description: str | None) -> dict[str, list[str]]:
    """The new ticket's field checks of ``create_ticket``, all at once ({field: [message]}), so a
    form can show them together with its own."""
    errors = {}
    if type not in TicketType.ALL:
        errors["type"] = ["工单类型不正确"]
    if source not in TicketSource.ALL:
        errors["source"] = ["工单来源不正确"]
    elif actor.kind == ActorKind.RESIDENT and source not in RESIDENT_SOURCES:
        errors["source"] = ["工单来源不正确"]
    if category not in TicketCategory.ALL:
        errors["category"] = ["问题分类不正确"]
    if priority is not None and priority not in Priority.ALL:
        errors["priority"] = ["优先级不正确"]
    if not (description or "").strip():
        errors["description"] = ["请填写问题描述"]
    return errors


def create_ticket(actor: Actor, *, type: str, source: str, description: str,
                  category: str = TicketCategory.OTHER, priority: str | None = None,
                  household: Household | None = None, caller_phone: str | None = None,
                  caller_name: str | None = None, address: str | None = None,
                  latitude: float | None = None, longitude: float | None = None,
                  recording_url: str | None = None, external_id: str | None = None,
                  photos: Iterable[PhotoArg] = (), parent: Ticket | None = None,
                  now: datetime | None = None, assign_to: Staff | None = None,
                  caller_phone_ext: str | None = None, external_updated_at: datetime | None = None,
                  external_id_checked: bool = False) -> Ticket:
    """Open a ticket; a repair is routed to the responsible crew at once (state assigned).

    ``assign_to`` (e.g. the phone system naming an assignee) overrides routing, for any type.
    ``external_id_checked``: the caller has just looked the external id up (with a lock) and
    found no ticket, so it is not looked up again (the unique key still guards it).
    The active outage of the household's area, looked up once here, is kept on the returned
    ticket for the caller's answer (:func:`area_outage`).
    """
    if actor.kind == ActorKind.STAFF and actor.role is None:
        raise _deny("create")
    errors = ticket_field_errors(actor, type=type, source=source, category=category, priority=priority,
                                 description=description)
    if errors:
        raise ValidationError("提交的工单信息有误", fields=errors)
    if actor.kind == ActorKind.RESIDENT and household is not None and not db.session.scalar(
        select(HouseholdBinding.id).where(HouseholdBinding.wechat_user_id == actor.user_id,
                                          HouseholdBinding.household_id == household.id)
    ):
        raise PermissionDeniedError("只能为已绑定的住户报修", code="ticket_forbidden")
    if external_id and not external_id_checked and \
            db.session.scalar(select(Ticket.id).where(Ticket.external_id == external_id)):
        raise ConflictError("该外部工单号已存在", code="duplicate_external_id")
    with outbox.collect(), _one_flush():
        return _open(actor, type=type, source=source, description=description, category=category,
                     priority=priority, household=household, caller_phone=caller_phone, caller_name=caller_name,
                     address=address, latitude=latitude, longitude=longitude, recording_url=recording_url,
                     external_id=external_id, photos=photos, parent=parent, now=now, assign_to=assign_to,
                     caller_phone_ext=caller_phone_ext, external_updated_at=external_updated_at)


_AREA_OUTAGE = "_area_outage"  # plain attribute on the Ticket instance, not a column


def area_outage(ticket: Ticket) -> Outage | None:
    """The active outage covering the ticket's household: as :func:`create_ticket` found it
    when it opened this ticket (in this request), else looked up now."""
    if _AREA_OUTAGE in ticket.__dict__:
        return ticket.__dict__[_AREA_OUTAGE]
    return outages.active_outage_for(ticket.household) if ticket.household is not None else None


def _open(actor: Actor, *, type: str, source: str, description: str, category: str, priority: str | None,
          household: Household | None, caller_phone: str | None, caller_name: str | None, address: str | None,
          latitude: float | None, longitude: float | None, recording_url: str | None, external_id: str | None,
          photos: Iterable[PhotoArg], parent: Ticket | None, now: datetime | None, assign_to: Staff | None,
          caller_phone_ext: str | None, external_updated_at: datetime | None) -> Ticket:
    """:func:`create_ticket` past its checks, inside one flush and one outbox INSERT."""
    now = now or utcnow()
    if category in TicketCategory.EMERGENCY:
        priority = Priority.EMERGENCY
    priority = priority or Priority.NORMAL
    respond_by, finish_by = deadlines_for(type, priority, now)
    outage = outages.active_outage_for(household) if household is not None else None
    link = outage is not None and assign_to is None and is_heat_report(type, category)
    ticket = Ticket(
        number=next_ticket_number(now), source=source, type=type, category=category,
        priority=priority, state=S.NEW, household=household,
        household_id=household.id if household is not None else None,  # read by routing before the flush
        caller_phone_ext=caller_phone_ext, external_updated_at=external_updated_at,
        reporter_id=actor.user_id, created_by_id=actor.staff_id, caller_phone=caller_phone,
        caller_name=caller_name, address=address or (household.address if household else None),
        description=description.strip(), latitude=latitude, longitude=longitude,
        recording_url=recording_url, external_id=external_id or None, parent=parent,
        respond_by=respond_by, finish_by=finish_by, created_at=now, updated_at=now,
    )
    ticket.__dict__[_AREA_OUTAGE] = outage
    db.session.add(ticket)
    data = {"parent_id": parent.id} if parent is not None else {}
    created_note = None
    if outage is not None and not link:  # dispatched as usual, with the outage noted
        data.update(outage_id=outage.id, outage_title=outage.title)
        created_note = f"所在区域停热中：{outage.title}，预计{outages.local_time(outage.expected_end_at)}恢复"
    created = _record_event(ticket, actor, "created", to_state=S.NEW, photos=photos, at=now,
                            note=created_note, data=data or None)

    if ticket.priority == Priority.EMERGENCY:
        # the leader on duty hears of every new emergency
        _later(lambda: _alert_emergency(ticket, created, leaders=True))
    if link:
        link_to_outage(ticket, outage, at=now)
        return ticket
    if household is not None and outage is None and is_heat_report(type, category):
        # After the flush: the count includes this report.
        _later(lambda: clusters.note_heat_report(ticket, now=now))

    if assign_to is not None:
        crew, staff = _resolve_target(None, assign_to)
        _hand_over(ticket, actor, "assigned", crew, staff, note="指定派单")
        if ticket.priority == Priority.EMERGENCY and crew is None:
            _later(lambda: _alert_emergency(ticket, created))
        return ticket
    if type == TicketType.REPAIR:
        # A defect order stays with the crew that found the defect.
        route = (Route(parent.crew, pick_assignee(parent.crew)) if parent is not None and parent.crew is not None
                 else route_ticket(ticket))
        if route is not None:
            _hand_over(ticket, Actor.system(), "assigned", route.crew, route.assignee, note="自动派单")
            return ticket
    if ticket.priority == Priority.EMERGENCY:
        _later(lambda: _alert_emergency(ticket, created))
    return ticket


def is_heat_report(type: str, category: str) -> bool:
    return type in LINKABLE_TYPES and category in HEAT_CATEGORIES


def link_to_outage(ticket: Ticket, outage: Outage, *, at: datetime | None = None,
                   actor: Actor | None = None) -> TicketEvent:
    """Link a report to the outage that explains it: no crew task, SLA clock held.

    A ticket still waiting at a crew (assigned, not accepted) is taken back from it (state
    new), so the crew is not left with one task per household for one outage.
    """
    at = at or utcnow()
    actor = actor or Actor.system()
    ticket.outage_id, ticket.outage = outage.id, outage
    ticket.sla_held_at = at
    ticket.respond_by = ticket.finish_by = None
    note = f"已关联停热“{outage.title}”，预计{outages.local_time(outage.expected_end_at)}恢复供热，暂不派单"
    data = {"outage_id": outage.id, "outage_title": outage.title,
            "expected_end_at": outage.expected_end_at.isoformat() if outage.expected_end_at else None}
    if ticket.state == S.ASSIGNED:
        data["from"] = {"crew_id": ticket.crew_id, "staff_id": ticket.assignee_id}
        ticket.crew_id = ticket.assignee_id = None
        return _move(ticket, actor, "linked_to_outage", S.NEW, note=note, data=data, at=at)
    return _record_event(ticket, actor, "linked_to_outage", from_state=ticket.state, to_state=ticket.state,
                         note=note, data=data, at=at)


def waits_on_outage(ticket: Ticket) -> bool:
    """Linked to an outage and not yet turned back into a normal repair or closed."""
    return ticket.outage_id is not None and ticket.sla_held_at is not None and ticket.state in S.OPEN


def note_outage_restored(ticket: Ticket, outage: Outage, *, until: datetime, at: datetime | None = None) -> TicketEvent:
    """Timeline entry (and phone-system status) when the linked outage is restored."""
    return _record_event(
        ticket, Actor.system(), "outage_restored", from_state=ticket.state, to_state=ticket.state, at=at,
        note=f"停热已恢复供热；如仍不热，住户可在{outages.local_time(until)}前反馈“还冷”",
        data={"outage_id": outage.id, "still_cold_until": until.isoformat()})


def resume_after_outage(ticket: Ticket, actor: Actor, *, note: str | None = None,
                        now: datetime | None = None) -> TicketEvent:
    """"Still cold" after the restore: the linked report becomes a normal repair for the
    responsible crew, with fresh deadlines from now (the held clock resumes, recomputed)."""
    if not (_is_reporter(ticket, actor) or _binds_household(ticket, actor)
            or actor.has_role(Role.AGENT, Role.ADMIN) or actor.is_automation):
        raise _deny("still_cold")
    if not waits_on_outage(ticket):
        raise InvalidTransitionError("该工单未在等待停热恢复，不能反馈仍不热", code="not_waiting_on_outage")
    now = now or utcnow()
    ticket.sla_held_at = None
    ticket.type = TicketType.REPAIR
    ticket.respond_by, ticket.finish_by = deadlines_for(ticket.type, ticket.priority, now)
    event = _record_event(ticket, actor, "still_cold", from_state=ticket.state, to_state=ticket.state, at=now,
                          note=(note or "").strip() or "停热恢复后仍不热",
                          data={"outage_id": ticket.outage_id, "respond_by": ticket.respond_by.isoformat(),
                                "finish_by": ticket.finish_by.isoformat()})
    route = route_ticket(ticket)
    if route is not None:
        return _hand_over(ticket, Actor.system(), "assigned", route.crew, route.assignee,
                          note="停热恢复后仍不热，转为维修")
    return event


def close_after_outage(ticket: Ticket, *, final_answer: str, at: datetime | None = None) -> TicketEvent:
    """The system closes a linked report nobody answered "still cold" for (办结 by the system).

    The resident was told in the restoration notice; no second message is sent.
    """
    if not waits_on_outage(ticket):
        raise InvalidTransitionError("该工单未在等待停热恢复", code="not_waiting_on_outage")
    at = at or utcnow()
    text = _required_text(final_answer, "final_answer", "请填写答复内容")
    ticket.final_answer = text
    ticket.closed_at = at
    ticket.sla_held_at = None
    return _move(ticket, Actor.system(), "closed", S.CLOSED, note=text, at=at)


def _binds_household(ticket: Ticket, actor: Actor) -> bool:
    return actor.kind == ActorKind.RESIDENT and ticket.household_id is not None and db.session.scalar(
        select(HouseholdBinding.id).where(HouseholdBinding.wechat_user_id == actor.user_id,
                                          HouseholdBinding.household_id == ticket.household_id)) is not None


def assign_ticket(ticket: Ticket, actor: Actor, *, crew: Crew | None = None, staff: Staff | None = None,
                  note: str | None = None) -> TicketEvent:
    """Dispatch a new (or not yet accepted) ticket to a crew and/or a person.

    Agents, leaders, admins and the phone system may assign anywhere; a crew lead only
    within their own crew and only tickets their crew holds.
    """
    is_lead = actor.leads_crew(ticket.crew_id)
    if not (actor.has_role(Role.AGENT, Role.LEADER, Role.ADMIN) or actor.is_automation or is_lead):
        raise _deny("assign")
    _require_state(ticket, (S.NEW, S.ASSIGNED), "assign")
    crew, staff = _resolve_target(crew, staff)
    if is_lead and (crew is None or crew.id != actor.staff.crew_id):
        raise _deny("assign", "：班组长只能在本班组内派单")
    if ticket.state == S.ASSIGNED and ticket.crew_id == (crew.id if crew else None) and \
            ticket.assignee_id == (staff.id if staff else None):
        raise ValidationError("工单已派给该班组/人员", fields={"assignee": ["工单已派给该班组/人员"]})
    return _hand_over(ticket, actor, "assigned", crew, staff, note=(note or "").strip() or None)


def accept_ticket(ticket: Ticket, actor: Actor) -> TicketEvent:
    """The assignee (or their crew lead) takes the task; the first acceptance is the first response.

    A ticket waiting at a crew with nobody assigned is claimed by the crew member who accepts it.
    """
    claims = (ticket.assignee_id is None and actor.has_role(*FIELD_ROLES)
              and ticket.crew_id is not None and actor.staff.crew_id == ticket.crew_id)
    if not (_is_crew_side(ticket, actor) or claims):
        raise _deny("accept")
    _require_state(ticket, (S.ASSIGNED,), "accept")
    if ticket.assignee_id is None:
        ticket.assignee_id = actor.staff_id
    if ticket.accepted_at is None:
        ticket.accepted_at = utcnow()
    event = _move(ticket, actor, "accepted", S.ACCEPTED)
    _notify_reporter(ticket, event)
    return event


def start_progress(ticket: Ticket, actor: Actor, note: str | None = None) -> TicketEvent:
    if not _is_crew_side(ticket, actor):
        raise _deny("start")
    _require_state(ticket, (S.ACCEPTED,), "start")
    return _move(ticket, actor, "started", S.IN_PROGRESS, note=(note or "").strip() or None)


def add_progress_note(ticket: Ticket, actor: Actor, note: str | None = None,
                      photos: Iterable[PhotoArg] = ()) -> TicketEvent:
    """A progress entry with optional photos; an accepted ticket moves to in progress."""
    if not _is_crew_side(ticket, actor):
        raise _deny("note")
    _require_state(ticket, (S.ACCEPTED, S.IN_PROGRESS), "note")
    photos = list(photos)
    text = (note or "").strip() or None
    if text is None and not photos:
        raise ValidationError("请填写进展或上传照片", fields={"note": ["请填写进展或上传照片"]})
    if ticket.state == S.ACCEPTED:
        return _move(ticket, actor, "progress_note", S.IN_PROGRESS, note=text, photos=photos)
    return _record_event(ticket, actor, "progress_note", from_state=ticket.state, to_state=ticket.state,
                         note=text, photos=photos)


def add_resident_note(ticket: Ticket, actor: Actor, note: str) -> TicketEvent:
    """The resident adds words to their open ticket (instead of reporting the same thing
    twice): the reporter or a resident bound to the household. It shows in the timeline the
    crew and the console read."""
    if not (_is_reporter(ticket, actor) or _binds_household(ticket, actor)):
        raise _deny("note")
    _require_state(ticket, S.OPEN, "note")
    text = _required_text(note, "note", "请填写补充内容")
    return _record_event(ticket, actor, "resident_note", from_state=ticket.state, to_state=ticket.state, note=text)


def attach_photos(ticket: Ticket, actor: Actor, photos: Iterable[PhotoArg], note: str | None = None) -> TicketEvent:
    """Photos sent later (e.g. to the official account) join the timeline; no state change.

    The crew holding the task or the resident who reported it may add photos while the
    ticket is open.
    """
    if not (_is_crew_side(ticket, actor) or _is_reporter(ticket, actor)):
        raise _deny("photo")
    _require_state(ticket, S.OPEN, "photo")
    photos = list(photos)
    if not photos:
        raise ValidationError("请上传照片", fields={"photos": ["请上传照片"]})
    return _record_event(ticket, actor, "photo_added", from_state=ticket.state, to_state=ticket.state,
                         note=(note or "").strip() or None, photos=photos)


def reply_ticket(ticket: Ticket, actor: Actor, reply: str, photos: Iterable[PhotoArg] = ()) -> TicketEvent:
    """The crew's answer (处理结果); the resident is told."""
    if not _is_crew_side(ticket, actor):
        raise _deny("reply")
    _require_state(ticket, (S.ACCEPTED, S.IN_PROGRESS), "reply")
    text = _required_text(reply, "reply", "请填写处理结果")
    photos = list(photos)
    _check_evidence(ticket, photos)
    ticket.reply = text
    ticket.replied_at = utcnow()
    event = _move(ticket, actor, "replied", S.REPLIED, note=text, photos=photos)
    _notify_reporter(ticket, event)
    return event


def _check_evidence(ticket: Ticket, photos: list[PhotoArg]) -> None:
    """The evidence rule of the ticket's category: at least N photos from the crew — sent with
    this reply or earlier (progress notes, photos sent to the official account)."""
    needed = db.session.scalar(select(EvidenceRule.min_photos).where(EvidenceRule.category == ticket.category))
    if not needed:
        return
    known = {p.media_id for p in ticket.photos if p.media_id}
    earlier = sum(1 for p in ticket.photos if p.uploaded_by_kind == ActorKind.STAFF)
    new = {(p if isinstance(p, str) else (p.media_id or p.path)) for p in photos}
    new -= known
    if earlier + len(new) < needed:
        label = TicketCategory.LABELS.get(ticket.category, ticket.category)
        message = f"“{label}”工单须上传至少{needed}张现场照片后才能回复，请拍照上传后再提交"
        raise ValidationError(message, fields={"photos": [message]}, code="evidence_required")


def close_ticket(ticket: Ticket, actor: Actor, final_answer: str) -> TicketEvent:
    """Customer service gives the final answer (办结). Inquiries and suggestions need no crew."""
    if not actor.has_role(*SERVICE_ROLES):
        raise _deny("close")
    allowed = (S.NEW, S.ASSIGNED, S.REPLIED) if ticket.type in TicketType.DIRECT_CLOSE else (S.REPLIED,)
    _require_state(ticket, allowed, "close")
    text = _required_text(final_answer, "final_answer", "请填写答复内容")
    ticket.final_answer = text
    ticket.closed_at = utcnow()
    event = _move(ticket, actor, "closed", S.CLOSED, note=text)
    _notify_reporter(ticket, event)
    return event


def forward_ticket(ticket: Ticket, actor: Actor, *, reason: str, crew: Crew | None = None,
                   staff: Staff | None = None) -> TicketEvent:
    """二次转办: hand a task that is not ours to another crew or person, with a reason."""
    if not (_is_crew_side(ticket, actor) or actor.has_role(*SERVICE_ROLES)):
        raise _deny("forward")
    _require_state(ticket, (S.ASSIGNED, S.ACCEPTED, S.IN_PROGRESS), "forward")
    text = _required_text(reason, "reason", "请填写转办原因")
    if staff is not None and staff.id == actor.staff_id:
        raise ValidationError("不能转办给自己", fields={"assignee": ["不能转办给自己"]})
    exclude = [i for i in (actor.staff_id, ticket.assignee_id) if i is not None]
    crew, staff = _resolve_target(crew, staff, exclude=exclude)
    if staff is not None and staff.id == ticket.assignee_id:
        raise ValidationError("工单已在该人员手中", fields={"assignee": ["工单已在该人员手中"]})
    if staff is None and crew is not None and crew.id == ticket.crew_id:
        raise ValidationError("本班组没有其他可转办的人员", fields={"assignee": ["本班组没有其他可转办的人员"]})
    return _hand_over(ticket, actor, "forwarded", crew, staff, note=text)


def reopen_ticket(ticket: Ticket, actor: Actor, reason: str) -> TicketEvent:
    """Back to the same crew (state assigned) when the answer did not solve the problem.

    Agents, leaders and admins may always reopen; the reporting resident within
    ``REOPEN_WINDOW`` of the answer.
    """
    if not (actor.has_role(Role.AGENT, Role.LEADER, Role.ADMIN) or _is_reporter(ticket, actor)):
        raise _deny("reopen")
    _require_state(ticket, (S.REPLIED, S.CLOSED), "reopen")
    text = _required_text(reason, "reason", "请填写重新打开的原因")
    if actor.kind == ActorKind.RESIDENT:
        answered_at = ticket.closed_at if ticket.state == S.CLOSED else ticket.replied_at
        if answered_at is not None and utcnow() - answered_at > REOPEN_WINDOW:
            raise PermissionDeniedError(
                f"答复已超过{REOPEN_WINDOW.days}天，不能重新打开，请联系客服", code="reopen_window_passed"
            )
    ticket.closed_at = None
    if ticket.crew_id is None:  # answered directly by an agent: back to the agents' queue
        event = _move(ticket, actor, "reopened", S.NEW, note=text)
        _notify_reporter(ticket, event)
        return event
    assignee = ticket.assignee
    if assignee is None or not assignee.active or assignee.crew_id != ticket.crew_id:
        assignee = pick_assignee(ticket.crew)
    return _hand_over(ticket, actor, "reopened", ticket.crew, assignee, note=text)


def cancel_ticket(ticket: Ticket, actor: Actor, reason: str | None = None) -> TicketEvent:
    """The reporting resident until a crew accepts it; customer service at any open state
    (and then the resident is told)."""
    if actor.has_role(*SERVICE_ROLES):
        allowed = S.OPEN
    elif _is_reporter(ticket, actor):
        allowed = (S.NEW, S.ASSIGNED)
    else:
        raise _deny("cancel")
    _require_state(ticket, allowed, "cancel")
    event = _move(ticket, actor, "cancelled", S.CANCELLED, note=(reason or "").strip() or None)
    if actor.kind == ActorKind.STAFF:
        _notify_reporter(ticket, event)
    return event


def open_defect_order(parent: Ticket, actor: Actor, description: str, *,
                      category: str = TicketCategory.OTHER, priority: str | None = None,
                      photos: Iterable[PhotoArg] = ()) -> Ticket:
    """消缺单: a crew member turns a defect found on their task into a child repair for their crew."""
    if not (_is_crew_side(parent, actor) and actor.has_role(*FIELD_ROLES)):
        raise _deny("defect")
    _require_state(parent, (S.ACCEPTED, S.IN_PROGRESS, S.REPLIED), "defect")
    child = create_ticket(
        actor, type=TicketType.REPAIR, source=TicketSource.STAFF, description=description,
        category=category, priority=priority, household=parent.household, address=parent.address,
        caller_phone=parent.caller_phone, caller_name=parent.caller_name, photos=photos, parent=parent,
    )
    _record_event(parent, actor, "defect_order_opened", from_state=parent.state, to_state=parent.state,
                  note=child.description, data={"child_id": child.id, "child_number": child.number})
    return child


def record_visit(ticket: Ticket, actor: Actor, result: str, *, satisfied: bool | None = None) -> TicketEvent:
    """回访: customer service records the follow-up call on a closed ticket (the latest one counts)."""
    if not actor.has_role(*SERVICE_ROLES):
        raise _deny("visit")
    _require_state(ticket, (S.CLOSED,), "visit")
    text = _required_text(result, "result", "请填写回访结果")
    ticket.visit_result = text
    ticket.visited_at = utcnow()
    return _record_event(ticket, actor, "visited", from_state=ticket.state, to_state=ticket.state,
                         note=text, data={"satisfied": satisfied})


def change_priority(ticket: Ticket, actor: Actor, priority: str, reason: str | None = None) -> TicketEvent:
    """Raise or lower an open ticket's priority; its deadlines are recomputed from its opening time.

    A leak or burst pipe stays an emergency.
    """
    if not (actor.has_role(Role.AGENT, Role.LEADER, Role.ADMIN) or actor.leads_crew(ticket.crew_id)):
        raise _deny("priority")
    _require_state(ticket, S.OPEN, "priority")
    if priority not in Priority.ALL:
        raise ValidationError("优先级不正确", fields={"priority": ["优先级不正确"]})
    if priority == ticket.priority:
        raise ValidationError("优先级未变化", fields={"priority": ["优先级未变化"]})
    if ticket.category in TicketCategory.EMERGENCY and priority != Priority.EMERGENCY:
        raise ValidationError("漏水、爆管工单必须为特急", fields={"priority": ["漏水、爆管工单必须为特急"]})
    before = ticket.priority
    ticket.priority = priority
    if ticket.sla_held_at is None:  # a report waiting on its outage keeps its clock held
        apply_deadlines(ticket)
    event = _record_event(ticket, actor, "priority_changed", from_state=ticket.state, to_state=ticket.state,
                          note=(reason or "").strip() or None, data={"from": before, "to": priority})
    if priority == Priority.EMERGENCY:
        _alert_emergency(ticket, event)
    return event


# Details the phone system (or an agent) may correct on an open ticket.
EDITABLE_DETAILS = ("type", "category", "priority", "description", "address", "caller_phone", "caller_name",
                    "recording_url", "household_id")


def update_details(ticket: Ticket, actor: Actor, *, note: str | None = None, at: datetime | None = None,
                   **changes) -> TicketEvent | None:
    """Correct an open ticket's details (a later phone-system event, an agent's edit).

    ``None`` values are left alone; nothing changed records nothing (returns None). A new
    type or priority recomputes the deadlines; a leak or burst pipe stays an emergency, and
    becoming an emergency alerts the crew lead at once.
    """
    if not (actor.has_role(Role.AGENT, Role.ADMIN) or actor.is_automation):
        raise _deny("update")
    _require_state(ticket, S.OPEN, "update")
    unknown = set(changes) - set(EDITABLE_DETAILS)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    errors = {}
    if changes.get("type") is not None and changes["type"] not in TicketType.ALL:
        errors["type"] = ["工单类型不正确"]
    if changes.get("category") is not None and changes["category"] not in TicketCategory.ALL:
        errors["category"] = ["问题分类不正确"]
    if changes.get("priority") is not None and changes["priority"] not in Priority.ALL:
        errors["priority"] = ["优先级不正确"]
    if changes.get("description") is not None and not changes["description"].strip():
        errors["description"] = ["请填写问题描述"]
    if errors:
        raise ValidationError("提交的工单信息有误", fields=errors)
    category = changes.get("category") or ticket.category
    if category in TicketCategory.EMERGENCY:
        changes["priority"] = Priority.EMERGENCY
    diff = {}
    for field, value in changes.items():
        if value is None:
            continue
        if field == "description":
            value = value.strip()
        if getattr(ticket, field) != value:
            diff[field] = [getattr(ticket, field), value]
            setattr(ticket, field, value)
    if not diff:
        return None
    if "household_id" in diff:
        ticket.household = db.session.get(Household, ticket.household_id) if ticket.household_id else None
    if ("type" in diff or "priority" in diff) and ticket.sla_held_at is None:  # a held clock stays held
        apply_deadlines(ticket)
    event = _record_event(ticket, actor, "details_updated", from_state=ticket.state, to_state=ticket.state,
                          note=(note or "").strip() or None, data={"changes": diff}, at=at)
    if "priority" in diff and ticket.priority == Priority.EMERGENCY:
        _alert_emergency(ticket, event)
    return event
