"""Live chat with an agent (会话): the queue, the conversation's rules, its transcript.

A resident asks for a person (人工, the menu's 联系客服, or words classified as "human"):
``open_conversation`` opens their one conversation — or returns the one already open — with
their question in it. Agents take it from the queue (``claim``), answer (``reply``, sent by a
job as a WeChat customer-service message through the outbox), hand it to a colleague
(``transfer``), turn it into a ticket (``to_ticket``) and end it (``close``), which invites a
rating ("回复1-5评价本次服务"); the resident's answer rates it by the rules of every rating
(app/services/ratings.py: ``rate_conversation``, its one parser and window).

WeChat lets us answer only within 48 hours of the resident's last message, and at most five
customer-service messages per message of theirs (WECHAT.md §3, 45015/45047):
``reply_window`` says, before anything is sent, whether a reply can go out and, if not, why —
the agent may then invite the resident back with a template notice (``invite_back``).

Services never commit: the caller's unit of work does. Nothing here knows WeChat's wire.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.errors import ConflictError, InvalidTransitionError, NotFoundError, PermissionDeniedError, ValidationError
from app.clock import local_tz
from app.extensions import db
from app.models import (
    ChatSendStatus, Conversation, ConversationMessage, ConversationStatus, HouseholdBinding, InboundMessage,
    MessageDirection, Role, Staff, Ticket, TicketSource, TicketType, WechatUser, utcnow,
)
from app.services import binding, outbox, ratings, tickets
from app.services.actors import Actor

S = ConversationStatus
CUSTOM_WINDOW = timedelta(hours=48)      # WeChat: customer-service messages after a user message
CUSTOM_PER_MESSAGE = 5                   # WeChat: at most 5 of them per user message (45047)
CONTEXT_WINDOW = timedelta(minutes=30)   # the resident's words before 人工 join the conversation
CONTEXT_MESSAGES = 3
MAX_TEXT = 1000                          # one reply; WeChat's text limit is far above
RATING_INVITATION = "本次服务已结束，感谢您的耐心。请回复1-5评价本次服务（5为非常满意，1为非常不满意）。"
END_WORDS = frozenset(("结束", "结束会话", "结束对话", "退出人工"))
HUMAN_WORDS = frozenset(("人工", "客服", "转人工", "人工客服"))
SEND_TOPIC = "chat.send"
INVITE_TOPIC = "notify.chat_invite"
AGENT_ROLES = (Role.AGENT, Role.ADMIN)


# --- office hours ------------------------------------------------------------------------------

def service_hours() -> tuple[time, time]:
    """SERVICE_HOURS "HH:MM-HH:MM" (local time)."""
    spec = current_app.config.get("SERVICE_HOURS") or "08:00-20:00"
    start, _, end = spec.partition("-")
    return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())


def in_service_hours(at: datetime) -> bool:
    start, end = service_hours()
    local = at.astimezone(local_tz()).time()
    return start <= local < end if start <= end else (local >= start or local < end)


def hours_text() -> str:
    start, end = service_hours()
    return f"{start:%H:%M}-{end:%H:%M}"


def hotline() -> str:
    return current_app.config.get("HOTLINE_NUMBER") or ""


# --- routing hint: the callback's fast path sends FAQ questions to the bot unless this says
#     the person is in a conversation (or may be rating one); the database decides the rest.

def route_key(openid: str) -> str:
    return f"chat:route:{openid}"


def note_route(redis, conv: Conversation, now: datetime | None = None) -> None:
    """Keep the hint in step with ``conv`` (call when it opens or closes)."""
    openid = conv.user.oa_openid if conv.user else None
    if not openid:
        return
    if conv.is_open:
        redis.set(route_key(openid), "open", ex=int(CUSTOM_WINDOW.total_seconds()) * 4)
    elif conv.agent_id is not None and conv.rating is None and conv.closed_at is not None:
        left = ratings.CHAT_WINDOW - ((now or utcnow()) - conv.closed_at)
        if left.total_seconds() > 1:
            redis.set(route_key(openid), "rate", ex=int(left.total_seconds()))
    else:
        redis.delete(route_key(openid))


# --- opening, and the resident's side -------------------------------------------------------------

def active_conversation(wechat_user: WechatUser) -> Conversation | None:
    """The person's open (waiting or active) conversation, if any."""
    return db.session.scalar(select(Conversation).where(
        Conversation.wechat_user_id == wechat_user.id, Conversation.status.in_(S.OPEN)))


def _recent_words(user: WechatUser, now: datetime) -> list[InboundMessage]:
    """The resident's last few texts before asking for a person: usually their question."""
    if not user.oa_openid:
        return []
    rows = db.session.scalars(
        select(InboundMessage).where(InboundMessage.openid == user.oa_openid, InboundMessage.msg_type == "text",
                                     InboundMessage.received_at >= now - CONTEXT_WINDOW)
        .order_by(InboundMessage.id.desc()).limit(CONTEXT_MESSAGES + 2)).all()
    words = [r for r in rows if (r.content or "").strip() and r.content.strip() not in HUMAN_WORDS | END_WORDS]
    return list(reversed(words[:CONTEXT_MESSAGES]))


def open_conversation(wechat_user: WechatUser, first_message_text: str | None, *, msgid: str | None = None,
                      now: datetime | None = None) -> tuple[Conversation, bool]:
    """Open the person's conversation, or return the one already open: ``(conversation, created)``.

    A new conversation carries the resident's recent words (their question before 人工) and
    ``first_message_text`` when given; it is queued for agents. Outside SERVICE_HOURS it is
    flagged for a call-back. Two requests at once still open one (partial unique index).
    """
    now = now or utcnow()
    existing = active_conversation(wechat_user)
    if existing is not None:
        if first_message_text and first_message_text.strip() not in HUMAN_WORDS:
            add_inbound(existing, text=first_message_text, msgid=msgid, now=now)
        return existing, False
    homes = binding.bound_households(wechat_user)
    conv = Conversation(wechat_user_id=wechat_user.id, household_id=homes[0].id if homes else None,
                        status=S.WAITING, opened_at=now, last_activity_at=now, last_inbound_at=now,
                        callback_requested=not in_service_hours(now))
    try:
        with db.session.begin_nested():
            db.session.add(conv)
            db.session.flush()
    except IntegrityError:  # opened by a concurrent request a moment ago
        existing = active_conversation(wechat_user)
        if existing is None:
            raise
        return existing, False
    for earlier in _recent_words(wechat_user, now):
        if earlier.dedupe_key != msgid:
            db.session.add(ConversationMessage(conversation_id=conv.id, direction=MessageDirection.IN,
                                               text=earlier.content.strip()[:MAX_TEXT], status=ChatSendStatus.RECEIVED,
                                               created_at=earlier.received_at))
    if first_message_text and first_message_text.strip() not in HUMAN_WORDS:
        add_inbound(conv, text=first_message_text, msgid=msgid, now=now)
    db.session.flush()
    return conv, True


# Outbox topic: fetch an image a resident sent into a conversation (jobs.chat).
FETCH_IMAGE = "media.chat_image"


def add_inbound(conv: Conversation, *, text: str | None = None, media_id: str | None = None,
                msgid: str | None = None, now: datetime | None = None) -> ConversationMessage | None:
    """A resident's message joins their conversation; a WeChat retry of it (same MsgId)
    changes nothing (returns None)."""
    now = now or utcnow()
    if msgid and db.session.scalar(select(ConversationMessage.id).where(ConversationMessage.wechat_msgid == msgid)):
        return None
    message = ConversationMessage(conversation_id=conv.id, direction=MessageDirection.IN,
                                  text=(text or "").strip()[:MAX_TEXT] or None, media_id=media_id,
                                  wechat_msgid=msgid, status=ChatSendStatus.RECEIVED, created_at=now)
    db.session.add(message)
    conv.last_inbound_at = conv.last_activity_at = now
    db.session.flush()
    if media_id:  # fetched by jobs.chat; the promise rides in this transaction
        outbox.record(FETCH_IMAGE, {"message_id": message.id}, dedupe_key=f"{FETCH_IMAGE}:{message.id}")
    return message


def note_passive_reply(conv: Conversation, text: str, *, now: datetime | None = None) -> None:
    """Our automatic answer (the callback's passive reply) kept in the transcript."""
    now = now or utcnow()
    db.session.add(ConversationMessage(conversation_id=conv.id, direction=MessageDirection.OUT, text=text,
                                       status=ChatSendStatus.SENT, channel="passive", created_at=now, sent_at=now))


def queue_position(conv: Conversation) -> int:
    """1 for the first in the queue."""
    ahead = db.session.scalar(select(func.count(Conversation.id)).where(
        Conversation.status == S.WAITING, Conversation.opened_at < conv.opened_at)) or 0
    return ahead + 1 if conv.status == S.WAITING else 0


def opening_answer(conv: Conversation) -> str:
    """What the resident hears when they ask for a person."""
    if conv.status == S.ACTIVE:
        name = conv.agent.name if conv.agent else "客服"
        return f"客服{name}正在为您服务，请直接在这里留言。回复【结束】可结束本次会话。"
    if conv.callback_requested:
        return (f"您好，人工客服的服务时间为每天{hours_text()}，现在不在服务时间。您的留言已记录，"
                f"客服上班后会尽快回复或回电给您；紧急情况（漏水、爆管等）请直接拨打24小时热线{hotline()}。"
                "您可以继续在这里描述问题，回复【结束】可取消。")
    return (f"已为您转接人工客服，您前面还有{queue_position(conv) - 1}位，请稍候。"
            "您可以先在这里描述问题，客服接入后会直接回复您；回复【结束】可结束会话。")


def end_by_resident(conv: Conversation, *, now: datetime | None = None) -> str:
    """The resident sent 结束: the conversation ends and they are invited to rate it."""
    _close(conv, closed_by="resident", now=now)
    if conv.agent_id is None:
        return "已结束人工会话。如需帮助可随时回复【人工】。"
    return RATING_INVITATION


# --- the agent's side -------------------------------------------------------------------------------

def get_conversation(conversation_id: int) -> Conversation:
    conv = db.session.get(Conversation, conversation_id)
    if conv is None:
        raise NotFoundError("会话不存在", code="conversation_not_found")
    return conv


def _require_agent(staff: Staff) -> None:
    if not (staff is not None and staff.active and staff.role in AGENT_ROLES):
        raise PermissionDeniedError("只有客服可以处理会话", code="chat_forbidden")


def _require_open(conv: Conversation) -> None:
    if not conv.is_open:
        raise InvalidTransitionError("会话已结束", code="conversation_closed")


def _require_mine(conv: Conversation, staff: Staff) -> None:
    _require_open(conv)
    if conv.agent_id != staff.id:
        who = conv.agent.name if conv.agent else "队列"
        raise ConflictError(f"该会话不在您名下（当前：{who}），请先接入", code="not_your_conversation")


def claim(conv: Conversation, staff: Staff, *, now: datetime | None = None) -> None:
    """Take a waiting conversation from the queue. Two agents at once: one gets it."""
    _require_agent(staff)
    _require_open(conv)
    if conv.status == S.ACTIVE:
        if conv.agent_id == staff.id:
            return
        raise ConflictError(f"该会话已由{conv.agent.name}接入", code="already_claimed")
    now = now or utcnow()
    taken = db.session.execute(
        Conversation.__table__.update()
        .where(Conversation.id == conv.id, Conversation.status == S.WAITING)
        .values(status=S.ACTIVE, agent_id=staff.id, claimed_at=now, last_activity_at=now)).rowcount
    db.session.refresh(conv)
    if not taken:
        raise ConflictError("该会话刚被其他客服接入", code="already_claimed")


def transfer(conv: Conversation, staff: Staff, to: Staff, *, now: datetime | None = None) -> ConversationMessage:
    _require_agent(staff)
    _require_mine(conv, staff)
    if to is None or not to.active or to.role not in AGENT_ROLES:
        raise ValidationError("请选择要转给的客服", fields={"to": ["请选择在岗的客服"]})
    if to.id == staff.id:
        raise ValidationError("不能转给自己", fields={"to": ["不能转给自己"]})
    conv.agent_id = to.id
    conv.last_activity_at = now or utcnow()
    return _send(conv, None, f"您的会话已转给客服{to.name}，请稍候。", now=now)


@dataclass
class ReplyWindow:
    open: bool
    reason: str | None = None    # why not, in Chinese, for the agent
    left: int = 0                # customer-service messages left for the resident's last message


def reply_window(conv: Conversation, now: datetime | None = None) -> ReplyWindow:
    """Whether WeChat will carry a reply now (48 hours, 5 messages per resident message)."""
    now = now or utcnow()
    last = conv.last_inbound_at
    if last is None or now - last >= CUSTOM_WINDOW:
        return ReplyWindow(False, "居民最后一次发消息已超过48小时，微信不再允许发送客服消息（45015）。"
                                  "可发送模板通知，邀请居民回到公众号继续对话。")
    used = db.session.scalar(select(func.count(ConversationMessage.id)).where(
        ConversationMessage.conversation_id == conv.id, ConversationMessage.direction == MessageDirection.OUT,
        ConversationMessage.channel == "custom",
        ConversationMessage.status.in_((ChatSendStatus.SENT, ChatSendStatus.SENDING, ChatSendStatus.PENDING,
                                        ChatSendStatus.UNKNOWN)),
        ConversationMessage.created_at >= last)) or 0
    left = CUSTOM_PER_MESSAGE - used
    if left <= 0:
        return ReplyWindow(False, f"居民上一条消息后已发送{CUSTOM_PER_MESSAGE}条客服消息，微信不允许再发（45047），"
                                  "请等待居民回复后再发送。")
    return ReplyWindow(True, None, left)


def _send(conv: Conversation, staff: Staff | None, text: str | None, *, image: tuple[str, str] | None = None,
          now: datetime | None = None) -> ConversationMessage:
    """An outbound message, sent after commit by the job (outbox topic ``chat.send``)."""
    now = now or utcnow()
    message = ConversationMessage(conversation_id=conv.id, direction=MessageDirection.OUT, text=text,
                                  image_path=image[0] if image else None, content_type=image[1] if image else None,
                                  sender_staff_id=staff.id if staff else None, status=ChatSendStatus.PENDING,
                                  channel="custom", created_at=now)
    db.session.add(message)
    db.session.flush()
    outbox.record(SEND_TOPIC, {"message_id": message.id}, dedupe_key=f"chat.send:{message.id}:0")
    return message


def reply(conv: Conversation, staff: Staff, text: str | None = None, *, image: tuple[str, str] | None = None,
          now: datetime | None = None) -> ConversationMessage:
    """The agent answers: text or an image (a stored upload: (path, content type))."""
    _require_agent(staff)
    _require_mine(conv, staff)
    text = (text or "").strip()
    if not text and image is None:
        raise ValidationError("请输入回复内容", fields={"text": ["请输入回复内容"]})
    if len(text) > MAX_TEXT:
        raise ValidationError(f"回复不能超过{MAX_TEXT}字", fields={"text": [f"回复不能超过{MAX_TEXT}字"]})
    now = now or utcnow()
    window = reply_window(conv, now)
    if not window.open:
        raise ConflictError(window.reason, code="window_closed")
    message = _send(conv, staff, text or None, image=image, now=now)
    if conv.first_response_at is None:
        conv.first_response_at = now
    conv.last_activity_at = now
    return message


def retry(message: ConversationMessage, staff: Staff, *, now: datetime | None = None) -> None:
    """Send a failed (or unknown-outcome) message again — a new outbox row, the same message."""
    _require_agent(staff)
    conv = message.conversation
    if message.direction != MessageDirection.OUT or message.status not in ChatSendStatus.RETRYABLE:
        raise InvalidTransitionError("该消息不需要重发", code="not_retryable")
    window = reply_window(conv, now)
    if not window.open:
        raise ConflictError(window.reason, code="window_closed")
    message.status, message.error, message.errcode = ChatSendStatus.PENDING, None, None
    outbox.record(SEND_TOPIC, {"message_id": message.id},
                  dedupe_key=f"chat.send:{message.id}:{message.attempts}")


def invite_back(conv: Conversation, staff: Staff, *, now: datetime | None = None) -> None:
    """Outside the window: a template notice asking the resident to come back."""
    _require_agent(staff)
    _require_open(conv)
    now = now or utcnow()
    db.session.add(ConversationMessage(conversation_id=conv.id, direction=MessageDirection.OUT,
                                       text="（已发送模板通知，邀请居民回到公众号继续对话）", sender_staff_id=staff.id,
                                       status=ChatSendStatus.PENDING, channel="template", created_at=now))
    db.session.flush()
    count = db.session.scalar(select(func.count(ConversationMessage.id)).where(
        ConversationMessage.conversation_id == conv.id, ConversationMessage.channel == "template"))
    outbox.record(INVITE_TOPIC, {"conversation_id": conv.id, "wechat_user_id": conv.wechat_user_id,
                                 "staff_id": staff.id}, dedupe_key=f"chat.invite:{conv.id}:{count}")


def _close(conv: Conversation, *, closed_by: str, now: datetime | None = None) -> None:
    _require_open(conv)
    now = now or utcnow()
    conv.status, conv.closed_at, conv.closed_by, conv.last_activity_at = S.CLOSED, now, closed_by, now


def close(conv: Conversation, staff: Staff, *, now: datetime | None = None) -> None:
    """The agent ends the conversation; the resident is invited to rate it (if WeChat lets us)."""
    _require_agent(staff)
    _require_open(conv)
    if conv.agent_id not in (None, staff.id) and staff.role != Role.ADMIN:
        raise ConflictError(f"该会话由{conv.agent.name}处理，只有其本人或管理员可以结束", code="not_your_conversation")
    now = now or utcnow()
    if conv.agent_id is None:  # closed from the queue (e.g. after a call-back): the agent is who ended it
        conv.agent_id, conv.claimed_at = staff.id, now
    if reply_window(conv, now).open:
        _send(conv, None, RATING_INVITATION, now=now)
    _close(conv, closed_by="staff", now=now)


def mark_called_back(conv: Conversation, staff: Staff, *, now: datetime | None = None) -> None:
    _require_agent(staff)
    if not conv.callback_requested or conv.callback_done_at is not None:
        raise InvalidTransitionError("该会话没有待回电任务", code="no_callback")
    conv.callback_done_at, conv.callback_done_by_id = now or utcnow(), staff.id


def resident_words(conv: Conversation) -> str:
    """The resident's side of the transcript, in order, for a ticket's description."""
    tz = local_tz()
    lines = []
    for m in conv.messages:
        if m.direction != MessageDirection.IN:
            continue
        what = m.text or ("[图片]" if m.media_id or m.image_path else "")
        if what:
            lines.append(f"{m.created_at.astimezone(tz):%H:%M} {what}")
    return "\n".join(lines)


def to_ticket(conv: Conversation, staff: Staff, *, type: str = TicketType.REPAIR,
              category: str | None = None) -> Ticket:
    """One click: a ticket carrying the resident's words (and the household, when bound)."""
    _require_agent(staff)
    if conv.ticket_id is not None:
        raise ConflictError("该会话已转为工单", code="already_ticket")
    words = resident_words(conv)
    if not words:
        raise ValidationError("会话中还没有居民的留言，无法转为工单", fields={"conversation": ["没有居民留言"]})
    # The resident's photos go with their words: stored ones by file, the rest by media id.
    photos = [tickets.PhotoInput(media_id=None if m.image_path else m.media_id, path=m.image_path,
                                 content_type=m.content_type)
              for m in conv.messages if m.direction == MessageDirection.IN and (m.image_path or m.media_id)]
    kw = {"category": category} if category else {}
    ticket = tickets.create_ticket(Actor.of_staff(staff), type=type, source=TicketSource.OFFICIAL_ACCOUNT,
                                   description=f"【在线会话转工单】\n{words}", household=conv.household,
                                   photos=photos, **kw)
    ticket.reporter_id = conv.wechat_user_id  # the resident follows it and hears of its progress
    conv.ticket_id = ticket.id
    return ticket


# --- what the console shows ---------------------------------------------------------------------------

def waiting_queue() -> list[Conversation]:
    return list(db.session.scalars(select(Conversation).where(Conversation.status == S.WAITING)
                                   .order_by(Conversation.opened_at, Conversation.id)))


def conversations_of(staff: Staff) -> list[Conversation]:
    return list(db.session.scalars(select(Conversation).where(
        Conversation.status == S.ACTIVE, Conversation.agent_id == staff.id)
        .order_by(Conversation.last_activity_at.desc())))


def agents() -> list[Staff]:
    return list(db.session.scalars(select(Staff).where(Staff.active.is_(True), Staff.role.in_(AGENT_ROLES))
                                   .order_by(Staff.id)))


def change_stamp() -> str:
    """Moves whenever any conversation or message changes: the page's poll compares it."""
    a = db.session.execute(select(func.count(Conversation.id), func.max(Conversation.last_activity_at))).one()
    b = db.session.execute(select(func.max(ConversationMessage.id), func.count(ConversationMessage.id)
                                  .filter(ConversationMessage.status.in_((ChatSendStatus.SENT,
                                                                          ChatSendStatus.FAILED))))).one()
    return hashlib.sha1(f"{a[0]}:{a[1]}:{b[0]}:{b[1]}".encode()).hexdigest()[:16]


# --- metrics ------------------------------------------------------------------------------------------

@dataclass
class ChatMetrics:
    opened: int
    answered: int                  # taken by an agent
    avg_wait_s: float | None       # opened → taken from the queue
    avg_first_response_s: float | None   # opened → the agent's first message
    waiting_now: int
    per_agent: list[dict]          # [{"agent", "conversations", "avg_wait_s", "avg_first_response_s",
    #                                "avg_rating", "rated", "rating_sum", "satisfied"}]
    avg_rating: float | None
    rated: int = 0                 # conversations rated (1-5) by their resident
    satisfied: int = 0             # … with 4 or 5


def _avg(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def chat_metrics(start: datetime, end: datetime) -> ChatMetrics:
    """Conversations opened in [start, end): waiting time, first response time, per agent."""
    rows = db.session.execute(select(
        Conversation.agent_id, Conversation.opened_at, Conversation.claimed_at, Conversation.first_response_at,
        Conversation.rating).where(Conversation.opened_at >= start, Conversation.opened_at < end)).all()
    waits = [(r.claimed_at - r.opened_at).total_seconds() for r in rows if r.claimed_at]
    firsts = [(r.first_response_at - r.opened_at).total_seconds() for r in rows if r.first_response_at]
    by_agent: dict[int, list] = {}
    for r in rows:
        if r.agent_id is not None:
            by_agent.setdefault(r.agent_id, []).append(r)
    names = dict(db.session.execute(select(Staff.id, Staff.name).where(Staff.id.in_(by_agent))).all()) \
        if by_agent else {}
    per_agent = sorted(({
        "agent": names.get(agent_id, str(agent_id)), "conversations": len(rs),
        "avg_wait_s": _avg([(r.claimed_at - r.opened_at).total_seconds() for r in rs if r.claimed_at]),
        "avg_first_response_s": _avg([(r.first_response_at - r.opened_at).total_seconds()
                                      for r in rs if r.first_response_at]),
        "avg_rating": _avg([r.rating for r in rs if r.rating]),
        "rated": sum(1 for r in rs if r.rating), "rating_sum": sum(r.rating for r in rs if r.rating),
        "satisfied": sum(1 for r in rs if r.rating and r.rating >= 4),
    } for agent_id, rs in by_agent.items()), key=lambda d: (-d["conversations"], d["agent"]))
    waiting = db.session.scalar(select(func.count(Conversation.id)).where(Conversation.status == S.WAITING)) or 0
    rated = [r.rating for r in rows if r.rating]
    return ChatMetrics(len(rows), len(waits), _avg(waits), _avg(firsts), waiting, per_agent, _avg(rated),
                       len(rated), sum(1 for v in rated if v >= 4))


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}秒"
    if seconds < 3600:
        return f"{seconds // 60}分{seconds % 60:02d}秒"
    return f"{seconds // 3600}小时{seconds % 3600 // 60:02d}分"
