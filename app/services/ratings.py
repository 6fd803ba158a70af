"""Ratings (评价): one set of rules for every channel — the official-account chat, the
mini-program API, the ticket pages and the phone system's post-call IVR rating.

- ``rate_ticket(ticket, score, comment, *, source, by=None)`` — a closed ticket is rated once,
  1–5 with an optional comment. Residents' sources (``chat``, ``api``, ``page``) need ``by``,
  the WeChat user rating, who must be the ticket's reporter (``may_rate``); in chat the rating
  is taken for ``CHAT_WINDOW`` (72 h) after the ticket was closed, the API and pages take it
  at any time after closing (as the API always did). ``ivr`` comes from the phone system
  (authorised by the bridge signature).
- A rating of ``LOW_RATING`` (2) or less alerts the lead(s) of the crew that did the work
  (a WeChat notice through the outbox) and opens a 回访 task (``FollowUpTask``) for customer
  service, shown on the console's ticket page and its 回访 list until the visit is recorded
  (``record_visit``).
- ``record_call_rating(...)`` — the IVR rating of a call, kept on the call; when the call is
  about a closed ticket nobody rated yet, it is that ticket's rating too (counted once).
- ``rate_conversation(conv, score, comment, *, by)`` — a live-chat conversation (会话) an agent
  answered is rated like a ticket in chat: by its resident, once, within ``CHAT_WINDOW`` of its
  end; 2 or less opens a 回访 task for customer service too.
- ``score_of(text)`` — the one reading of a resident's rating words (5, 满意, 五星好评, 打4分,
  差评 …) for tickets and conversations alike.

Services never commit: the caller's unit of work does.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from app.errors import (
    ConflictError, InvalidTransitionError, NotFoundError, PermissionDeniedError, ValidationError,
)
from app.extensions import db
from app.models import (
    CallLog, CallStatus, Conversation, ConversationStatus, FollowUpReason, FollowUpState, FollowUpTask, Role, Staff,
    Ticket, TicketEvent, TicketState, WechatUser, utcnow,
)
from app.services import outbox, tickets
from app.services.actors import Actor


class RatingSource:
    CHAT = "chat"      # the official-account conversation (回复1-5)
    API = "api"        # the mini-program
    PAGE = "page"      # the ticket page /t/<number>
    IVR = "ivr"        # the phone system's post-call rating (POST /bridge/v1/ratings)
    RESIDENT = (CHAT, API, PAGE)
    ALL = (CHAT, API, PAGE, IVR)
    LABELS = {CHAT: "公众号", API: "小程序", PAGE: "网页", IVR: "电话语音评价"}


SCORES = range(1, 6)
LOW_RATING = 2              # this or less: the crew lead is alerted and a 回访 task opens
CHAT_WINDOW = timedelta(hours=72)
# How long after closing each source takes a rating (None: any time, as the API always did).
WINDOWS = {RatingSource.CHAT: CHAT_WINDOW, RatingSource.API: None, RatingSource.PAGE: None,
           RatingSource.IVR: None}
COMMENT_MAX = 500
SCORE_MESSAGE = "评分应为1到5分"

# A resident's rating words (issue 15 §4): digits 1-5, Chinese numerals with 分/星, and the
# common phrasings. Longer words first where one contains another (不满意 before 满意).
RATING_WORDS = {"非常满意": 5, "很满意": 5, "满意": 4, "一般": 3, "不满意": 2, "很不满意": 1, "非常不满意": 1}
CHINESE_SCORES = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
SCORE_IN_WORDS = re.compile(r"(?<![0-9])([1-5一二两三四五])\s*(?:分|星)")
PRAISE = ("好评",)
COMPLAINT = ("差评", "不太满意")


def score_of(text: str | None) -> int | None:
    """1–5 from a resident's rating words — 5, 5分, 满意, 非常满意, 五星好评, 打4分, 差评 … — or None.

    The one parser for every rating typed in chat (tickets and conversations alike); the
    caller decides the text is a rating at all (the intent classifier does).
    """
    word = re.sub(r"[\s。.!！分星]+$", "", (text or "").strip())
    if word in ("1", "2", "3", "4", "5"):
        return int(word)
    if word in RATING_WORDS:
        return RATING_WORDS[word]
    compact = re.sub(r"\s+", "", text or "")
    found = SCORE_IN_WORDS.search(compact) or re.fullmatch(r"[^0-9]*([1-5])[^0-9]*", compact)
    if found:
        value = found.group(1)
        return int(value) if value.isdigit() else CHINESE_SCORES[value]
    for words, score in ((COMPLAINT, 1 if "差评" in compact else 2), (PRAISE, 5)):
        if any(w in compact for w in words):
            return score
    for word, score in sorted(RATING_WORDS.items(), key=lambda kv: -len(kv[0])):
        if word in compact:
            return score
    return None


# --- who may rate -------------------------------------------------------------------------------

def may_rate(user: WechatUser | None, ticket: Ticket) -> bool:
    """Only the person who reported the ticket rates it."""
    return user is not None and ticket.reporter_id is not None and ticket.reporter_id == user.id


def rating_window(source: str) -> timedelta | None:
    return WINDOWS[source]


def awaiting_rating(user: WechatUser, *, source: str = RatingSource.CHAT, now: datetime | None = None) -> Ticket | None:
    """The latest closed, unrated ticket ``user`` reported that ``source`` still takes a
    rating for (what "5" or 满意 in chat refers to), or None."""
    now = now or utcnow()
    query = select(Ticket).where(Ticket.reporter_id == user.id, Ticket.state == TicketState.CLOSED,
                                 Ticket.rating.is_(None))
    window = rating_window(source)
    if window is not None:
        query = query.where(Ticket.closed_at >= now - window)
    return db.session.scalar(query.order_by(Ticket.closed_at.desc(), Ticket.id.desc()).limit(1))


def _check_score(score) -> int:
    if isinstance(score, bool) or not isinstance(score, int) or score not in SCORES:
        raise ValidationError(SCORE_MESSAGE, fields={"rating": [SCORE_MESSAGE]})
    return score


# --- rating a ticket ------------------------------------------------------------------------------

def rate_ticket(ticket: Ticket, score: int, comment: str | None, *, source: str,
                by: WechatUser | None = None, now: datetime | None = None,
                actor: Actor | None = None) -> TicketEvent:
    """Rate a closed ticket once (1–5 and a comment); returns the "rated" timeline event.

    Checks, in order: who (403 ``ticket_forbidden``), the state (409 ``invalid_transition``),
    the input (400), once (409 ``already_rated``), the window (409 ``rating_window_passed``).
    """
    if source not in RatingSource.ALL:
        raise ValueError(f"unknown rating source {source!r}")
    if source in RatingSource.RESIDENT:
        if not may_rate(by, ticket):
            raise PermissionDeniedError("您无权评价该工单", code="ticket_forbidden")
        actor = Actor.of_resident(by)
    else:
        actor = actor or Actor.phone(RatingSource.LABELS[source])
    if ticket.state != TicketState.CLOSED:
        raise InvalidTransitionError(
            f"工单当前状态为“{TicketState.LABELS[ticket.state]}”，办结后才能评价", code="invalid_transition")
    score = _check_score(score)
    text = (comment or "").strip() or None
    if text is not None and len(text) > COMMENT_MAX:
        message = f"评语不能超过{COMMENT_MAX}字"
        raise ValidationError(message, fields={"comment": [message]})
    if ticket.rating is not None:
        raise ConflictError("该工单已评价过", code="already_rated")
    now = now or utcnow()
    window = rating_window(source)
    if window is not None and ticket.closed_at is not None and now - ticket.closed_at > window:
        hours = int(window.total_seconds() // 3600)
        raise InvalidTransitionError(f"已超过评价期限（办结后{hours}小时内可评价）", code="rating_window_passed")
    ticket.rating, ticket.rating_comment, ticket.rated_at = score, text, now
    event = tickets.note_event(ticket, actor, "rated", note=text, at=now,
                               data={"rating": score, "source": source})
    if score <= LOW_RATING:
        _follow_up_low_rating(ticket, event, score, text)
    return event


def _open_follow_up(*, score: int, comment: str | None, at: datetime, ticket: Ticket | None = None,
                    conversation: Conversation | None = None) -> None:
    """Customer service owes the resident a call (回访): one task per ticket or conversation."""
    column, thing = ((FollowUpTask.ticket_id, ticket) if ticket is not None
                     else (FollowUpTask.conversation_id, conversation))
    if db.session.scalar(select(FollowUpTask.id).where(
            column == thing.id, FollowUpTask.reason == FollowUpReason.LOW_RATING)) is None:
        db.session.add(FollowUpTask(ticket_id=ticket.id if ticket is not None else None,
                                    conversation_id=conversation.id if conversation is not None else None,
                                    reason=FollowUpReason.LOW_RATING, rating=score, comment=comment,
                                    state=FollowUpState.OPEN, created_at=at))


def _follow_up_low_rating(ticket: Ticket, event: TicketEvent, score: int, comment: str | None) -> None:
    """The crew lead hears of it; customer service owes the resident a call (回访)."""
    _open_follow_up(score=score, comment=comment, at=event.created_at, ticket=ticket)
    for lead in crew_leads(ticket):
        outbox.record("notify.low_rating", {"ticket_id": ticket.id, "staff_id": lead.id, "event_id": event.id},
                      dedupe_key=f"low_rating:{ticket.id}:{event.id}:{lead.id}")
    db.session.flush()


def crew_leads(ticket: Ticket) -> list[Staff]:
    """The active lead(s) of the crew that holds (held) the ticket."""
    if ticket.crew_id is None:
        return []
    return list(db.session.scalars(select(Staff).where(
        Staff.crew_id == ticket.crew_id, Staff.role == Role.CREW_LEAD, Staff.active.is_(True)).order_by(Staff.id)))


# --- 回访 tasks -------------------------------------------------------------------------------------

def open_follow_ups(ticket: Ticket | None = None, *, conversation: Conversation | None = None) -> list[FollowUpTask]:
    query = select(FollowUpTask).where(FollowUpTask.state == FollowUpState.OPEN)
    if ticket is not None:
        query = query.where(FollowUpTask.ticket_id == ticket.id)
    if conversation is not None:
        query = query.where(FollowUpTask.conversation_id == conversation.id)
    return list(db.session.scalars(query.order_by(FollowUpTask.created_at, FollowUpTask.id)))


def get_follow_up(task_id: int) -> FollowUpTask:
    task = db.session.get(FollowUpTask, task_id)
    if task is None:
        raise NotFoundError("回访任务不存在", code="follow_up_not_found")
    return task


def record_conversation_visit(task: FollowUpTask, actor: Actor, result: str) -> None:
    """回访 of a rated conversation: the result closes the task (a ticket's visit goes through
    ``record_visit`` and the ticket's timeline)."""
    result = (result or "").strip()
    if task.conversation_id is None:
        raise InvalidTransitionError("工单的回访请在工单页记录", code="follow_up_on_ticket")
    if task.state != FollowUpState.OPEN:
        raise InvalidTransitionError("该回访任务已完成", code="follow_up_done")
    if not result:
        raise ValidationError("请填写回访结果", fields={"result": ["请填写回访结果"]})
    if len(result) > COMMENT_MAX:
        message = f"回访结果不能超过{COMMENT_MAX}字"
        raise ValidationError(message, fields={"result": [message]})
    task.state, task.done_at, task.done_by_id, task.result = FollowUpState.DONE, utcnow(), actor.staff_id, result
    db.session.flush()


def record_visit(ticket: Ticket, actor: Actor, result: str, *, satisfied: bool | None = None) -> TicketEvent:
    """回访: the visit is recorded on the ticket and closes its open 回访 tasks."""
    event = tickets.record_visit(ticket, actor, result, satisfied=satisfied)
    for task in open_follow_ups(ticket):
        task.state, task.done_at, task.done_by_id, task.result = (
            FollowUpState.DONE, event.created_at, actor.staff_id, event.note)
    db.session.flush()
    return event


# --- rating a live-chat conversation (会话) ---------------------------------------------------------

def conversation_awaiting_rating(user: WechatUser, now: datetime | None = None) -> Conversation | None:
    """The person's latest conversation an agent answered, ended within ``CHAT_WINDOW`` and not rated."""
    now = now or utcnow()
    return db.session.scalar(select(Conversation).where(
        Conversation.wechat_user_id == user.id, Conversation.status == ConversationStatus.CLOSED,
        Conversation.agent_id.isnot(None), Conversation.rating.is_(None),
        Conversation.closed_at >= now - CHAT_WINDOW).order_by(Conversation.closed_at.desc()).limit(1))


def rate_conversation(conv: Conversation, score: int, comment: str | None = None, *, by: WechatUser,
                      now: datetime | None = None) -> None:
    """Rate an ended conversation once, as a ticket is rated in chat; 2 or less opens a 回访 task."""
    if by is None or conv.wechat_user_id != by.id:
        raise PermissionDeniedError("您无权评价该会话", code="conversation_forbidden")
    if conv.status != ConversationStatus.CLOSED:
        raise InvalidTransitionError("会话结束后才能评价", code="invalid_transition")
    score = _check_score(score)
    text = (comment or "").strip()[:COMMENT_MAX] or None
    if conv.rating is not None:
        raise ConflictError("本次会话已评价", code="already_rated")
    now = now or utcnow()
    if conv.closed_at is not None and now - conv.closed_at > CHAT_WINDOW:
        hours = int(CHAT_WINDOW.total_seconds() // 3600)
        raise InvalidTransitionError(f"已超过评价期限（会话结束后{hours}小时内可评价）", code="rating_window_passed")
    conv.rating, conv.rated_at = score, now
    if score <= LOW_RATING:
        _open_follow_up(score=score, comment=text, at=now, conversation=conv)
    db.session.flush()


# --- the phone system's IVR rating ----------------------------------------------------------------

@dataclass
class CallRatingOutcome:
    call: CallLog
    ticket: Ticket | None
    ticket_rated: bool          # the rating also became the ticket's rating


def find_ticket(number: str) -> Ticket | None:
    """By our number (GD…) or the phone system's own ticket number."""
    number = number.strip()
    return db.session.scalar(select(Ticket).where(or_(Ticket.number == number, Ticket.external_id == number)))


def record_call_rating(call_id: str, score: int, *, rated_at: datetime, ticket_number: str | None = None,
                       caller_phone: str | None = None) -> CallRatingOutcome:
    """The caller's post-call rating: on the call, once; on its ticket when that one is closed
    and not rated yet (else a timeline note on the ticket, the rating counted with the call).

    An unknown call is created from ``caller_phone`` (the rating came before the call's
    events); without one it cannot be placed (``NotFoundError``).
    """
    score = _check_score(score)
    call = db.session.scalar(select(CallLog).where(CallLog.call_id == call_id).with_for_update())
    if call is None:
        if not caller_phone:
            raise NotFoundError("找不到该通话，请先推送通话事件或在评价中附上来电号码", code="call_not_found",
                                fields={"call_id": ["未知的通话编号"]})
        call = CallLog(call_id=call_id, caller_phone=caller_phone, status=CallStatus.HANGUP, started_at=rated_at,
                       ended_at=rated_at, last_event_at=rated_at)
        db.session.add(call)
    if call.rating is not None:
        raise ConflictError(f"该通话已评价（{call.rating}分），不能再次评价", code="call_already_rated",
                            fields={"call_id": ["该通话已评价"]})
    ticket = None
    if ticket_number:
        ticket = find_ticket(ticket_number)
        if ticket is None:
            raise NotFoundError("找不到该工单", code="ticket_not_found", fields={"ticket_number": ["未知的工单号"]})
        if call.ticket_id is not None and call.ticket_id != ticket.id:
            raise ConflictError("该通话关联的是另一张工单", code="ticket_mismatch",
                                fields={"ticket_number": ["与通话关联的工单不一致"]})
        call.ticket_id = ticket.id
        if call.household_id is None:
            call.household_id = ticket.household_id
    elif call.ticket_id is not None:
        ticket = db.session.get(Ticket, call.ticket_id)
    call.rating, call.rated_at = score, rated_at
    db.session.flush()
    rated = False
    if ticket is not None:
        actor = Actor.phone(RatingSource.LABELS[RatingSource.IVR])
        if ticket.state == TicketState.CLOSED and ticket.rating is None:
            rate_ticket(ticket, score, None, source=RatingSource.IVR, actor=actor, now=rated_at)
            call.rating_on_ticket = rated = True
        else:
            tickets.note_event(ticket, actor, "call_rated", at=rated_at, note=f"来电满意度评价：{score}分",
                               data={"rating": score, "call_id": call.call_id})
    db.session.flush()
    return CallRatingOutcome(call, ticket, rated)
