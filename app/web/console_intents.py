"""Console: the intent classifier's vocabulary (知识库 → 意图词库), next to the FAQ.

Staff list, add, change and remove the phrases and keywords that decide what a resident's
free text is about (app/services/intents.py), and try a sentence to see how it is read.
Every change is effective at once in every process (the classifier's version in Redis).
"""
from __future__ import annotations

from flask import abort, render_template, request
from sqlalchemy import or_, select

from app.extensions import db
from app.models import Intent, IntentMatch, IntentRule
from app.services import intents
from app.web.console_base import bp, done
from app.web.console_forms import FIELD_LABELS, FORM_PAGES

# A refused form shows again with the messages next to its fields (app/web/console_forms.py).
FORM_PAGES.update({"console.faq_intent_create": "console.faq_intent_edit",
                   "console.faq_intent_update": "console.faq_intent_edit"})
FIELD_LABELS.update({"intent": "意图", "phrase": "词语", "match": "匹配方式", "weight": "权重", "tag": "标签"})


@bp.route("/faq/intents")
def faq_intents():
    q = (request.args.get("q") or "").strip()
    intent = request.args.get("intent") or ""
    query = select(IntentRule).order_by(IntentRule.intent, IntentRule.weight.desc(), IntentRule.id)
    if intent in Intent.LABELS:
        query = query.where(IntentRule.intent == intent)
    if q:
        query = query.where(or_(IntentRule.phrase.contains(q), IntentRule.tag.contains(q)))
    sample = (request.args.get("try") or "").strip()[:200]
    found = intents.classify(sample) if sample else None
    return render_template("console/faq_intents.html", rows=db.session.scalars(query).all(), q=q, intent=intent,
                           sample=sample, found=found, Intent=Intent, IntentMatch=IntentMatch)


@bp.route("/faq/intents/new")
@bp.route("/faq/intents/<int:rule_id>/edit")
def faq_intent_edit(rule_id: int | None = None):
    rule = db.session.get(IntentRule, rule_id) if rule_id else None
    if rule_id and rule is None:
        abort(404)
    return render_template("console/faq_intent_form.html", r=rule, Intent=Intent, IntentMatch=IntentMatch)


def _save(rule: IntentRule | None) -> IntentRule:
    form = request.form
    return intents.save_rule(rule, intent=form.get("intent", ""), phrase=form.get("phrase", ""),
                             match=form.get("match", ""), weight=form.get("weight", ""), tag=form.get("tag"),
                             active=form.get("active") == "1")


@bp.route("/faq/intents", methods=["POST"])
def faq_intent_create():
    _save(None)
    return done("意图词条已添加，立即生效", "console.faq_intents")


@bp.route("/faq/intents/<int:rule_id>", methods=["POST"])
def faq_intent_update(rule_id: int):
    _save(db.session.get(IntentRule, rule_id) or abort(404))
    return done("意图词条已保存，立即生效", "console.faq_intents")


@bp.route("/faq/intents/<int:rule_id>/delete", methods=["POST"])
def faq_intent_delete(rule_id: int):
    db.session.delete(db.session.get(IntentRule, rule_id) or abort(404))
    return done("意图词条已删除", "console.faq_intents")
