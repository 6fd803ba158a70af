"""Register the demo city's people as WeChat sandbox users (DESIGN §4.4).

The seed creates WeChat users in our database only; the sandbox — which plays WeChat — must
know the same people, or every send to them fails with 40003 and nobody can sign in. This
posts them to the sandbox's ``POST /sandbox/users`` with their openids and unionid: staff
with their console username as nickname, residents with their name. The sandbox ignores
people it already has, so it runs on every `make run` and after the sandbox's store is
emptied the next run puts them back.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.clock import local_tz
from app.extensions import db
from app.models import Payment, WechatUser

CHUNK = 500
REAL_WECHAT_HOSTS = ("api.weixin.qq.com", "api.mch.weixin.qq.com")


class NotASandbox(RuntimeError):
    pass


@dataclass
class Registration:
    created: int = 0
    existing: int = 0
    errors: list[dict] = field(default_factory=list)


def sandbox_base() -> str:
    """The sandbox's control base (…/sandbox) from WECHAT_API_BASE; never real WeChat."""
    base = current_app.config["WECHAT_API_BASE"].rstrip("/")
    if urlsplit(base).hostname in REAL_WECHAT_HOSTS:
        raise NotASandbox("WECHAT_API_BASE 指向真实微信，演示用户只能注册到沙箱")
    return base


def sandbox_spec(user: WechatUser) -> dict:
    staff = user.staff
    spec = {
        "oa_openid": user.oa_openid,
        "unionid": user.unionid,
        "nickname": (staff.username if staff is not None else user.nickname) or "微信用户",
        "follow": bool(user.subscribed),
    }
    if user.mp_openid:
        spec["mp_openid"] = user.mp_openid
    if user.subscribed_at:
        spec["subscribe_time"] = int(user.subscribed_at.timestamp())
    if user.last_interaction_at:   # the sandbox keeps the 48-hour window from here
        spec["last_message_at"] = user.last_interaction_at.timestamp()
    return spec


def wait_for_sandbox(base: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if requests.get(f"{base}/users/-", timeout=2).status_code in (200, 404):
                return True
        except requests.RequestException:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def register_people(base: str) -> Registration:
    users = db.session.scalars(select(WechatUser).where(WechatUser.oa_openid.is_not(None))
                               .options(selectinload(WechatUser.staff)).order_by(WechatUser.id))
    specs = [sandbox_spec(u) for u in users]
    result = Registration()
    for start in range(0, len(specs), CHUNK):
        res = requests.post(f"{base}/users", json={"users": specs[start:start + CHUNK]}, timeout=60)
        res.raise_for_status()
        body = res.json()
        result.created += body["created"]
        result.existing += body["existing"]
        result.errors += [{**e, "index": e["index"] + start} for e in body["errors"]]
    return result


PAYMENT_CHUNK = 2000


def register_payments(base: str) -> tuple[int, int]:
    """The demo's paid orders, so WeChat Pay's trade bill (and so reconciliation) agrees with
    the seeded database. Returns (created, already there)."""
    cfg = current_app.config
    tz = local_tz()
    # An official-account openid paid through the official account's pages, any other
    # through the mini-program: the order's appid is the app the payer's openid belongs to.
    oa_openids = set(db.session.scalars(select(WechatUser.oa_openid).where(WechatUser.oa_openid.is_not(None))))
    orders = [
        {"out_trade_no": p.out_trade_no, "transaction_id": p.transaction_id, "payer_openid": p.payer_openid,
         "total": p.amount_fen, "success_time": p.paid_at.astimezone(tz).isoformat(timespec="seconds"),
         "description": p.description or "",
         "appid": cfg["WECHAT_APPID"] if p.payer_openid in oa_openids else cfg["MINIAPP_APPID"]}
        for p in db.session.scalars(select(Payment).where(Payment.transaction_id.is_not(None),
                                                          Payment.paid_at.is_not(None),
                                                          Payment.payer_openid.is_not(None)).order_by(Payment.id))
    ]
    created = existing = 0
    for start in range(0, len(orders), PAYMENT_CHUNK):
        res = requests.post(f"{base}/pay/history", json={"orders": orders[start:start + PAYMENT_CHUNK]}, timeout=60)
        res.raise_for_status()
        created += res.json()["created"]
        existing += res.json()["existing"]
    return created, existing
