"""知识库 → 意图词库 in Chromium at 1280 px: an agent adds a word, sees a sentence read with it,
edits it (a refused edit keeps what was typed and changes nothing), tries the temperature
rule, and the pages fit the width.
Screenshots under artifacts/screenshots/."""
from __future__ import annotations

from sqlalchemy import select

from app.models import IntentRule, Role
from tests.web.conftest import browser_login, screenshot

WIDE = {"width": 1280, "height": 900}


def _fits(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDE["width"]


def _try(page, sentence: str) -> str:
    page.fill("#try", sentence)
    page.click("form:has(#try) button[type=submit]")
    page.wait_for_selector("#try-result")
    return page.inner_text("#try-result")


def test_an_agent_adds_edits_and_tries_a_vocabulary_word_at_1280(db, live_app, staff, open_page):
    agent = staff(Role.AGENT, name="客服小周")
    page = open_page(WIDE)
    browser_login(page, live_app.url, agent.username, next_path="/console/faq/intents")
    page.wait_for_url(f"{live_app.url}/console/faq/intents")
    _fits(page)

    # Before: the classifier does not know the word.
    assert "未识别" in _try(page, "暖气片结冰了")
    screenshot(page, "intents-1280-before")

    # Add: 结冰 as a repair phrase, weight 6.
    page.click("text=新增词条")
    page.wait_for_url("**/console/faq/intents/new")
    page.select_option("#intent", "repair")
    page.fill("#phrase", "结冰")
    page.select_option("#match", "phrase")
    page.fill("#weight", "6")
    page.click("button:has-text('保存')")
    page.wait_for_url(f"{live_app.url}/console/faq/intents")
    assert "意图词条已添加" in page.inner_text("body")
    result = _try(page, "暖气片结冰了")
    assert "报修" in result and "结冰" in result and "6分" in result
    _fits(page)
    screenshot(page, "intents-1280-added")

    # Edit: a bad weight is refused next to its field, nothing changes; then a good edit.
    rule = db.session.scalar(select(IntentRule).where(IntentRule.phrase == "结冰"))
    page.fill("input[name=q]", "结冰")
    page.click("form:has(input[name=q]) button[type=submit]")
    page.click(f"a[href='/console/faq/intents/{rule.id}/edit']")
    page.wait_for_url(f"**/console/faq/intents/{rule.id}/edit")
    page.select_option("#match", "low_temp")                   # a temperature rule takes only a unit
    page.fill("#phrase", "16度")
    page.click("button:has-text('保存')")
    error = page.wait_for_selector(".field-error[data-field=phrase]")
    assert "单位" in error.inner_text()
    assert page.input_value("#phrase") == "16度" and page.input_value("#match") == "low_temp"  # kept
    _fits(page)
    screenshot(page, "intents-1280-refused")
    db.session.expire_all()
    assert (db.session.get(IntentRule, rule.id).phrase, db.session.get(IntentRule, rule.id).match) == ("结冰", "phrase")

    page.fill("#phrase", "结冰")
    page.select_option("#match", "phrase")
    page.fill("#weight", "2")
    page.click("button:has-text('保存')")
    page.wait_for_url(f"{live_app.url}/console/faq/intents")
    assert "意图词条已保存" in page.inner_text("body")
    assert "未识别" in _try(page, "暖气片结冰了")                  # 2 is below the winning score: effective at once
    db.session.expire_all()
    assert db.session.get(IntentRule, rule.id).weight == 2

    # The temperature rule is tried like any other.
    result = _try(page, "家里才16度")
    assert "报修" in result and "no_heat" in result
    _fits(page)
    screenshot(page, "intents-1280-tried")
