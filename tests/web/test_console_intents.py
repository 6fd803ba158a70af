"""Console 知识库 → 意图词库: staff edit the classifier's vocabulary; a change is effective at once."""
from sqlalchemy import select

from app.models import Intent, IntentRule, Role
from app.services import intents


def test_the_vocabulary_is_listed_next_to_the_faq_and_a_sentence_can_be_tried(db, staff, console):
    console.login(staff(Role.AGENT).username)
    faq = console.get("/console/faq").get_data(as_text=True)
    assert "意图词库" in faq and "/console/faq/intents" in faq
    page = console.get("/console/faq/intents?intent=emergency&try=暖气管子爆了").get_data(as_text=True)
    assert "爆管" in page and "紧急情况" in page and 'id="try-result"' in page


def test_staff_add_change_and_remove_a_rule_and_the_classifier_follows(db, staff, console):
    console.login(staff(Role.AGENT).username)
    assert intents.classify("暖气片结冰了").intent == Intent.UNKNOWN
    form = {"intent": "repair", "phrase": "结冰", "match": "phrase", "weight": "6", "tag": "", "active": "1"}
    assert console.post("/console/faq/intents", form).status_code == 302
    assert intents.classify("暖气片结冰了").intent == Intent.REPAIR
    rule = db.session.scalar(select(IntentRule).where(IntentRule.phrase == "结冰"))
    assert console.post(f"/console/faq/intents/{rule.id}", {**form, "active": ""}).status_code == 302
    assert intents.classify("暖气片结冰了").intent == Intent.UNKNOWN
    assert console.post(f"/console/faq/intents/{rule.id}/delete").status_code == 302
    db.session.expire_all()
    assert db.session.get(IntentRule, rule.id) is None


def test_a_bad_rule_is_refused_next_to_its_fields_and_nothing_changes(db, staff, console):
    console.login(staff(Role.AGENT).username)
    before = db.session.scalars(select(IntentRule.id)).all()
    res = console.post("/console/faq/intents", {"intent": "repair", "phrase": "", "match": "phrase", "weight": "999"})
    html = res.get_data(as_text=True)
    assert res.status_code == 400 and "请填写词语或短语" in html and "权重应为" in html
    duplicate = console.post("/console/faq/intents", {"intent": "emergency", "phrase": "爆管", "match": "phrase",
                                                      "weight": "10", "active": "1"})
    assert duplicate.status_code == 400 and "已有相同的词条" in duplicate.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalars(select(IntentRule.id)).all() == before
