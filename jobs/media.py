"""Fetch media a user sent through the official account and attach it to its ticket.

WeChat keeps temporary media for 3 days: the file is fetched at once by this job (never in
the 5-second callback), checked by content with Pillow, stripped of EXIF (phones put the
home's GPS position there) and stored outside the code tree.
"""
from __future__ import annotations

import io
import logging
import uuid
from pathlib import Path

from flask import current_app
from PIL import Image, UnidentifiedImageError
from wechatpy.exceptions import WeChatClientException

from app.extensions import db
from app.models import TicketPhoto
from wechat import client as wechat_client

log = logging.getLogger(__name__)

MAX_BYTES = 10 * 1024 * 1024
FORMATS = {"JPEG": ("jpg", "image/jpeg"), "PNG": ("png", "image/png"), "GIF": ("gif", "image/gif")}


def upload_dir() -> Path:
    path = Path(current_app.config.get("UPLOAD_DIR") or Path(current_app.config["INSTANCE_DIR"]) / "uploads")
    path.mkdir(parents=True, exist_ok=True)
    return path


def clean_image(data: bytes) -> tuple[bytes, str, str]:
    """Verify an image by content and re-encode it without metadata; returns (bytes, ext, type)."""
    if len(data) > MAX_BYTES:
        raise ValueError("图片超过10MB")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError("文件不是有效的图片") from exc
    if image.format not in FORMATS:
        raise ValueError(f"不支持的图片格式 {image.format}")
    ext, content_type = FORMATS[image.format]
    out = io.BytesIO()
    if image.format == "JPEG":
        image.convert("RGB").save(out, "JPEG", quality=90)  # no exif= argument: EXIF dropped
    else:
        image.save(out, image.format)
    return out.getvalue(), ext, content_type


def fetch_ticket_photo(photo_id: int) -> str:
    photo = db.session.get(TicketPhoto, photo_id)
    if photo is None:
        return "missing"
    if photo.path:
        return "already fetched"
    oa = wechat_client.official_account()
    try:
        res = oa.media.download(photo.media_id)
    except WeChatClientException as exc:
        if exc.errcode == 40007:  # invalid or expired media_id: nothing to retry
            log.warning("media %s for photo %s is gone: %s", photo.media_id, photo_id, exc.errmsg)
            return "media gone"
        raise
    try:
        data, ext, content_type = clean_image(res.content)
    except ValueError as exc:
        log.warning("photo %s rejected: %s", photo_id, exc)
        return f"rejected: {exc}"
    name = f"{photo.ticket_id}/{uuid.uuid4().hex}.{ext}"
    target = upload_dir() / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    photo.path, photo.content_type, photo.size_bytes = name, content_type, len(data)
    db.session.commit()
    return "stored"
