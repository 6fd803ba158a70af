"""Live chat (会话) jobs: the agent's messages out, the resident's images in.

``send_chat_message`` (outbox topic ``chat.send``) sends one outbound conversation message as
a WeChat customer-service message — an image is first uploaded as temporary media. The
message is committed ``sending`` right before the call; what comes back is kept on it:
``sent``, or ``failed`` with WeChat's code and the reason in Chinese (45015 outside the
48-hour window, 45047 over the five-per-message count, −1 busy, …), for the agent to see and
send again. A call whose answer was lost is ``unknown`` (it may have arrived, and WeChat does
not deduplicate customer-service messages): shown so, never repeated by itself.

``chat_invite`` (outbox topic ``notify.chat_invite``) invites a resident whose window has
closed back to the conversation with the 客服回复提醒 template notice (wechat.notify).

``fetch_chat_image`` stores a resident's image (checked by content, EXIF stripped) like the
photos of tickets.
"""
from __future__ import annotations

import logging

from app.extensions import db
from app.models import ChatSendStatus, Conversation, ConversationMessage, MessageDirection, WechatUser, utcnow
from app.queue import Deferred
from app.services.uploads import open_stored, store_image
from wechat import client as wechat_client
from wechat.errors import WeChatClientException
from wechat.notify import Notice, TemporaryFailure, send_custom_message, send_notice, upload_image

log = logging.getLogger(__name__)
CUT_OFF = "发送过程中断，无法确认居民是否收到，可确认后重发"


def _fail(message: ConversationMessage, reason: str, errcode: int | None = None,
          status: str = ChatSendStatus.FAILED) -> str:
    message.status, message.error, message.errcode = status, reason[:300], errcode
    db.session.commit()
    return status


def send_chat_message(payload: dict, outbox_id: int) -> str:
    message = db.session.get(ConversationMessage, payload["message_id"])
    if message is None or message.direction != MessageDirection.OUT:
        return "missing"
    if message.status == ChatSendStatus.SENDING:  # a run before this one was cut off during the call
        return _fail(message, CUT_OFF, status=ChatSendStatus.UNKNOWN)
    if message.status != ChatSendStatus.PENDING:
        return message.status  # sent, or failed and waiting for the agent
    openid = message.conversation.user.oa_openid
    if not openid:
        return _fail(message, "该居民没有公众号身份，无法发送客服消息")
    try:
        if message.image_path and not message.media_id:
            path = open_stored(message.image_path)
            message.media_id = upload_image(path.read_bytes(), path.name, message.content_type or "image/jpeg")
        message.status, message.attempts = ChatSendStatus.SENDING, message.attempts + 1
        db.session.commit()
        outcome = send_custom_message(openid, text=message.text, media_id=message.media_id if message.image_path
                                      else None)
    except TemporaryFailure as exc:
        if exc.maybe_sent:
            return _fail(message, CUT_OFF, status=ChatSendStatus.UNKNOWN)
        return _fail(message, f"微信接口暂时不可用，请稍后重发（{exc}）")
    except Deferred as exc:
        return _fail(message, f"微信接口限流，请稍后重发（{exc.reason}）")
    except WeChatClientException as exc:  # the image upload refused (size, type …)
        return _fail(message, f"图片上传微信失败（{exc.errcode}）：{exc.errmsg}", exc.errcode)
    except OSError as exc:
        return _fail(message, f"图片文件无法读取：{exc}")
    if outcome.status == "sent":
        message.status, message.sent_at, message.error, message.errcode = ChatSendStatus.SENT, utcnow(), None, None
        db.session.commit()
        return "sent"
    return _fail(message, outcome.reason or "发送失败", outcome.errcode)


def chat_invite(payload: dict, outbox_id: int) -> None:
    """A template notice (客服回复提醒) asking the resident back into the conversation."""
    conv = db.session.get(Conversation, payload["conversation_id"])
    user = db.session.get(WechatUser, payload["wechat_user_id"])
    if conv is None or user is None:
        return
    question = next((m.text for m in conv.messages if m.direction == MessageDirection.IN and m.text), "在线咨询")
    marker = next((m for m in reversed(conv.messages) if m.channel == "template"
                   and m.status == ChatSendStatus.PENDING), None)
    outcome = send_notice(user, Notice(
        key=f"outbox:{outbox_id}:user:{user.id}", kind="chat_invite", title="客服已回复您的咨询",
        values={"question": question, "reply": "客服已回复，请进入公众号查看并回复", "replied_at": utcnow()},
        remark="请进入公众号直接回复消息，即可继续与客服对话。"))
    if marker is not None:
        marker.status = ChatSendStatus.SENT if outcome.status == "sent" else ChatSendStatus.FAILED
        marker.error = None if outcome.status == "sent" else (outcome.reason or outcome.status)[:300]
        marker.errcode, marker.sent_at = outcome.errcode, utcnow() if outcome.status == "sent" else None
        db.session.commit()


def fetch_promised_image(payload: dict, outbox_id: int) -> str:
    """Outbox handler (topic media.chat_image, recorded by the chat service)."""
    return fetch_chat_image(payload["message_id"])


def fetch_chat_image(message_id: int) -> str:
    message = db.session.get(ConversationMessage, message_id)
    if message is None or message.image_path or not message.media_id:
        return "nothing to do"
    try:
        res = wechat_client.official_account().media.download(message.media_id)
    except WeChatClientException as exc:
        if exc.errcode == 40007:  # invalid or expired media_id: nothing to retry
            message.error = "图片已过期，无法获取"
            db.session.commit()
            return "media gone"
        raise
    try:
        path, content_type, _ = store_image(res.content, folder=f"chat/{message.conversation_id}")
    except ValueError as exc:
        message.error = f"图片无效：{exc}"[:300]
        db.session.commit()
        return "rejected"
    message.image_path, message.content_type = path, content_type
    db.session.commit()
    return "stored"
