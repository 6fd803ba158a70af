"""One person, one WechatUser: join the official-account and mini-program identities.

WeChat gives one person a different openid in each app; only the unionid (when both apps are
under one open-platform account) says they are the same person. The official account learns
it from the user-info API (``jobs.identity``), the mini-program from jscode2session. When a
unionid turns up on a second row, the two rows are merged into the older one, so household
bindings, the staff role, tickets and payments follow the person across both channels.

Where no unionid is available, a one-time link code shown in one channel and entered in the
other joins them (``issue_link_code`` / ``link_with_code``).
"""
from __future__ import annotations

import logging
import secrets

from flask import current_app
from sqlalchemy import UniqueConstraint, and_, delete, exists, select, update

from app.errors import ValidationError
from app.extensions import db
from app.models import SubscribeConsent, WechatUser
from app.services.attempts import AttemptPolicy, Attempts

log = logging.getLogger(__name__)

LINK_CODE_TTL = 600           # seconds a link code can be entered
LINK_CODE_DIGITS = 6
# A 6-digit code is guessable: wrong codes are limited per user, and many wrong codes from
# anyone slow down (only) those who entered wrong ones (app/services/attempts.py).
LINK_ATTEMPTS = AttemptPolicy(
    name="link-code", limit=5, window=3600, target_free=20, target_delay=10, target_delay_max=LINK_CODE_TTL,
    target_window=LINK_CODE_TTL,
    requester_message="关联码错误次数过多，请一小时后再试",
    target_message="关联码错误次数过多，请{wait}后再试",
)
_IDENTITY_COLUMNS = ("oa_openid", "mp_openid", "unionid")
MERGED_ID_TTL = 8 * 86400     # how long a merged-away id is remembered (see merged_into)
UNIONID_ASK_INTERVAL = 86400  # seconds before the callback asks WeChat about one openid again


def unionid_asked_key(openid: str) -> str:
    """Redis key set when WeChat was asked for this follower's unionid (user-info quota)."""
    return f"identity:asked:{openid}"


def claim_unionid_lookup(redis, openid: str) -> bool:
    """True at most once per ``UNIONID_ASK_INTERVAL`` per openid: the caller then enqueues
    ``jobs.identity.learn_unionid`` after its commit (chat and web sign-in alike)."""
    return bool(redis.set(unionid_asked_key(openid), 1, ex=UNIONID_ASK_INTERVAL, nx=True))


def attach_unionid(user: WechatUser, unionid: str | None) -> WechatUser:
    """Record ``unionid`` on ``user``; when another row already holds it, merge the two.

    Returns the row that now stands for the person (the older one survives a merge)."""
    if not unionid or user.unionid == unionid:
        return user
    if user.unionid:   # WeChat never changes a unionid: something is badly wrong upstream
        log.warning("identity: user %s has unionid %s, WeChat now says %s; kept", user.id, user.unionid, unionid)
        return user
    other = db.session.scalar(select(WechatUser).where(WechatUser.unionid == unionid))
    if other is None:
        user.unionid = unionid
        db.session.flush()
        return user
    return merge(other, user)


def oa_user(openid: str) -> WechatUser:
    """The person behind an official-account openid (web sign-in): their row, or a new one.

    A merged person's row holds the openid, so this finds the survivor. Flushes; the caller
    commits (and, should two first visits race, retries after the unique openid refused one)."""
    user = db.session.scalar(select(WechatUser).where(WechatUser.oa_openid == openid))
    if user is None:
        user = WechatUser(oa_openid=openid)
        db.session.add(user)
        db.session.flush()
    return user


def merge(a: WechatUser, b: WechatUser) -> WechatUser:
    """Fold two rows of one person into the older; every reference moves to the survivor."""
    if a.id == b.id:
        return a
    keep, gone = (a, b) if a.id < b.id else (b, a)
    clashes = [c for c in _IDENTITY_COLUMNS if getattr(keep, c) and getattr(gone, c)
               and getattr(keep, c) != getattr(gone, c)]
    if clashes:
        raise ValidationError("两个微信身份信息冲突，无法合并", code="identity_conflict")
    if keep.staff_id and gone.staff_id and keep.staff_id != gone.staff_id:
        log.warning("identity: merging users %s and %s bound to staff %s and %s; kept %s",
                    keep.id, gone.id, keep.staff_id, gone.staff_id, keep.staff_id)
    values = {c: getattr(keep, c) or getattr(gone, c) for c in _IDENTITY_COLUMNS}
    staff_id = keep.staff_id or gone.staff_id
    nickname = keep.nickname or gone.nickname
    subscribed = keep.subscribed if keep.oa_openid else gone.subscribed
    subscribed_at = keep.subscribed_at if keep.oa_openid else gone.subscribed_at
    last = max((t for t in (keep.last_interaction_at, gone.last_interaction_at) if t), default=None)

    gone_id = gone.id
    db.session.flush()
    _sum_consents(keep.id, gone.id)
    _move_references(keep.id, gone.id)
    # The moves bypassed the ORM: reload, or deleting `gone` would cascade to rows now keep's.
    db.session.expire_all()
    # Free the unique columns before the survivor takes them over.
    for column in (*_IDENTITY_COLUMNS, "staff_id"):
        setattr(gone, column, None)
    db.session.flush()
    db.session.delete(gone)
    db.session.flush()
    for column, value in values.items():
        setattr(keep, column, value)
    keep.staff_id, keep.nickname, keep.last_interaction_at = staff_id, nickname, last
    keep.subscribed, keep.subscribed_at = subscribed, subscribed_at
    db.session.flush()
    _remember_merge(gone_id, keep.id)
    log.info("identity: merged WeChat user %s into %s", gone_id, keep.id)
    return keep


def _merged_key(user_id: int) -> str:
    return f"identity:merged:{user_id}"


def _remember_merge(gone_id: int, keep_id: int) -> None:
    """Remember where a merged-away id went, for whoever still holds it (a link, a job in
    flight). Mini-program tokens name their login family (``api_session``), whose row moves to
    the survivor with every other reference, so they keep working without this."""
    current_app.extensions["redis"].set(_merged_key(gone_id), keep_id, ex=MERGED_ID_TTL)


def merged_into(user_id: int) -> int | None:
    """The row a merged-away user id now lives in (for ids held from before the merge)."""
    value = current_app.extensions["redis"].get(_merged_key(user_id))
    return int(value) if value else None


def _sum_consents(keep_id: int, gone_id: int) -> None:
    """Subscribe consents are counts: the survivor keeps both people's remaining sends."""
    theirs = db.session.scalars(select(SubscribeConsent).where(SubscribeConsent.wechat_user_id == gone_id))
    for consent in list(theirs):
        mine = db.session.scalar(select(SubscribeConsent).where(
            SubscribeConsent.wechat_user_id == keep_id, SubscribeConsent.template_id == consent.template_id))
        if mine is not None:
            mine.remaining += consent.remaining
            db.session.delete(consent)
    db.session.flush()


def _move_references(keep_id: int, gone_id: int) -> None:
    """Point every foreign key at the survivor. Where a unique constraint would then hold
    two rows (both bound the same household, both got the same announcement), the gone
    row's copy is dropped: the survivor already has one."""
    target = WechatUser.__table__
    for table in db.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table is not target or fk.parent.table is target:
                continue
            column = fk.parent
            for constraint in _unique_sets_with(table, column):
                others = [table.c[name] for name in constraint if name != column.name]
                alias = table.alias()
                duplicate = exists().where(alias.c[column.name] == keep_id,
                                           *[alias.c[o.name] == o for o in others])
                db.session.execute(delete(table).where(and_(column == gone_id, duplicate)))
            db.session.execute(update(table).where(column == gone_id).values({column.name: keep_id}))


def _unique_sets_with(table, column) -> list[list[str]]:
    sets = [[c.name for c in con.columns] for con in table.constraints
            if isinstance(con, UniqueConstraint) and column.name in con.columns]
    sets += [[c.name for c in ix.columns] for ix in table.indexes if ix.unique and column.name in ix.columns]
    return [s for s in sets if len(s) > 1]


# --- one-time link codes, where WeChat gives no unionid ------------------------------------------

def _code_key(code: str) -> str:
    return f"identity:link:{code}"


def issue_link_code(user: WechatUser, redis) -> str:
    """A short code shown in one channel; entered in the other within 10 minutes."""
    for _ in range(5):
        code = f"{secrets.randbelow(10 ** LINK_CODE_DIGITS):0{LINK_CODE_DIGITS}d}"
        if redis.set(_code_key(code), user.id, ex=LINK_CODE_TTL, nx=True):
            return code
    raise ValidationError("系统繁忙，请稍后再试", code="link_code_busy")


def link_with_code(user: WechatUser, code: str, redis) -> WechatUser:
    """Join ``user`` with the row that issued ``code`` (used once)."""
    code = (code or "").strip()
    if not (code.isascii() and code.isdigit() and len(code) == LINK_CODE_DIGITS):
        raise ValidationError(f"关联码应为{LINK_CODE_DIGITS}位数字", code="link_code_invalid")
    with Attempts(redis, LINK_ATTEMPTS).attempt(requester=f"user:{user.id}", target="link-code") as attempt:
        owner_id = redis.getdel(_code_key(code))
        if owner_id is None:
            attempt.failed()
            raise ValidationError("关联码无效或已过期，请重新获取", code="link_code_invalid")
        attempt.succeeded()
    other = db.session.get(WechatUser, int(owner_id))
    if other is None:
        raise ValidationError("关联码无效或已过期，请重新获取", code="link_code_invalid")
    if other.id == user.id:
        return user
    for column in ("oa_openid", "mp_openid"):
        if getattr(other, column) and getattr(user, column):
            raise ValidationError("请在另一端（公众号或小程序）输入关联码", code="link_code_same_side")
    return merge(other, user)
