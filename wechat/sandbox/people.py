"""The people on the other side: simulated WeChat users, what they send and what they get.

Control endpoints (under the sandbox prefix, e.g. /sandbox/users):
  POST /users                        create a user (follows by default)
  GET  /users, GET /users/<openid>   list / one
  POST /users/<openid>/login-code    one-time code for jscode2session
  POST /users/<openid>/messages      the user sends a message or event to the callback
  GET  /users/<openid>/inbox         what the backend sent the user (?all=1: both ways)
  POST /users/<openid>/consent       mini-program (or OA) subscribe consent, one per send
  GET/POST /clock                    read / move the sandbox clock forward
  POST /reset                        forget every user, token, order and fault
"""
from __future__ import annotations

import random
import secrets

from flask import Blueprint, jsonify, request, url_for

from . import callback, faults, media
from .core import make_openid, user_json
from .errors import ControlError

MESSAGE_TYPES = {"text", "image", "location", "event"}
EVENTS = {"subscribe", "unsubscribe", "SCAN", "CLICK", "VIEW", "subscribe_msg_popup_event"}
NICKNAMES = ["张女士", "李先生", "王阿姨", "刘师傅", "陈同学", "赵大爷", "孙女士", "周先生"]


def create_user(sb, nickname: str | None = None, follow: bool = True, scene: str | None = None) -> dict:
    now = sb.now()
    oa_openid, mp_openid, unionid = make_openid("o"), make_openid("o"), make_openid("o")
    nickname = nickname or random.choice(NICKNAMES)
    sb.store.run(
        "INSERT INTO users (oa_openid, mp_openid, unionid, nickname, subscribed, subscribe_time,"
        " subscribe_scene, qr_scene, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        oa_openid, mp_openid, unionid, nickname, int(follow), int(now) if follow else None,
        ("ADD_SCENE_QR_CODE" if scene else "ADD_SCENE_SEARCH") if follow else None, scene, now,
    )
    return user_json(sb.find_user(oa_openid))


def user_sends(sb, user, data: dict, base_url: str) -> dict:
    """Make `user` send a message or event; post it to the callback; record both sides."""
    kind = data.get("type") or ("event" if data.get("event") else "text")
    if kind not in MESSAGE_TYPES:
        raise ControlError(400, f"type must be one of {sorted(MESSAGE_TYPES)}")
    openid, now = user["oa_openid"], sb.now()
    fields = {
        "ToUserName": sb.config["oa_original_id"],
        "FromUserName": openid,
        "CreateTime": int(now),
        "MsgType": kind,
    }
    shown: dict = {"msgtype": kind}
    updates: dict = {}
    if kind != "event":
        if not user["subscribed"]:
            raise ControlError(409, "the user does not follow the official account and cannot message it")
        updates["last_message_at"] = now
    if kind == "text":
        content = str(data.get("content", "")).strip()
        if not content:
            raise ControlError(400, "content is required for a text message")
        fields["Content"] = content
        shown["content"] = content
    elif kind == "image":
        jpeg = media.make_jpeg(data.get("caption") or "报修照片")
        media_id = media.save_media(sb, "image", "image/jpeg", jpeg, "jpg")
        fields["PicUrl"] = f"{base_url}/media/pic/{media_id}"
        fields["MediaId"] = media_id
        shown.update(media_id=media_id, pic_url=fields["PicUrl"])
    elif kind == "location":
        try:
            lat, lng = float(data["latitude"]), float(data["longitude"])
        except (KeyError, TypeError, ValueError):
            raise ControlError(400, "latitude and longitude are required numbers") from None
        fields.update(Location_X=lat, Location_Y=lng, Scale=int(data.get("scale", 15)), Label=data.get("label", ""))
        shown.update(latitude=lat, longitude=lng, label=data.get("label", ""))
    else:
        _event_fields(sb, user, data, fields, shown, updates, now)
    if kind != "event":
        fields["MsgId"] = random.randrange(1 << 62, 1 << 63)
    if updates:
        sets = ", ".join(f"{k} = ?" for k in updates)
        sb.store.run(f"UPDATE users SET {sets} WHERE oa_openid = ?", *updates.values(), openid)
    sb.record(openid, "in", kind if kind != "event" else "event", shown, msgid=fields.get("MsgId"))
    result = callback.push(sb, fields, openid)
    _record_reply(sb, openid, result)
    return result


def _event_fields(sb, user, data, fields, shown, updates, now) -> None:
    event = data.get("event")
    if event not in EVENTS:
        raise ControlError(400, f"event must be one of {sorted(EVENTS)}")
    fields["Event"] = event
    shown["event"] = event
    scene = data.get("scene")
    if event == "subscribe":
        updates.update(subscribed=1, subscribe_time=int(now), last_event_at=now,
                       subscribe_scene="ADD_SCENE_QR_CODE" if scene else "ADD_SCENE_SEARCH", qr_scene=scene)
        if scene is not None:
            fields.update(EventKey=f"qrscene_{scene}", Ticket=data.get("ticket") or _ticket_for(sb, scene))
    elif event == "SCAN":
        if scene is None:
            raise ControlError(400, "scene is required for SCAN")
        fields.update(EventKey=str(scene), Ticket=data.get("ticket") or _ticket_for(sb, scene))
        updates["last_event_at"] = now
    elif event in ("CLICK", "VIEW"):
        key = data.get("key") or data.get("url")
        if not key:
            raise ControlError(400, "key (CLICK) or url (VIEW) is required")
        fields["EventKey"] = key
        if event == "CLICK":
            updates["last_event_at"] = now
    elif event == "unsubscribe":
        updates["subscribed"] = 0
    elif event == "subscribe_msg_popup_event":
        templates = data.get("templates") or []
        if not templates:
            raise ControlError(400, "templates: [{template_id, status: accept|reject}] required")
        items = [
            {"TemplateId": t["template_id"], "SubscribeStatusString": t.get("status", "accept"), "PopupScene": "2"}
            for t in templates
        ]
        fields["SubscribeMsgPopupEvent"] = {"List": items}
        for t in templates:
            if t.get("status", "accept") == "accept":
                add_consent(sb, user["oa_openid"], t["template_id"], "oa", 1)
    for key in ("scene", "key", "url"):
        if data.get(key) is not None:
            shown[key] = data[key]


def _ticket_for(sb, scene) -> str:
    row = sb.store.one("SELECT ticket FROM qrcodes WHERE scene = ? ORDER BY created_at DESC", str(scene))
    return row["ticket"] if row else "gQ" + secrets.token_urlsafe(40)


def _record_reply(sb, openid: str, result: dict) -> None:
    reply = result.get("reply")
    if reply:
        sb.record(openid, "out", "passive", reply_view(reply))
    if not result["ok"]:
        sb.record(openid, "system", "error", {"content": callback.FAILURE_TEXT, "error": result.get("error")})


def reply_view(reply: dict) -> dict:
    """A passive reply as the inbox shows it."""
    view = {"msgtype": reply.get("MsgType"), "reply": reply}
    if reply.get("MsgType") == "text":
        view["content"] = reply.get("Content", "")
    elif reply.get("MsgType") == "image":
        view["media_id"] = (reply.get("Image") or {}).get("MediaId")
    elif reply.get("MsgType") == "news":
        items = (reply.get("Articles") or {}).get("item", [])
        view["articles"] = items if isinstance(items, list) else [items]
    return view


def add_consent(sb, user: str, template_id: str, scene: str, count: int) -> int:
    key = f"{scene}:{template_id}"
    with sb.store.tx() as conn:
        conn.execute(
            "INSERT INTO consents (user, template_id, remaining) VALUES (?, ?, ?) "
            "ON CONFLICT(user, template_id) DO UPDATE SET remaining = remaining + excluded.remaining",
            (user, key, count),
        )
        return conn.execute(
            "SELECT remaining FROM consents WHERE user = ? AND template_id = ?", (user, key)
        ).fetchone()["remaining"]


def take_consent(sb, user: str, template_id: str, scene: str) -> bool:
    """Consume one accepted subscription; False when there is none left (43101)."""
    key = f"{scene}:{template_id}"
    with sb.store.tx() as conn:
        changed = conn.execute(
            "UPDATE consents SET remaining = remaining - 1 WHERE user = ? AND template_id = ? AND remaining > 0",
            (user, key),
        ).rowcount
    return changed == 1


def reset(sb) -> None:
    with sb.store.tx() as conn:
        for table in ("users", "tokens", "codes", "web_tokens", "messages", "consents", "counters",
                      "faults", "media", "qrcodes", "tags", "client_msgids", "orders", "notifications"):
            conn.execute(f"DELETE FROM {table}")
        conn.execute("DELETE FROM kv WHERE key NOT LIKE 'pay_keys%'")


def _json() -> dict:
    data = request.get_json(silent=True)
    if data is None and not request.get_data().strip():
        return {}
    if not isinstance(data, dict):
        raise ControlError(400, "JSON object expected")
    return data


def base_url() -> str:
    """The sandbox's base URL as the current request reached it (…/sandbox or the root)."""
    return url_for(".page", _external=True).rstrip("/")


def register(bp: Blueprint, sb) -> None:
    @bp.route("/users", methods=["POST"])
    def create_user_endpoint():
        data = _json()
        user = create_user(sb, data.get("nickname"), bool(data.get("follow", True)), data.get("scene"))
        return jsonify(user), 201

    @bp.route("/users")
    def list_users():
        rows = sb.store.all("SELECT * FROM users ORDER BY created_at")
        return jsonify([user_json(row) for row in rows])

    @bp.route("/users/<openid>")
    def get_user(openid):
        return jsonify(user_json(sb.user_or_404(openid)))

    @bp.route("/users/<openid>/login-code", methods=["POST"])
    def login_code(openid):
        user = sb.user_or_404(openid)
        code = secrets.token_hex(16)
        sb.store.run(
            "INSERT INTO codes (code, kind, openid, created_at) VALUES (?, 'jscode', ?, ?)",
            code, user["mp_openid"], sb.now(),
        )
        return jsonify({"code": code, "mp_openid": user["mp_openid"], "expires_in": 300}), 201

    @bp.route("/users/<openid>/messages", methods=["POST"])
    def send_message(openid):
        user = sb.user_or_404(openid)
        return jsonify(user_sends(sb, user, _json(), base_url()))

    @bp.route("/users/<openid>/inbox")
    def inbox(openid):
        user = sb.user_or_404(openid)
        both = request.args.get("all") in ("1", "true")
        after = request.args.get("after", 0, type=int)
        return jsonify(sb.conversation(user["oa_openid"], outbound_only=not both, after=after))

    @bp.route("/users/<openid>/consent", methods=["POST"])
    def consent(openid):
        user = sb.user_or_404(openid)
        data = _json()
        template_id = data.get("template_id")
        if not template_id:
            raise ControlError(400, "template_id is required")
        scene = data.get("scene", "miniprogram")
        if scene not in ("miniprogram", "oa"):
            raise ControlError(400, "scene must be miniprogram or oa")
        count = int(data.get("count", 1))
        remaining = add_consent(sb, user["oa_openid"], template_id, "mp" if scene == "miniprogram" else "oa", count)
        return jsonify({"template_id": template_id, "scene": scene, "remaining": remaining}), 201

    @bp.route("/clock", methods=["GET", "POST"])
    def clock():
        if request.method == "POST":
            advance = float(_json().get("advance", 0))
            if advance < 0:
                raise ControlError(400, "the clock only moves forward")
            sb.store.set_json("clock_offset", sb.store.get_json("clock_offset", 0) + advance)
        return jsonify({"now": sb.now(), "offset": sb.store.get_json("clock_offset", 0)})

    @bp.route("/reset", methods=["POST"])
    def reset_endpoint():
        reset(sb)
        faults.clear(sb)
        return jsonify({"ok": True})

