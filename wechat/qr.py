"""Parametric QR codes (WECHAT.md §5): household binding (printed on bills and notices)
and one-time staff binding. WeChat gives the code's URL; we draw the image with ``qrcode``
(app.qrcodes; the showqrcode host is hard-coded in wechatpy and we need no round trip for the
picture). The scene strings are written and read here only (``*_scene``, ``parse_scene``).
"""
from __future__ import annotations

from app import qrcodes
from wechat import client as wechat_client

STAFF_QR_SECONDS = 24 * 3600
HOUSEHOLD_SCENE = "hh:"     # + account number
STAFF_SCENE = "staff:"      # + one-time binding code
SUBSCRIBE_PREFIX = "qrscene_"   # WeChat's EventKey of a subscribe through a QR: qrscene_ + scene


def household_scene(account_no: str) -> str:
    return HOUSEHOLD_SCENE + account_no


def staff_scene(code: str) -> str:
    return STAFF_SCENE + code


def parse_scene(scene: str) -> tuple[str, str] | None:
    """("household", account number) or ("staff", code) for one of our scenes; else None."""
    for kind, prefix in (("household", HOUSEHOLD_SCENE), ("staff", STAFF_SCENE)):
        if scene.startswith(prefix):
            return kind, scene[len(prefix):]
    return None


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
    """The QR image of a code's URL as PNG bytes."""
    return qrcodes.png(url, box_size)
