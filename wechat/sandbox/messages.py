"""Outbound messaging: customer service, template, subscribe messages and mass sends.

Each send lands in the recipient's inbox. Template and subscribe messages must use one of the
account's templates with exactly its keys, each value within its rule (templates.py: 40037,
47003); the inbox keeps the template's title and the card's rows. Template and mass sends are
followed by the
TEMPLATESENDJOBFINISH / MASSSENDJOBFINISH event posted to the callback (from a thread unless
events_async is off), with `MsgID` spelled as WeChat spells it.
"""
from __future__ import annotations

import json
import secrets
import threading

from flask import Blueprint, jsonify

from . import callback, faults, templates
from .errors import WeChatError
from .links import text_link_flags
from .media import load_media
from .people import take_consent
from .tokens import count_pending, json_body, wechat_api

WINDOW_MESSAGE = 48 * 3600  # after a user message: 5 messages within 48 h
WINDOW_MESSAGE_COUNT = 5
WINDOW_EVENT = 60  # after a click, follow or scan: 3 messages within a minute
WINDOW_EVENT_COUNT = 3
MASS_PER_MONTH = 4
CUSTOM_TYPES = {"text", "image", "voice", "video", "music", "news", "mpnews", "mpnewsarticle", "msgmenu",
                "wxcard", "miniprogrampage"}


def new_msgid() -> int:
    return secrets.randbelow(1 << 62) + (1 << 40)


def _recipient(sb, openid, kind: str = "oa"):
    user = sb.store.one(f"SELECT * FROM users WHERE {kind}_openid = ?", openid or "")
    if user is None:
        raise WeChatError(40003)
    return user


def check_window(sb, user) -> None:
    """45015 outside the 48-hour (or 1-minute) window, 45047 when its count is used up."""
    if faults.settings(sb).get("window_closed") or not user["subscribed"]:
        raise WeChatError(45015)
    now = sb.now()
    open_windows = []
    if user["last_message_at"] and now - user["last_message_at"] <= WINDOW_MESSAGE:
        open_windows.append((user["last_message_at"], WINDOW_MESSAGE_COUNT))
    if user["last_event_at"] and now - user["last_event_at"] <= WINDOW_EVENT:
        open_windows.append((user["last_event_at"], WINDOW_EVENT_COUNT))
    if not open_windows:
        raise WeChatError(45015)
    for since, limit in open_windows:
        row = sb.store.one(
            "SELECT COUNT(*) AS n FROM messages WHERE user = ? AND kind = 'custom' AND created_at >= ?",
            user["oa_openid"], since,
        )
        if row["n"] < limit:
            return
    raise WeChatError(45047)


def _keep_template(conn, openid: str, client_msg_id, msgid: int, now: float) -> int | None:
    """The msgid of the message already sent with this openid + client_msg_id within 10
    minutes (WeChat sends it once), else None, keeping this one's."""
    if not client_msg_id:
        return None
    key = f"tpl:{openid}:{client_msg_id}"
    row = conn.execute("SELECT msgid FROM client_msgids WHERE key = ? AND expires_at > ?", (key, now)).fetchone()
    if row:
        return int(row["msgid"])
    conn.execute("INSERT OR REPLACE INTO client_msgids (key, msgid, expires_at) VALUES (?, ?, ?)",
                 (key, str(msgid), now + 600))
    return None


def post_event(sb, openid: str, fields: dict) -> None:
    """Post an event to the callback, from a thread when events_async is on."""
    def run():
        result = callback.push(sb, fields, openid)
        sb.record(openid, "system", "event_push", {"event": fields.get("Event"), "ok": result["ok"],
                                                   "status": result["status"], "error": result.get("error")})

    if sb.config["events_async"]:
        threading.Thread(target=run, daemon=True, name="sandbox-event").start()
    else:
        run()


def _template_finish(sb, openid: str, msgid: int) -> None:
    conf = faults.settings(sb)
    enabled = conf.get("template_finish_events", sb.config["template_finish_events"])
    if not enabled:
        return
    post_event(sb, openid, {
        "ToUserName": sb.config["oa_original_id"], "FromUserName": openid, "CreateTime": int(sb.now()),
        "MsgType": "event", "Event": "TEMPLATESENDJOBFINISH", "MsgID": msgid,
        "Status": conf.get("template_status") or "success",
    })


def register(bp: Blueprint, sb) -> None:
    @bp.route("/cgi-bin/message/custom/send", methods=["POST"])
    @wechat_api(sb, "cgi-bin/message/custom/send", app="oa")
    def custom_send(appid):
        data = json_body()
        user = _recipient(sb, data.get("touser"))
        msgtype = data.get("msgtype")
        if msgtype not in CUSTOM_TYPES or not isinstance(data.get(msgtype), dict):
            raise WeChatError(40008, "invalid message type")
        if msgtype == "text" and not data["text"].get("content"):
            raise WeChatError(44003, "empty content")
        if msgtype == "news" and len(data["news"].get("articles") or []) > 1:
            raise WeChatError(45008)  # one article per customer-service news message
        if msgtype == "image":
            load_media(sb, data["image"].get("media_id"))
        check_window(sb, user)
        body = {"msgtype": msgtype, msgtype: data[msgtype]}
        flags = []
        if msgtype == "text":
            body["content"] = data["text"]["content"]
            flags = text_link_flags(sb, body["content"])
            if flags:  # WeChat sends it; the link just does not open the mini-program
                body["flags"] = flags
        if msgtype == "image":
            body["media_id"] = data["image"]["media_id"]
        sb.record(user["oa_openid"], "out", "custom", body)
        for flag in flags:
            sb.record(user["oa_openid"], "system", "flag", {"content": "小程序文字链无法打开小程序", "error": flag})
        return jsonify({"errcode": 0, "errmsg": "ok"})

    @bp.route("/cgi-bin/message/template/send", methods=["POST"])
    @wechat_api(sb, "cgi-bin/message/template/send", app="oa", counted_by_view=True)
    def template_send(appid):
        # Broadcasts send these by the hundred thousand: the checks read, and one write
        # transaction counts the call, keeps the client_msg_id and adds the message.
        data = json_body()
        user = _recipient(sb, data.get("touser"))
        template = templates.require(sb, "oa", "template", data.get("template_id"))
        templates.check_data(template, data.get("data"))
        if not user["subscribed"]:
            raise WeChatError(43004)
        now = sb.now()
        msgid = new_msgid()
        client_msg_id = data.get("client_msg_id")
        with sb.store.tx() as conn:
            over = count_pending(sb, conn)
            if not over:
                kept = _keep_template(conn, user["oa_openid"], client_msg_id, msgid, now)
                if kept is None:
                    body = {k: data.get(k) for k in ("template_id", "url", "miniprogram", "data") if data.get(k)}
                    body.update(title=template["title"], rows=templates.rows(template, data["data"]))
                    sb.record(user["oa_openid"], "out", "template", body, msgid=msgid, conn=conn)
        if over:
            raise WeChatError(over)  # counted (committed above); nothing is sent
        if kept is not None:
            return jsonify({"errcode": 0, "errmsg": "ok", "msgid": kept})
        _template_finish(sb, user["oa_openid"], msgid)
        return jsonify({"errcode": 0, "errmsg": "ok", "msgid": msgid})

    @bp.route("/cgi-bin/message/subscribe/send", methods=["POST"])
    @wechat_api(sb, "cgi-bin/message/subscribe/send", app="mp")
    def subscribe_send(appid):
        data = json_body()
        user = _recipient(sb, data.get("touser"), kind="mp")
        template_id = data.get("template_id")
        template = templates.require(sb, "mp", "subscribe", template_id)
        templates.check_data(template, data.get("data"))
        if data.get("miniprogram_state", "formal") not in ("developer", "trial", "formal"):
            raise WeChatError(47003, "argument invalid! miniprogram_state")
        if not take_consent(sb, user["oa_openid"], template_id, "mp"):
            raise WeChatError(43101)
        msgid = new_msgid()
        body = {k: data.get(k) for k in ("template_id", "page", "data", "miniprogram_state") if data.get(k)}
        body.update(title=template["title"], rows=templates.rows(template, data["data"]))
        sb.record(user["oa_openid"], "out", "subscribe", body, msgid=msgid)
        return jsonify({"errcode": 0, "errmsg": "ok", "msgid": msgid})

    @bp.route("/cgi-bin/message/subscribe/bizsend", methods=["POST"])
    @wechat_api(sb, "cgi-bin/message/subscribe/bizsend", app="oa")
    def subscribe_bizsend(appid):
        data = json_body()
        user = _recipient(sb, data.get("touser"))
        template_id = data.get("template_id")
        template = templates.require(sb, "oa", "subscribe", template_id)
        templates.check_data(template, data.get("data"))
        if not user["subscribed"] or not take_consent(sb, user["oa_openid"], template_id, "oa"):
            raise WeChatError(43101)
        msgid = new_msgid()
        body = {k: data.get(k) for k in ("template_id", "page", "miniprogram", "data") if data.get(k)}
        body.update(title=template["title"], rows=templates.rows(template, data["data"]))
        sb.record(user["oa_openid"], "out", "subscribe", body, msgid=msgid)
        if faults.settings(sb).get("template_finish_events", sb.config["template_finish_events"]):
            post_event(sb, user["oa_openid"], {
                "ToUserName": sb.config["oa_original_id"], "FromUserName": user["oa_openid"],
                "CreateTime": int(sb.now()), "MsgType": "event", "Event": "subscribe_msg_sent_event",
                # MsgID and ErrorCode are bare numbers in WeChat's XML.
                "SubscribeMsgSentEvent": {"List": [{"TemplateId": template_id, "MsgID": msgid,
                                                    "ErrorCode": 0, "ErrorStatus": "success"}]},
            })
        return jsonify({"errcode": 0, "errmsg": "ok"})

    @bp.route("/cgi-bin/message/mass/sendall", methods=["POST"])
    @wechat_api(sb, "cgi-bin/message/mass/sendall", app="oa")
    def mass_sendall(appid):
        data = json_body()
        filt = data.get("filter") or {}
        followers = sb.store.all("SELECT * FROM users WHERE subscribed = 1 ORDER BY created_at")
        if not filt.get("is_to_all"):
            tag = filt.get("tag_id", filt.get("group_id"))
            if tag is None:
                raise WeChatError(47001)
            followers = [u for u in followers if int(tag) in json.loads(u["tagids"])]
        return _mass(data, followers)

    @bp.route("/cgi-bin/message/mass/send", methods=["POST"])
    @wechat_api(sb, "cgi-bin/message/mass/send", app="oa")
    def mass_send(appid):
        data = json_body()
        touser = data.get("touser")
        if not isinstance(touser, list) or not 2 <= len(touser) <= 10_000:
            raise WeChatError(40130)
        users = [sb.store.one("SELECT * FROM users WHERE oa_openid = ?", o) for o in touser]
        return _mass(data, [u for u in users if u is not None and u["subscribed"]], total=len(touser))

    def _mass(data: dict, recipients: list, total: int | None = None):
        msgtype = data.get("msgtype")
        if msgtype not in ("text", "image", "voice", "mpnews", "mpvideo", "wxcard") or not isinstance(data.get(msgtype), dict):
            raise WeChatError(40008, "invalid message type")
        clientmsgid = data.get("clientmsgid")
        if clientmsgid and len(clientmsgid.encode()) > 64:
            raise WeChatError(45067, "clientmsgid size out of limit")
        now = sb.now()
        msg_id = new_msgid()
        month_start = sb.beijing_now().replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()
        sent = 0
        with sb.store.tx() as conn:
            if clientmsgid:  # deduplicated for 24 hours
                key = f"mass:{clientmsgid}"
                if conn.execute("SELECT 1 FROM client_msgids WHERE key = ? AND expires_at > ?", (key, now)).fetchone():
                    raise WeChatError(45065)
                conn.execute("INSERT OR REPLACE INTO client_msgids (key, msgid, expires_at) VALUES (?, ?, ?)",
                             (key, str(msg_id), now + 86400))
            body = {"msgtype": msgtype, msgtype: data[msgtype]}
            if msgtype == "text":
                body["content"] = data["text"].get("content")
            for user in recipients:
                received = conn.execute(
                    "SELECT COUNT(*) AS n FROM messages WHERE user = ? AND kind = 'mass' AND created_at >= ?",
                    (user["oa_openid"], month_start),
                ).fetchone()["n"]
                if received >= MASS_PER_MONTH:  # the monthly cap skips the recipient, not the call
                    continue
                sb.record(user["oa_openid"], "out", "mass", body, msgid=msg_id, conn=conn)
                sent += 1
        total = len(recipients) if total is None else total
        if recipients and faults.settings(sb).get("template_finish_events", sb.config["template_finish_events"]):
            post_event(sb, recipients[0]["oa_openid"], {
                "ToUserName": sb.config["oa_original_id"], "FromUserName": recipients[0]["oa_openid"],
                "CreateTime": int(now), "MsgType": "event", "Event": "MASSSENDJOBFINISH", "MsgID": msg_id,
                "Status": "send success", "TotalCount": total, "FilterCount": len(recipients),
                "SentCount": sent, "ErrorCount": len(recipients) - sent,
            })
        return jsonify({"errcode": 0, "errmsg": "send job submission success", "msg_id": msg_id,
                        "msg_data_id": new_msgid()})
