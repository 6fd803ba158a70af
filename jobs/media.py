"""Fetch media a user sent through the official account and attach it to its ticket.

WeChat keeps temporary media for 3 days: the file is fetched at once by this job (never in
the 5-second callback), checked by content with Pillow, stripped of EXIF (phones put the
home's GPS position there) and stored outside the code tree.
"""
from __future__ import annotations

import logging
import uuid

from app.extensions import db
from app.models import TicketPhoto
from app.services.uploads import MAX_BYTES, clean_image, upload_dir  # noqa: F401  (moved there)
from wechat import client as wechat_client
from wechat.errors import WeChatClientException

log = logging.getLogger(__name__)


def fetch_promised_photo(payload: dict, outbox_id: int) -> str:
    """Outbox handler (topic media.ticket_photo, recorded by the ticket service)."""
    return fetch_ticket_photo(payload["photo_id"])


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
