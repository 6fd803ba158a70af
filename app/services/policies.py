"""Rules admins edit in the console: the SLA table (respond-by and finish-by minutes per
ticket type and priority) and the evidence rules (photos a crew must send before answering
a ticket of a category). New deadlines apply to tickets opened afterwards; open tickets keep
theirs. Functions flush, never commit.
"""
from __future__ import annotations

from sqlalchemy import select

from app.errors import NotFoundError, ValidationError
from app.extensions import db
from app.models import EvidenceRule, Priority, SlaPolicy, TicketCategory, TicketType
from app.services.sla import ANY_TYPE

MAX_MINUTES = 60 * 24 * 90   # 90 days
MAX_PHOTOS = 9               # a WeChat message or a mini-program upload carries at most nine


def sla_rows() -> list[SlaPolicy]:
    order = {t: i for i, t in enumerate((ANY_TYPE, *TicketType.ALL))}
    prio = {p: i for i, p in enumerate(Priority.ALL)}
    rows = db.session.scalars(select(SlaPolicy)).all()
    return sorted(rows, key=lambda r: (order.get(r.ticket_type, 99), prio.get(r.priority, 9)))


def _minutes(value, field: str, label: str, errors: dict) -> int | None:
    try:
        minutes = int(str(value).strip())
    except (TypeError, ValueError):
        errors[field] = [f"{label}请填写整数分钟"]
        return None
    if not 1 <= minutes <= MAX_MINUTES:
        errors[field] = [f"{label}须在1到{MAX_MINUTES}分钟之间"]
        return None
    return minutes


def update_sla(policy_id: int, *, respond_minutes, finish_minutes) -> SlaPolicy:
    """Change one row of the SLA table; the response deadline must come before the finish."""
    row = db.session.get(SlaPolicy, policy_id)
    if row is None:
        raise NotFoundError("时限规则不存在")
    errors: dict = {}
    respond = _minutes(respond_minutes, "respond_minutes", "响应时限", errors)
    finish = _minutes(finish_minutes, "finish_minutes", "完成时限", errors)
    if respond is not None and finish is not None and respond > finish:
        errors["finish_minutes"] = ["完成时限不能短于响应时限"]
    if errors:
        raise ValidationError("时限规则有误", fields=errors)
    row.respond_minutes, row.finish_minutes = respond, finish
    db.session.flush()
    return row


def evidence_rows() -> list[EvidenceRule]:
    return list(db.session.scalars(select(EvidenceRule).order_by(EvidenceRule.category)))


def save_evidence_rule(category: str, min_photos) -> EvidenceRule:
    """Require ``min_photos`` photos for tickets of ``category`` (creates or changes the rule)."""
    errors = {}
    if category not in TicketCategory.ALL:
        errors["category"] = ["请选择问题分类"]
    try:
        photos = int(str(min_photos).strip())
        if not 1 <= photos <= MAX_PHOTOS:
            raise ValueError
    except (TypeError, ValueError):
        errors["min_photos"] = [f"照片张数须为1到{MAX_PHOTOS}的整数"]
    if errors:
        raise ValidationError("取证规则有误", fields=errors)
    rule = db.session.scalar(select(EvidenceRule).where(EvidenceRule.category == category))
    if rule is None:
        rule = EvidenceRule(category=category, min_photos=photos)
        db.session.add(rule)
    else:
        rule.min_photos = photos
    db.session.flush()
    return rule


def delete_evidence_rule(rule_id: int) -> EvidenceRule:
    rule = db.session.get(EvidenceRule, rule_id)
    if rule is None:
        raise NotFoundError("取证规则不存在")
    db.session.delete(rule)
    db.session.flush()
    return rule
