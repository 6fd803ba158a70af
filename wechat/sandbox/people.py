"""The people on the other side: simulated WeChat users, what they send and what they get.

Control endpoints (under the sandbox prefix, e.g. /sandbox/users):
  POST /users                        create a user (follows by default); with given openids it is
                                     idempotent; {"users": [...]} registers many (the demo city)
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
from . import templates as account_templates
from .core import make_openid, user_json
from .errors import ControlError

MESSAGE_TYPES = {"text", "image", "voice", "location", "event"}
EVENTS = {"subscribe", "unsubscribe", "SCAN", "CLICK", "VIEW", "subscribe_msg_popup_event",
          "subscribe_msg_change_event"}
NICKNAMES = ["张女士", "李先生", "王阿姨", "刘师傅", "陈同学", "赵大爷", "孙女士", "周先生"]


def create_user(sb, nickname: str | None = None, follow: bool = True, scene: str | None = None) -> dict:
    user, _ = upsert_user(sb, {"nickname": nickname, "follow": follow, "scene": scene})
    return user


USER_FIELDS = {"oa_openid", "mp_openid", "unionid", "nickname", "follow", "scene", "subscribe_time",
               "last_message_at"}
MAX_USERS_PER_CALL = 1000


def upsert_user(sb, spec: dict) -> tuple[dict, bool]:
    """Create a user — with the given openids and unionid when the backend already knows the
    person (the demo city), else fresh ones. The same oa_openid again changes nothing, so a
    registration can be repeated. Returns (user, created)."""
    unknown = set(spec) - USER_FIELDS
    if unknown:
        raise ControlError(400, f"unknown fields {sorted(unknown)}; allowed: {sorted(USER_FIELDS)}")
    ids = {}
    for key in ("oa_openid", "mp_openid", "unionid"):
        value = spec.get(key)
        if value is not None and not (isinstance(value, str) and 6 <= len(value) <= 64 and value.isprintable()):
            raise ControlError(400, f"{key} must be a string of 6 to 64 characters")
        ids[key] = value
    nickname = spec.get("nickname")
    if nickname is not None and not (isinstance(nickname, str) and 1 <= len(nickname) <= 64):
        raise ControlError(400, "nickname must be a string of 1 to 64 characters")
    if ids["oa_openid"]:
        existing = sb.store.one("SELECT * FROM users WHERE oa_openid = ?", ids["oa_openid"])
        if existing is not None:
            return user_json(existing), False
    for key in ("mp_openid", "unionid"):
        if ids[key] and sb.store.one(f"SELECT 1 FROM users WHERE {key} = ? OR oa_openid = ?", ids[key], ids[key]):
            raise ControlError(409, f"{key} {ids[key]} belongs to another sandbox user")
    now = sb.now()
    follow = bool(spec.get("follow", True))
    scene = spec.get("scene")
    oa_openid = ids["oa_openid"] or make_openid("o")
    subscribe_time = spec.get("subscribe_time")
    sb.store.run(
        "INSERT INTO users (oa_openid, mp_openid, unionid, nickname, subscribed, subscribe_time,"
        " subscribe_scene, qr_scene, last_message_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        oa_openid, ids["mp_openid"] or make_openid("o"), ids["unionid"] or make_openid("o"),
        nickname or random.choice(NICKNAMES), int(follow),
        (int(subscribe_time) if subscribe_time else int(now)) if follow else None,
        ("ADD_SCENE_QR_CODE" if scene else "ADD_SCENE_SEARCH") if follow else None, scene,
        spec.get("last_message_at"), now,
    )
    return user_json(sb.find_user(oa_openid)), True


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
    elif kind == "voice":
        # WeChat: MediaId, Format (amr/speex) and, when the account has speech recognition
        # on and something was recognised, Recognition (the words as text).
        media_id = media.save_media(sb, "voice", "audio/amr", b"#!AMR\n" + random.randbytes(64), "amr")
        fields.update(MediaId=media_id, Format="amr")
        shown.update(media_id=media_id)
        if data.get("recognition") is not None:
            fields["Recognition"] = str(data["recognition"])
            shown["recognition"] = fields["Recognition"]
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
    elif event in ("subscribe_msg_popup_event", "subscribe_msg_change_event"):
        # WeChat's XML (doc/service/guide/product/subscription_messages/push): one <List> per
        # template inside the event's wrapper; PopupScene a bare number (1 H5 page, 2 article).
        templates = data.get("templates") or []
        popup = event == "subscribe_msg_popup_event"
        statuses = ("accept", "reject") if popup else ("reject",)  # a change only ever pushes reject
        if not isinstance(templates, list) or not templates or not all(
                isinstance(t, dict) and t.get("template_id") and t.get("status", statuses[0]) in statuses
                for t in templates):
            raise ControlError(400, f"templates: [{{template_id, status: {'|'.join(statuses)}}}] required")
        scene = int(data.get("popup_scene", 2))
        if popup and scene not in (1, 2):
            raise ControlError(400, "popup_scene must be 1 (H5 page) or 2 (article)")
        items = []
        for t in templates:
            item = {"TemplateId": t["template_id"], "SubscribeStatusString": t.get("status", statuses[0])}
            if popup:
                item["PopupScene"] = scene
            items.append(item)
        fields["SubscribeMsgPopupEvent" if popup else "SubscribeMsgChangeEvent"] = {"List": items}
        for t in templates:
            if t.get("status", statuses[0]) == "accept":
                add_consent(sb, user["oa_openid"], t["template_id"], "oa", 1)
            elif not popup:  # switched off in the notice settings: no more sends
                drop_consent(sb, user["oa_openid"], t["template_id"], "oa")
        shown["templates"] = [{"template_id": i["TemplateId"], "status": i["SubscribeStatusString"]} for i in items]
    for key in ("scene", "key", "url"):
        if data.get(key) is not None:
            shown[key] = data[key]


def _ticket_for(sb, scene) -> str:
    row = sb.store.one("SELECT ticket FROM qrcodes WHERE scene = ? ORDER BY created_at DESC", str(scene))
    return row["ticket"] if row else "gQ" + secrets.token_urlsafe(40)


def _record_reply(sb, openid: str, result: dict) -> None:
    reply = result.get("reply")
    if reply and result["ok"]:  # a reply WeChat refuses is never shown, only the failure notice
        view = reply_view(reply)
        if result.get("flags"):
            view["flags"] = result["flags"]
        sb.record(openid, "out", "passive", view)
    for flag in result.get("flags", []):
        sb.record(openid, "system", "flag", {"content": "小程序文字链无法打开小程序", "error": flag})
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


def drop_consent(sb, user: str, template_id: str, scene: str) -> None:
    """The user refused (or switched off) this template: nothing left to send."""
    sb.store.run("UPDATE consents SET remaining = 0 WHERE user = ? AND template_id = ?", user, f"{scene}:{template_id}")


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
                      "faults", "media", "qrcodes", "tags", "client_msgids", "orders", "prepays", "notifications",
                      "refunds", "refund_notifications", "bills", "bill_downloads"):
            conn.execute(f"DELETE FROM {table}")
        conn.execute("DELETE FROM kv WHERE key NOT LIKE 'pay_keys%'")


LIST_ORDERS = ("created", "recent")
MAX_LIST_LIMIT = 200
MAX_QUERY_LENGTH = 64
# Nicknames the demo city gives its staff (console usernames): leader1, crew1_lead, agent1, admin.
STAFF_PREFIXES = ("leader", "crew", "agent", "admin")


def find_users(sb, q: str | None = None, limit: int | None = None, order: str = "created",
               staff_first: bool = False) -> list:
    """Users whose nickname or either openid contains `q` (ASCII case folded), in `order`:
    `created` (oldest first) or `recent` (latest message either way first, then the never
    active by creation); with `staff_first`, staff-looking nicknames lead."""
    sql = "SELECT u.* FROM users u"
    params: list = []
    if q:
        sql += (" WHERE instr(lower(u.nickname), lower(?)) > 0 OR instr(lower(u.oa_openid), lower(?)) > 0"
                " OR instr(lower(u.mp_openid), lower(?)) > 0")
        params += [q, q, q]
    keys = []
    if staff_first:
        # LIKE without wildcards in the prefixes: a plain case-insensitive "starts with".
        keys.append("CASE WHEN " + " OR ".join(f"u.nickname LIKE '{p}%'" for p in STAFF_PREFIXES) + " THEN 0 ELSE 1 END")
    if order == "recent":
        # What the page shows as chat (system bookkeeping aside), or a last message the
        # registration carried (the demo city's 48-hour windows).
        keys.append(
            "max(coalesce(u.last_message_at, 0), coalesce((SELECT max(m.created_at) FROM messages m"
            " WHERE m.user = u.oa_openid AND m.direction != 'system'), 0)) DESC"
        )
    keys += ["u.created_at", "u.rowid"]
    sql += " ORDER BY " + ", ".join(keys)
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return sb.store.all(sql, *params)


def _list_args(args) -> tuple[str | None, int | None, str]:
    q = args.get("q", "").strip() or None
    if q is not None and len(q) > MAX_QUERY_LENGTH:
        raise ControlError(400, f"q must be at most {MAX_QUERY_LENGTH} characters")
    limit = args.get("limit")
    if limit is not None:
        if not (limit.isascii() and limit.isdigit() and 1 <= int(limit) <= MAX_LIST_LIMIT):
            raise ControlError(400, f"limit must be a whole number from 1 to {MAX_LIST_LIMIT}")
        limit = int(limit)
    order = args.get("order") or "created"
    if order not in LIST_ORDERS:
        raise ControlError(400, f"order must be one of {list(LIST_ORDERS)}")
    return q, limit, order


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
        if "users" not in data:
            user, created = upsert_user(sb, data)
            return jsonify(user), 201 if created else 200
        # Many at once (the demo city): {"users": [{oa_openid, mp_openid, unionid, nickname, ...}]}
        specs = data["users"]
        if not isinstance(specs, list) or len(specs) > MAX_USERS_PER_CALL:
            raise ControlError(400, f"users must be a list of at most {MAX_USERS_PER_CALL} objects")
        created = existing = 0
        errors = []
        for index, spec in enumerate(specs):
            try:
                if not isinstance(spec, dict):
                    raise ControlError(400, "each user must be a JSON object")
                _, new = upsert_user(sb, spec)
            except ControlError as exc:
                errors.append({"index": index, "error": exc.message})
                continue
            created, existing = created + new, existing + (not new)
        return jsonify({"created": created, "existing": existing, "errors": errors}), 200

    @bp.route("/users")
    def list_users():
        """All users by creation; ?q= narrows (nickname or openid), ?limit= caps (1..200),
        ?order=recent puts the most recently active first (the sandbox page's people panel)."""
        q, limit, order = _list_args(request.args)
        rows = find_users(sb, q=q, limit=limit, order=order)
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
        account_templates.reset(sb)
        return jsonify({"ok": True})

