"""Console page 会话 (/console/chats): live chat with residents.

The waiting queue, the signed-in agent's conversations, one conversation's transcript with a
reply box (text or an image), quick replies from the knowledge base, and the actions: take
from the queue, transfer, close (which invites a rating), 转为工单, invite back by template
notice when WeChat's 48-hour window has closed, call-back done, resend a failed message.

Live updates: the page polls ``/console/chats/live.json`` every ``DASHBOARD_POLL_SECONDS``
(like the dashboard's poll fallback); the answer carries a change stamp and, when it moved,
the lists and the transcript rendered by the same templates as the page. Every form works
without JavaScript (POST → redirect → GET). Same blueprint and rules as ``app.web.console``.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, send_file, url_for
from sqlalchemy import select

from app.errors import DomainError, ValidationError
from app.extensions import db
from app.http_limits import body_limit
from app.models import (
    ChatSendStatus, Conversation, ConversationMessage, ConversationStatus, FaqEntry, Staff, TicketType, utcnow,
)
from app.services import chat, knowledge, uploads
from app.web import auth
from app.web.console_base import bp, tz

QUICK_REPLIES = 8


def _today_metrics() -> chat.ChatMetrics:
    now = utcnow()
    start = datetime.combine(now.astimezone(tz()).date(), time(0), tzinfo=tz())
    return chat.chat_metrics(start, start + timedelta(days=1))


@bp.app_template_filter("chat_duration")
def _chat_duration(seconds: float | None) -> str:
    """Seconds as 3分05秒 (the 会话 page and the reports' 在线会话)."""
    return chat.duration_text(seconds)


def _selected() -> Conversation | None:
    conv_id = request.args.get("id", type=int)
    return db.session.get(Conversation, conv_id) if conv_id else None


def _context(conv: Conversation | None) -> dict:
    me = auth.current_staff()
    window = chat.reply_window(conv) if conv is not None and conv.is_open else None
    return {
        "queue": chat.waiting_queue(), "mine": chat.conversations_of(me), "conv": conv, "window": window,
        "agents": [a for a in chat.agents() if a.id != me.id], "S": ConversationStatus, "M": ChatSendStatus,
        "me": me, "positions": {c.id: i for i, c in enumerate(chat.waiting_queue(), start=1)},
        "callbacks": list(db.session.scalars(select(Conversation).where(
            Conversation.callback_requested.is_(True), Conversation.callback_done_at.is_(None))
            .order_by(Conversation.opened_at).limit(20))),
        "TicketType": TicketType, "duration": chat.duration_text,
        "poll_seconds": current_app.config["DASHBOARD_POLL_SECONDS"],
    }


@bp.route("/chats")
def chats():
    conv = _selected()
    return render_template("console/chats.html", metrics=_today_metrics(), stamp=chat.change_stamp(),
                           **_context(conv))


@bp.route("/chats/live.json")
def chats_live():
    """The poll: same stamp → nothing to redraw; else the lists and the transcript."""
    stamp = chat.change_stamp()
    if request.args.get("stamp") == stamp:
        return jsonify({"stamp": stamp, "same": True})
    conv = _selected()
    ctx = _context(conv)
    window = ctx["window"]
    m = _today_metrics()
    return jsonify({
        "stamp": stamp, "same": False,
        "lists": render_template("console/chats_lists.html", **ctx),
        "thread": render_template("console/chats_thread.html", **ctx) if conv is not None else "",
        "window": {"open": bool(window and window.open), "reason": window.reason if window else None,
                   "left": window.left if window else 0},
        "status": conv.status if conv is not None else None,
        "metrics": {"waiting": m.waiting_now, "opened": m.opened, "avg_wait": chat.duration_text(m.avg_wait_s),
                    "avg_first_response": chat.duration_text(m.avg_first_response_s)},
    })


@bp.route("/chats/faq.json")
def chats_faq():
    """Quick replies: FAQ entries matching ``q`` (or the most used ones)."""
    q = (request.args.get("q") or "").strip()[:100]
    if q:
        found = [{"question": m.question, "answer": m.answer} for m in knowledge.search_faq(q, limit=QUICK_REPLIES)]
    else:
        found = [{"question": e.question, "answer": e.answer} for e in db.session.scalars(
            select(FaqEntry).where(FaqEntry.active.is_(True)).order_by(FaqEntry.hits.desc(), FaqEntry.id)
            .limit(QUICK_REPLIES))]
    return jsonify({"items": found})


def _back(conv_id: int, message: str | None = None):
    db.session.commit()
    if message:
        flash(message, "ok")
    return redirect(url_for("console.chats", id=conv_id))


def _act(conv_id: int, action, message: str):
    """Run one service call on the conversation; a refusal is shown on the page, nothing changed."""
    conv = chat.get_conversation(conv_id)
    try:
        result = action(conv, auth.current_staff())
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "bad")
        return redirect(url_for("console.chats", id=conv_id))
    return _back(conv_id, message(result) if callable(message) else message)


@bp.route("/chats/<int:conv_id>/claim", methods=["POST"])
def chat_claim(conv_id: int):
    return _act(conv_id, lambda c, me: chat.claim(c, me), "已接入会话")


@bp.route("/chats/<int:conv_id>/reply", methods=["POST"])
@body_limit(uploads.MAX_BYTES + 256 * 1024)
def chat_reply(conv_id: int):
    upload = request.files.get("image")

    def send(conv, me):
        image = None
        if upload is not None and upload.filename:
            try:
                path, content_type, _ = uploads.store_image(upload.stream.read(uploads.MAX_BYTES + 1),
                                                            folder=f"chat/{conv.id}")
            except ValueError as exc:
                raise ValidationError(f"图片无法发送：{exc}") from exc
            image = (path, content_type)
        text = request.form.get("text")
        if image is not None and (text or "").strip():
            chat.reply(conv, me, text)  # the words, then the picture: two WeChat messages
        return chat.reply(conv, me, None if image is not None else text, image=image)

    return _act(conv_id, send, None)


@bp.route("/chats/<int:conv_id>/transfer", methods=["POST"])
def chat_transfer(conv_id: int):
    to = db.session.get(Staff, request.form.get("to", type=int) or 0)
    return _act(conv_id, lambda c, me: chat.transfer(c, me, to), lambda _: f"已转给{to.name}")


@bp.route("/chats/<int:conv_id>/close", methods=["POST"])
def chat_close(conv_id: int):
    return _act(conv_id, lambda c, me: chat.close(c, me), "会话已结束，已邀请居民评价")


@bp.route("/chats/<int:conv_id>/ticket", methods=["POST"])
def chat_ticket(conv_id: int):
    kind = request.form.get("type") or TicketType.REPAIR
    if kind not in TicketType.ALL:
        abort(400)
    return _act(conv_id, lambda c, me: chat.to_ticket(c, me, type=kind), lambda t: f"已转为工单 {t.number}")


@bp.route("/chats/<int:conv_id>/invite", methods=["POST"])
def chat_invite(conv_id: int):
    return _act(conv_id, lambda c, me: chat.invite_back(c, me), "已发送模板通知，邀请居民回来继续对话")


@bp.route("/chats/<int:conv_id>/called-back", methods=["POST"])
def chat_called_back(conv_id: int):
    return _act(conv_id, lambda c, me: chat.mark_called_back(c, me), "已记录回电")


@bp.route("/chats/<int:conv_id>/messages/<int:message_id>/retry", methods=["POST"])
def chat_retry(conv_id: int, message_id: int):
    message = db.session.get(ConversationMessage, message_id)
    if message is None or message.conversation_id != conv_id:
        abort(404)
    return _act(conv_id, lambda c, me: chat.retry(message, me), "已重新发送")


@bp.route("/chats/<int:conv_id>/messages/<int:message_id>/image")
def chat_image(conv_id: int, message_id: int):
    message = db.session.get(ConversationMessage, message_id)
    if message is None or message.conversation_id != conv_id or not message.image_path:
        abort(404)
    path = uploads.stored_file(message.image_path)
    if path is None:
        abort(404)
    return send_file(path, mimetype=message.content_type or "image/jpeg", max_age=3600)
