"""Learn official-account users' unionids from WeChat's user-info API and join identities.

The callback enqueues ``learn_unionid`` when a follower without a unionid subscribes or writes
(at most once a day per openid, so WeChat's user-info quota is not spent on chatter).
``link_all`` fills in every follower still missing one, 100 per ``user/info/batchget`` call —
for rows from before this existed and for `make run`'s demo city.
"""
from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from wechatpy.exceptions import WeChatClientException

from app.extensions import db
from app.models import WechatUser, utcnow
from app.services.identity import attach_unionid
from wechat import client as wechat_client
from wechat.notify import INVALID_OPENID, NOT_FOLLOWING

log = logging.getLogger(__name__)

BATCH = 100                     # user/info/batchget takes at most 100 openids
NOT_A_FOLLOWER = (INVALID_OPENID, NOT_FOLLOWING)  # nothing to learn


def learn_unionid(openid: str) -> str:
    user = db.session.scalar(select(WechatUser).where(WechatUser.oa_openid == openid))
    if user is not None and user.unionid:
        return "known"
    try:
        info = wechat_client.official_account().user.get(openid)
    except WeChatClientException as exc:
        if exc.errcode in NOT_A_FOLLOWER:
            return f"not available: {exc.errcode}"
        raise   # busy, rate limit, token: RQ retries
    if user is None:   # asked only FAQ questions so far: no row yet
        user = WechatUser(oa_openid=openid, subscribed=bool(info.get("subscribe")), subscribed_at=utcnow())
        db.session.add(user)
        try:
            db.session.flush()
        except IntegrityError:   # their message made the row meanwhile: RQ runs this again
            db.session.rollback()
            raise
    return _apply(user, info)


DAILY_LIMIT = 5000              # follower look-ups per daily run (50 batchget calls)
CURSOR_KEY = "identity:link-cursor"


def link_daily() -> dict:
    """Cron: the next slice of followers still without a unionid (rows from before this
    existed, or whose first message went unanswered by WeChat); wraps around at the end."""
    redis = current_app.extensions["redis"]
    after = int(redis.get(CURSOR_KEY) or 0)
    stats = link_all(limit=DAILY_LIMIT, after=after)
    redis.set(CURSOR_KEY, stats["last_id"] if stats["asked"] >= DAILY_LIMIT else 0)
    return stats


def link_all(limit: int | None = None, after: int = 0) -> dict:
    """Ask WeChat for the unionid of every official-account user still without one
    (with id above ``after``, at most ``limit``)."""
    stats = {"asked": 0, "linked": 0, "merged": 0, "without_unionid": 0, "last_id": after}
    last_id = after
    oa = wechat_client.official_account()
    while limit is None or stats["asked"] < limit:
        users = list(db.session.scalars(
            select(WechatUser).where(WechatUser.oa_openid.is_not(None), WechatUser.unionid.is_(None),
                                     WechatUser.id > last_id).order_by(WechatUser.id).limit(BATCH)))
        if not users:
            break
        if limit is not None:
            users = users[:limit - stats["asked"]]
        last_id = stats["last_id"] = users[-1].id
        try:
            infos = oa.user.get_batch([u.oa_openid for u in users])
        except WeChatClientException as exc:
            if exc.errcode not in NOT_A_FOLLOWER:
                raise
            infos = [_one(oa, u.oa_openid) for u in users]  # one bad openid spoils a batch
        by_openid = {info.get("openid"): info for info in infos}
        for user in users:
            stats["asked"] += 1
            outcome = _apply(user, by_openid.get(user.oa_openid) or {})
            if outcome in stats:
                stats[outcome] += 1
        db.session.commit()
    return stats


def _one(oa, openid: str) -> dict:
    try:
        return oa.user.get(openid)
    except WeChatClientException as exc:
        if exc.errcode in NOT_A_FOLLOWER:
            return {"openid": openid}
        raise


def _apply(user: WechatUser, info: dict) -> str:
    unionid = info.get("unionid")
    if not unionid:
        return "without_unionid"  # not under an open-platform account: link codes join them
    other = db.session.scalar(select(WechatUser.id).where(WechatUser.unionid == unionid))
    attach_unionid(user, unionid)
    db.session.commit()
    return "merged" if other is not None and other != user.id else "linked"
