"""Crews in chat: what an active crew member (维修人员 or 班组长 whose WeChat is bound to their
staff account) can do by writing to the official account.

    任务 / 我的任务      my open tasks (``access.open_tasks``: a crew lead's include their crew's),
                        soonest deadline first, with a link to each task page
    接单 N              accept task N                         (tickets.accept_ticket)
    回复 N 内容          a progress note on task N             (tickets.add_progress_note)
    完成 N [说明]        submit the result of task N           (tickets.reply_ticket)

N is the ticket's id (stable, unlike a position in a list). Any other text becomes a
progress note on the crew member's only open task, or the bot asks which task it is for.
Staff are treated as staff here: their text never reaches the residents' FAQ. N is looked up
among the tasks the person may see (``access.task_of``, as the API and the crew pages do: a
crew lead's include their crew's); every change goes through the ticket service with
``Actor.of_staff``, which checks the state.

The crew roster in Redis
------------------------
The callback answers most messages from the FAQ without opening a database session
(``conversation.faq_only``). To keep that path free of queries and still never answer a crew
member from the FAQ, ``prepare()`` reads, in the Redis round trip it makes anyway, whether the
sender is in a set of crew openids (``ROSTER_KEY``) and whether that set is loaded (it holds
the ``LOADED`` sentinel). Only "loaded and not listed" takes the FAQ fast path; listed or
unknown goes the full path, where the database decides (``crew_member``) — so a stale roster
costs a slower path, never wrong rights: a member deactivated (or re-roled) in the console
stays listed until then, and the full path reads ``staff.active`` and treats them as a resident.

The roster is dropped after any commit that changes who is crew (a WechatUser's staff_id —
binding, unbinding, a new phone replacing the old — or a Staff's active flag or role, made
through the ORM by whatever code: binding service, console, seeding), and rebuilt from the
database by the next full-path message. A generation counter, watched during the rebuild,
keeps a rebuild that raced such a commit from writing a stale roster. The TTL bounds the life
of a roster after edits made around the ORM (raw SQL). The scene handler needs no call of its
own after ``binding.bind_staff``: the bind changes ``staff_id`` and so drops the roster.
"""
from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from flask import current_app, has_app_context
from redis.exceptions import RedisError, WatchError
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from app.errors import DomainError, InvalidTransitionError, NotFoundError
from app.extensions import db
from app.models import Staff, Ticket, TicketCategory, TicketState, WechatUser, utcnow
from app.services import access, outages, tickets
from app.services.actors import Actor
from app.links import task_url

if TYPE_CHECKING:
    from wechat.conversation import Caller

log = logging.getLogger(__name__)

CREW_ROLES = access.CREW_ROLES  # crew members and crew leads

ROSTER_KEY = "wechat:crew:openids"
ROSTER_GENERATION_KEY = "wechat:crew:generation"
LOADED = "*loaded*"           # sentinel member: the set was built from the database
ROSTER_TTL = 3600

REPLY_LIMIT_BYTES = 2000      # WeChat's passive text reply holds about 2048 bytes (UTF-8)
ADDRESS_CHARS = 30
DONE_TEXT = "已处理完成"       # the result sent to the resident when 完成 N comes without a note

LIST_WORDS = frozenset(("任务", "我的任务"))
ACCEPT = re.compile(r"^接单\s*(\d{1,9})$")
NOTE = re.compile(r"^回复\s*(\d{1,9})(?:\s+(.*))?$", re.S)
DONE = re.compile(r"^完成\s*(\d{1,9})(?:\s+(.*))?$", re.S)

CREW_HELP = (
    "您好，您的微信已绑定员工账号，可在这里处理任务：\n"
    "回复【任务】查看我的未完成任务（方括号中的数字为任务编号）；\n"
    "接单 编号：接单，例如：接单 12；\n"
    "回复 编号 内容：记录处理进展，例如：回复 12 已到现场；\n"
    "完成 编号 说明：提交处理结果，例如：完成 12 已更换阀门；\n"
    "直接发送文字或照片，会记录到您正在处理的任务。"
)


def is_command(text: str) -> bool:
    """A crew command word (the callback sends these down the full path whoever writes)."""
    return text in LIST_WORDS or bool(ACCEPT.match(text) or NOTE.match(text) or DONE.match(text))


# --- the roster -------------------------------------------------------------------------------

def _redis():
    return current_app.extensions["redis"]


def queue_roster_reads(pipe, openid: str) -> None:
    """Add the two roster reads to ``prepare()``'s pipeline: (listed, loaded)."""
    pipe.sismember(ROSTER_KEY, openid)
    pipe.sismember(ROSTER_KEY, LOADED)


def _crew_openids() -> list[str]:
    return list(db.session.scalars(
        select(WechatUser.oa_openid).join(Staff, Staff.id == WechatUser.staff_id)
        .where(Staff.active.is_(True), Staff.role.in_(CREW_ROLES), WechatUser.oa_openid.isnot(None))))


def rebuild_roster() -> None:
    redis = _redis()
    try:
        with redis.pipeline() as pipe:
            pipe.watch(ROSTER_GENERATION_KEY)
            openids = _crew_openids()
            pipe.multi()
            pipe.delete(ROSTER_KEY)
            pipe.sadd(ROSTER_KEY, LOADED, *openids)
            pipe.expire(ROSTER_KEY, ROSTER_TTL)
            pipe.execute()
    except WatchError:
        pass  # who is crew changed meanwhile: leave the roster unloaded, the next message rebuilds it
    except RedisError:
        log.warning("crew roster: Redis unavailable, not rebuilt", exc_info=True)


def _roster_changes(session: Session) -> bool:
    for obj in (*session.new, *session.deleted):
        # A new follower (a resident's first message) is no change to the crew.
        if isinstance(obj, Staff) or (isinstance(obj, WechatUser) and obj.staff_id is not None):
            return True
    for obj in session.dirty:
        if isinstance(obj, WechatUser):
            fields = ("staff_id", "oa_openid")
        elif isinstance(obj, Staff):
            fields = ("active", "role")
        else:
            continue
        state = inspect(obj)
        if any(state.attrs[name].history.has_changes() for name in fields):
            return True
    return False


@event.listens_for(Session, "after_flush")
def _note_roster_change(session, flush_context):
    if not session.info.get("crew_roster_changed") and _roster_changes(session):
        session.info["crew_roster_changed"] = True


@event.listens_for(Session, "after_commit")
def _drop_roster(session):
    if session.info.pop("crew_roster_changed", False) and has_app_context():
        try:
            pipe = _redis().pipeline(transaction=True)
            pipe.incr(ROSTER_GENERATION_KEY)
            pipe.delete(ROSTER_KEY)
            pipe.execute()
        except RedisError:  # the roster expires on its own (ROSTER_TTL)
            log.warning("crew roster: could not drop it after a change", exc_info=True)


@event.listens_for(Session, "after_rollback")
def _forget_roster_change(session):
    session.info.pop("crew_roster_changed", None)


def crew_member(caller: Caller) -> Staff | None:
    """The active crew member writing, from the database (the truth), or None.

    Also keeps the Redis roster in step with what was found (see the module docstring)."""
    if caller.facts_read:  # read with the sender's row, in this transaction
        staff = db.session.get(Staff, caller.crew_staff_id) if caller.crew_staff_id is not None else None
    else:
        staff = crew_staff_of(caller.openid)
    try:
        if caller.roster_loaded is False:
            rebuild_roster()
        elif caller.roster_loaded and caller.in_roster != (staff is not None):
            if staff is not None:
                _redis().sadd(ROSTER_KEY, caller.openid)
            else:
                _redis().srem(ROSTER_KEY, caller.openid)
    except RedisError:
        log.warning("crew roster: Redis unavailable", exc_info=True)
    return staff


def crew_staff_of(openid: str) -> Staff | None:
    return db.session.scalar(
        select(Staff).join(WechatUser, WechatUser.staff_id == Staff.id)
        .where(WechatUser.oa_openid == openid, Staff.active.is_(True), Staff.role.in_(CREW_ROLES)))


# --- tasks ------------------------------------------------------------------------------------

def _address(ticket: Ticket) -> str:
    address = ticket.household.address if ticket.household is not None else (ticket.address or "地址未登记")
    return address if len(address) <= ADDRESS_CHARS else address[:ADDRESS_CHARS] + "…"


def _task_line(ticket: Ticket, now) -> str:
    category = TicketCategory.LABELS.get(ticket.category, ticket.category)
    overdue = "（已超时）" if ticket.finish_by is not None and ticket.finish_by < now else ""
    return (f"[{ticket.id}] {ticket.number}｜{category}｜{_address(ticket)}｜"
            f"时限 {outages.local_time(ticket.finish_by)}{overdue}｜{TicketState.LABELS[ticket.state]}\n"
            f'<a href="{task_url(ticket)}">查看任务</a>')


def _list_tasks(staff: Staff) -> str:
    tasks = access.open_tasks(staff)
    if not tasks:
        return "您当前没有未完成的任务。"
    head = f"您有{len(tasks)}条未完成任务（按完成时限排序，方括号中为任务编号）："
    foot = "回复“接单 编号”接单，“回复 编号 内容”记录进展，“完成 编号 说明”提交处理结果。"
    now, lines = utcnow(), []

    def size(parts: list[str]) -> int:
        return len("\n".join(parts).encode())

    for i, ticket in enumerate(tasks):
        line = _task_line(ticket, now)
        rest = len(tasks) - i - 1
        more = [f"还有{rest}条，请在小程序任务列表查看。"] if rest else []
        if size([head, *lines, line, *more, foot]) > REPLY_LIMIT_BYTES and lines:
            return "\n".join([head, *lines, f"还有{len(tasks) - i}条，请在小程序任务列表查看。", foot])
        lines.append(line)
    return "\n".join([head, *lines, foot])


def _act(staff: Staff, ticket_id: int, action) -> str:
    """Load task ``ticket_id`` (locked) among the tasks ``staff`` may see (``access.task_of``,
    as the API does) and run ``action(ticket, actor)`` — a ticket service call, which checks
    the state before changing anything. Another crew's task and a number that is no task get
    the same answer (which does not say whether it exists)."""
    try:
        ticket = access.task_of(staff, ticket_id, for_update=True)
    except NotFoundError:
        return f"您的任务中没有编号为 {ticket_id} 的任务。回复【任务】查看您的任务编号。"
    try:
        return action(ticket, Actor.of_staff(staff))
    except DomainError as exc:
        return f"{exc.message.rstrip('。')}。回复【任务】查看您的任务编号。"


def _accept(ticket: Ticket, actor: Actor) -> str:
    tickets.accept_ticket(ticket, actor)
    return (f"已接单：{ticket.number}（{_address(ticket)}），时限 {outages.local_time(ticket.finish_by)}。\n"
            f"处理中可回复“回复 {ticket.id} 进展”记录，处理完回复“完成 {ticket.id} 说明”。")


def _note(text: str):
    def note(ticket: Ticket, actor: Actor) -> str:
        try:
            tickets.add_progress_note(ticket, actor, text)
        except InvalidTransitionError as exc:
            if ticket.state == TicketState.ASSIGNED:
                return f"{exc.message}，请先回复“接单 {ticket.id}”。"
            raise
        return f"已记录到工单 {ticket.number} 的处理记录。"
    return note


def _done(text: str):
    def done(ticket: Ticket, actor: Actor) -> str:
        try:
            tickets.reply_ticket(ticket, actor, text)
        except InvalidTransitionError as exc:
            if ticket.state == TicketState.ASSIGNED:
                return f"{exc.message}，请先回复“接单 {ticket.id}”。"
            raise
        return f"工单 {ticket.number} 已提交处理结果，住户将收到通知，客服回访后办结。"
    return done


def _plain_note(caller: Caller, staff: Staff, text: str) -> str:
    tasks = access.open_tasks(staff)
    if not tasks:
        return "您当前没有未完成的任务，这条消息未记录。\n" + CREW_HELP
    if len(tasks) == 1:
        return _act(staff, tasks[0].id, _note(text))
    shown = tasks[:9]
    caller.remember_step(step="note_choice", note=text, tasks=[t.id for t in shown])
    options = "\n".join(f"[{t.id}] {t.number} {_address(t)}" for t in shown)
    more = "\n其他任务请发送：回复 编号 内容" if len(tasks) > len(shown) else ""
    return f"您有多个未完成的任务，这条记录属于哪一个？请回复任务编号：\n{options}{more}"


def _pick_note_task(caller: Caller, staff: Staff, state: dict, text: str) -> str | None:
    if not (text.isascii() and text.isdigit() and len(text) <= 9):  # "²" is no number to int()
        return None  # not an answer to the question: treat the text normally
    if int(text) not in state["tasks"]:
        caller.remember_step(**state)
        return "请回复上面列出的任务编号：" + "、".join(str(i) for i in state["tasks"])
    return _act(staff, int(text), _note(state["note"]))


# --- entry point ------------------------------------------------------------------------------

def handle_text(caller: Caller, staff: Staff, text: str, state: dict | None, *,
                resident_command: bool = False) -> str:
    """What a crew member's text means. ``state``: the pending step read with the message;
    ``resident_command``: the text is one of the residents' command words (menu clicks too)."""
    if state and state.get("step") == "note_choice":
        reply = _pick_note_task(caller, staff, state, text)
        if reply:
            return reply
    if text in LIST_WORDS:
        return _list_tasks(staff)
    match = ACCEPT.match(text)
    if match:
        return _act(staff, int(match.group(1)), _accept)
    match = NOTE.match(text)
    if match:
        if not (match.group(2) or "").strip():
            return f"请在编号后写上内容，例如：回复 {match.group(1)} 已到现场"
        return _act(staff, int(match.group(1)), _note(match.group(2)))
    match = DONE.match(text)
    if match:
        return _act(staff, int(match.group(1)), _done((match.group(2) or "").strip() or DONE_TEXT))
    if resident_command or not text:
        return CREW_HELP
    return _plain_note(caller, staff, text)
