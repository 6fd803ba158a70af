"""Live chat in the official account: while a resident's conversation with an agent is open,
what they write goes to the agent, not the bot (app/services/chat.py has the rules).

``intercept`` runs at the very entry of the conversation (wechat/conversation.py ``handle``):
with an open conversation, text and images join it (a WeChat retry of a message, same MsgId,
joins once), 结束 ends it, 人工 says where they stand; right after an agent closed it, rating
words (1-5, 满意 …) rate it — unless a ticket closed later is waiting for that rating
(ratings of tickets are the bot's). Otherwise the message is not ours: the bot answers.

``start`` is what 人工 (text, the menu's 联系客服, or the intent "human") does.
"""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.models import Conversation, ConversationStatus, Ticket, TicketState, WechatUser
from app.services import chat

THANKS = "感谢您的评价，我们会继续努力！如需帮助可随时回复【人工】。"
ONLY_TEXT = "会话中暂时只能发送文字和图片，请用文字描述您的问题。"


def _redis():
    return current_app.extensions["redis"]


def _user(openid: str) -> WechatUser | None:
    return db.session.scalar(select(WechatUser).where(WechatUser.oa_openid == openid))


def _open_for(openid: str) -> Conversation | None:
    return db.session.scalar(
        select(Conversation).join(WechatUser, WechatUser.id == Conversation.wechat_user_id)
        .where(WechatUser.oa_openid == openid, Conversation.status.in_(ConversationStatus.OPEN)))


def in_chat_hint(openid: str) -> bool:
    """The fast path's question: might this person be in (or rating) a conversation?"""
    return bool(_redis().exists(chat.route_key(openid)))


def start(user: WechatUser, text: str | None = None, *, msgid: str | None = None) -> str:
    """Open (or find) the person's conversation; the answer tells them where they stand."""
    conv, _ = chat.open_conversation(user, text, msgid=msgid)
    answer = chat.opening_answer(conv)
    chat.note_passive_reply(conv, answer)
    chat.note_route(_redis(), conv)
    return answer


def intercept(msg, text: str | None, after_commit) -> tuple[bool, str | None]:
    """``(handled, reply)``: handled when the message belongs to a conversation."""
    openid = msg.source
    msgid = str(msg.id) if getattr(msg, "id", 0) else None
    conv = _open_for(openid)
    if conv is not None:
        return True, _in_conversation(conv, msg, text, msgid, after_commit)
    if text is None or chat.rating_of(text) is None:
        return False, None
    user = _user(openid)
    rated = chat.conversation_awaiting_rating(user) if user is not None else None
    if rated is None or _ticket_closed_since(user, rated):
        return False, None
    chat.rate(rated, chat.rating_of(text))
    chat.note_route(_redis(), rated)
    return True, THANKS


def _ticket_closed_since(user: WechatUser, conv: Conversation) -> bool:
    """A ticket of theirs closed after the conversation and not rated: "5" is for it."""
    return db.session.scalar(select(Ticket.id).where(
        Ticket.reporter_id == user.id, Ticket.state == TicketState.CLOSED, Ticket.rating.is_(None),
        Ticket.closed_at > conv.closed_at).limit(1)) is not None


def _in_conversation(conv: Conversation, msg, text: str | None, msgid: str | None, after_commit) -> str | None:
    if text is not None:
        word = text.strip()
        if word in chat.END_WORDS:
            answer = chat.end_by_resident(conv)
            chat.note_passive_reply(conv, answer)
            chat.note_route(_redis(), conv)
            return answer
        if word in chat.HUMAN_WORDS:
            return chat.opening_answer(conv)
        if not word:
            return None
        chat.add_inbound(conv, text=word, msgid=msgid)
        return None
    if msg.type == "image":
        message = chat.add_inbound(conv, media_id=msg.media_id, msgid=msgid)
        if message is not None:
            db.session.flush()
            after_commit("jobs.chat.fetch_chat_image", message.id, queue="default")
        return None
    return ONLY_TEXT
