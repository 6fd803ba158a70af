"""Parametric QR codes (WECHAT.md §5): household binding (printed on bills and notices)
and one-time staff binding. WeChat gives the code's URL; we draw the image with ``qrcode``
(the showqrcode host is hard-coded in wechatpy and we need no round trip for the picture).
"""
from __future__ import annotations

import io

import qrcode
from qrcode.image.pil import PilImage

from wechat import client as wechat_client

STAFF_QR_SECONDS = 24 * 3600


def household_scene(account_no: str) -> str:
    return f"hh:{account_no}"


def staff_scene(code: str) -> str:
    return f"staff:{code}"


def create_household_qr(account_no: str) -> dict:
    """A permanent string-scene QR for one household (≤ 100,000 per account: one per home)."""
    return wechat_client.official_account().qrcode.create({
        "action_name": "QR_LIMIT_STR_SCENE",
        "action_info": {"scene": {"scene_str": household_scene(account_no)}},
    })


def create_staff_qr(code: str) -> dict:
    """A temporary QR carrying a staff member's one-time binding code."""
    return wechat_client.official_account().qrcode.create({
        "expire_seconds": STAFF_QR_SECONDS, "action_name": "QR_STR_SCENE",
        "action_info": {"scene": {"scene_str": staff_scene(code)}},
    })


def png(url: str, box_size: int = 8) -> bytes:
    """The QR image of a URL as PNG bytes."""
    img = qrcode.make(url, image_factory=PilImage, box_size=box_size, border=2)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
