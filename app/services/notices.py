"""Notices to one person whose outcome is unknown (DESIGN §5), for staff to see and resend.

A customer-service or subscribe message whose WeChat call got no answer (the worker died
during it, or WeChat did not answer in time) may or may not have arrived, and WeChat has no
key to drop a repeat of it: it is never sent again on its own. Its outbound row is
``unknown``; staff see it in the console (失败任务) and may resend it once more: the row
becomes ``resent`` and an outbox row ("notify.resend", unique per row) sends the same text
under a new key after the commit — one resend, however many times the button is pressed.

Broadcast deliveries have their own list and resend on the announcement's page
(``announcements.unknown_deliveries`` / ``resend_unknown``).
"""
from __future__ import annotations

from sqlalchemy import func, select, update

from app.errors import InvalidTransitionError, NotFoundError, ValidationError
from app.extensions import db
from app.models import Household, HouseholdBinding, OutboundMessage, Staff, WechatUser
from app.models.messages import OutboundStatus
from app.services import outbox

RESEND_TOPIC = "notify.resend"
BROADCAST_KEY_PREFIX = "announcement:"  # keys of broadcast deliveries (announcements.delivery_key)


def _single():
    return ~OutboundMessage.dedupe_key.startswith(BROADCAST_KEY_PREFIX)


def count_unknown_notices() -> int:
    return db.session.scalar(select(func.count()).select_from(OutboundMessage).where(
        OutboundMessage.status == OutboundStatus.UNKNOWN, _single())) or 0


def unknown_notices(*, limit: int = 100) -> list[dict]:
    """Single notices of unknown outcome, newest first, with who they were for."""
    rows = db.session.execute(
        select(OutboundMessage, WechatUser, Staff)
        .outerjoin(WechatUser, WechatUser.id == OutboundMessage.wechat_user_id)
        .outerjoin(Staff, Staff.id == WechatUser.staff_id)
        .where(OutboundMessage.status == OutboundStatus.UNKNOWN, _single())
        .order_by(OutboundMessage.id.desc()).limit(limit)).all()
    homes: dict[int, list[Household]] = {}
    user_ids = [u.id for _, u, _ in rows if u is not None]
    if user_ids:
        for user_id, home in db.session.execute(
                select(HouseholdBinding.wechat_user_id, Household)
                .join(Household, Household.id == HouseholdBinding.household_id)
                .where(HouseholdBinding.wechat_user_id.in_(user_ids)).order_by(Household.account_no)).all():
            homes.setdefault(user_id, []).append(home)
    result = []
    for msg, user, staff in rows:
        payload = msg.payload or {}
        result.append({
            "id": msg.id, "title": payload.get("title") or "", "channel": msg.channel, "reason": msg.errmsg,
            "sending_at": msg.sending_at or msg.created_at, "staff": staff,
            "nickname": user.nickname if user else None, "households": homes.get(user.id, []) if user else [],
            "can_resend": bool(payload.get("notice")) and user is not None,
        })
    return result


def resend_notice(outbound_id: int) -> bool:
    """Staff decided to send this notice once more. Returns False when it was resent already
    (a second click, or a colleague first); the caller commits, then the outbox sends it."""
    row = db.session.get(OutboundMessage, outbound_id)
    if row is None or row.dedupe_key.startswith(BROADCAST_KEY_PREFIX):
        raise NotFoundError("通知不存在")
    if row.status not in (OutboundStatus.UNKNOWN, OutboundStatus.RESENT):
        raise InvalidTransitionError("只有结果未知的通知可以重新发送")
    if not (row.payload or {}).get("notice") or row.wechat_user_id is None:
        raise ValidationError("该通知没有保存原文，无法重新发送")
    res = db.session.execute(update(OutboundMessage).where(
        OutboundMessage.id == row.id, OutboundMessage.status == OutboundStatus.UNKNOWN)
        .values(status=OutboundStatus.RESENT).execution_options(synchronize_session=False))
    if res.rowcount != 1:
        return False
    outbox.record(RESEND_TOPIC, {"outbound_id": row.id}, dedupe_key=f"{RESEND_TOPIC}:{row.id}")
    return True
