"""Subscribe-message consent (订阅消息授权): each "允许" a person gives in the mini-program for
a template lets us send that template to them once.

This side grants and lists; sending spends one (wechat/notify/records.py). Channel-free: the
mini-program API calls it with the templates it knows (``wechat.templates``' registry), and
the caller's unit of work commits.
"""
from __future__ import annotations

from typing import Collection, Iterable

from sqlalchemy import select, update

from app.dbutil import insert_or_skip
from app.errors import ValidationError
from app.extensions import db
from app.models import SubscribeConsent, WechatUser, utcnow


def record_consent(user: WechatUser, template_ids: Iterable[str], *, known: Collection[str]) -> list[SubscribeConsent]:
    """One more send of each template ``user`` allowed; unknown templates refuse them all
    (nothing recorded). Two requests at once each count (insert-or-skip, then an increment)."""
    template_ids = list(template_ids)
    unknown = [t for t in template_ids if t not in known]
    if unknown:
        raise ValidationError("未知的订阅消息模板", fields={"template_ids": [f"未知模板 {t}" for t in unknown]})
    now = utcnow()
    for template_id in template_ids:
        db.session.execute(insert_or_skip(SubscribeConsent, conflict=["wechat_user_id", "template_id"]).values(
            wechat_user_id=user.id, template_id=template_id, remaining=0, updated_at=now))
        db.session.execute(
            update(SubscribeConsent)
            .where(SubscribeConsent.wechat_user_id == user.id, SubscribeConsent.template_id == template_id)
            .values(remaining=SubscribeConsent.remaining + 1, updated_at=now)
            .execution_options(synchronize_session=False))
    return consents_of(user)


def consents_of(user: WechatUser) -> list[SubscribeConsent]:
    """The person's consents, by template id."""
    return list(db.session.scalars(select(SubscribeConsent).where(SubscribeConsent.wechat_user_id == user.id)
                                   .order_by(SubscribeConsent.template_id).execution_options(populate_existing=True)))
