"""Temporary media (upload/get, 3-day life) and parametric QR codes (create/showqrcode)."""
from __future__ import annotations

import io
import json
import random
import secrets
import time
from urllib.parse import quote

import qrcode
from flask import Blueprint, Response, jsonify, request
from PIL import Image, ImageDraw

from .errors import WeChatError
from .tokens import json_body, wechat_api

MEDIA_LIFETIME = 3 * 86400
LIMITS = {"image": 10 * 1024 * 1024, "voice": 2 * 1024 * 1024, "video": 10 * 1024 * 1024, "thumb": 64 * 1024}
CONTENT_TYPES = {"image": "image/jpeg", "voice": "audio/amr", "video": "video/mp4", "thumb": "image/jpeg"}
MAX_TEMP_QR_SECONDS = 2_592_000


def make_jpeg(caption: str = "") -> bytes:
    """A small, unique photo-like JPEG: what a resident's phone would upload."""
    rng = random.Random(secrets.randbits(32))
    image = Image.new("RGB", (480, 360), tuple(rng.randrange(60, 200) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(6):  # a few shapes so every photo differs
        x, y = rng.randrange(0, 400), rng.randrange(0, 300)
        draw.rectangle([x, y, x + rng.randrange(30, 120), y + rng.randrange(30, 90)],
                       fill=tuple(rng.randrange(0, 256) for _ in range(3)))
    label = caption if caption.isascii() else "sandbox photo"
    draw.text((12, 330), f"{label} {time.strftime('%Y-%m-%d %H:%M:%S')}", fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


def save_media(sb, media_type: str, content_type: str, data: bytes, ext: str) -> str:
    media_id = secrets.token_urlsafe(48)
    sb.store.run(
        "INSERT INTO media (media_id, type, content_type, filename, data, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        media_id, media_type, content_type, f"{media_id}.{ext}", data, sb.now(),
    )
    return media_id


def load_media(sb, media_id: str | None):
    row = sb.store.one("SELECT * FROM media WHERE media_id = ?", media_id or "")
    if row is None or sb.now() - row["created_at"] > MEDIA_LIFETIME:
        raise WeChatError(40007)
    return row


def _media_response(row) -> Response:
    response = Response(row["data"], content_type=row["content_type"])
    response.headers["Content-disposition"] = f'attachment; filename="{row["filename"]}"'
    return response


def qr_png(text: str) -> bytes:
    out = io.BytesIO()
    qrcode.make(text).convert("RGB").save(out, "JPEG")  # WeChat serves the QR image as JPEG
    return out.getvalue()


def register(bp: Blueprint, sb) -> None:
    @bp.route("/cgi-bin/media/upload", methods=["POST"])
    @wechat_api(sb, "cgi-bin/media/upload")
    def upload(appid):
        media_type = request.args.get("type")
        if media_type not in LIMITS:
            raise WeChatError(40004)
        upload = request.files.get("media")
        if upload is None:
            raise WeChatError(41005, "media data missing")
        data = upload.read()
        if not data:
            raise WeChatError(41005, "media data missing")
        if len(data) > LIMITS[media_type]:
            raise WeChatError(40006, "invalid media size")
        ext = (upload.filename or "").rsplit(".", 1)[-1].lower() if "." in (upload.filename or "") else "jpg"
        content_type = upload.mimetype if upload.mimetype and upload.mimetype != "application/octet-stream" else CONTENT_TYPES[media_type]
        media_id = save_media(sb, media_type, content_type, data, ext)
        return jsonify({"type": media_type, "media_id": media_id, "created_at": int(sb.now())})

    @bp.route("/cgi-bin/media/get")
    @wechat_api(sb, "cgi-bin/media/get")
    def get(appid):
        row = load_media(sb, request.args.get("media_id"))
        if row["type"] == "video":
            return jsonify({"video_url": f"{request.url_root}video/{row['media_id']}"})
        return _media_response(row)

    @bp.route("/media/pic/<media_id>")
    def picture(media_id):
        # The CDN PicUrl of an inbound image: no token needed.
        try:
            return _media_response(load_media(sb, media_id))
        except WeChatError:
            return Response(status=404)

    @bp.route("/cgi-bin/qrcode/create", methods=["POST"])
    @wechat_api(sb, "cgi-bin/qrcode/create", app="oa")
    def qrcode_create(appid):
        data = json_body()
        action = data.get("action_name")
        scene = (data.get("action_info") or {}).get("scene") or {}
        if action in ("QR_SCENE", "QR_LIMIT_SCENE"):
            value = scene.get("scene_id")
            limit = 100_000 if action == "QR_LIMIT_SCENE" else 2**32 - 1
            if not isinstance(value, int) or not 0 < value <= limit:
                raise WeChatError(40053, "invalid action info, please check document")
        elif action in ("QR_STR_SCENE", "QR_LIMIT_STR_SCENE"):
            value = scene.get("scene_str")
            if not isinstance(value, str) or not 1 <= len(value) <= 64:
                raise WeChatError(40053, "invalid action info, please check document")
        else:
            raise WeChatError(40052, "invalid action name")
        permanent = "LIMIT" in action
        expire = None if permanent else min(int(data.get("expire_seconds") or 60), MAX_TEMP_QR_SECONDS)
        ticket = "gQ" + secrets.token_urlsafe(60)
        sb.store.run(
            "INSERT INTO qrcodes (ticket, action_name, scene, expires_at, created_at) VALUES (?, ?, ?, ?, ?)",
            ticket, action, str(value), None if permanent else sb.now() + expire, sb.now(),
        )
        answer = {"ticket": ticket, "url": f"http://weixin.qq.com/q/{ticket[2:26]}"}
        if not permanent:
            answer["expire_seconds"] = expire
        return jsonify(answer)

    @bp.route("/cgi-bin/showqrcode")
    def showqrcode():
        row = sb.store.one("SELECT * FROM qrcodes WHERE ticket = ?", request.args.get("ticket", ""))
        if row is None or (row["expires_at"] is not None and sb.now() > row["expires_at"]):
            return Response(status=404)
        payload = json.dumps({"ticket": row["ticket"], "scene": row["scene"]})
        return Response(qr_png(f"http://weixin.qq.com/q/{quote(row['ticket'][2:26])}#{payload}"), content_type="image/jpeg")
