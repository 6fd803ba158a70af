"""Live chat in the official account: while a resident's conversation with an agent is open,
what they write goes to the agent, not the bot (app/services/chat.py has the rules).

``intercept`` runs at the very entry of the conversation (wechat/conversation.py ``handle``):
with an open conversation, text and images join it (a WeChat retry of a message, same MsgId,
joins once), 结束 ends it, 人工 says where they stand. Otherwise the message is not ours: the
bot answers — a rating of an ended conversation (1-5, 满意 …) too, read like a ticket's
(``resident_requests.rate_in_chat``: whichever of the two waits for it).

``start`` is what 人工 (text, the menu's 联系客服, or the intent "human") does.
"""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.models import Conversation, ConversationStatus, WechatUser
from app.services import chat

ONLY_TEXT = "会话中暂时只能发送文字和图片，请用文字描述您的问题。"


def _redis():
    return current_app.extensions["redis"]


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


def intercept(msg, text: str | None, *, open_chat: bool | None = None) -> tuple[bool, str | None]:
    """``(handled, reply)``: handled when the message belongs to a conversation.

    ``open_chat``: whether the person has an open conversation, when the caller read it in the
    same transaction (False: no query here)."""
    if open_chat is False:
        return False, None
    openid = msg.source
    msgid = str(msg.id) if getattr(msg, "id", 0) else None
    conv = _open_for(openid)
    if conv is not None:
        return True, _in_conversation(conv, msg, text, msgid)
    return False, None


def _in_conversation(conv: Conversation, msg, text: str | None, msgid: str | None) -> str | None:
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
        chat.add_inbound(conv, media_id=msg.media_id, msgid=msgid)  # the fetch is promised through the outbox
        return None
    return ONLY_TEXT
