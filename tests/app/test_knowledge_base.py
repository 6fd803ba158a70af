"""The knowledge base shipped with the product (app/reference/knowledge_base.py, migration 0015):
enough entries, and nothing in an answer that does not exist — every menu item in 「」 is a
button of the official account's menu, every reply in 【】 a word the conversation
understands, every page a route of the app."""
import re

import pytest
from sqlalchemy import func, select

from app.models import FaqEntry, Intent
from app.services import intents, knowledge
from wechat import conversation
from wechat.cli import menu_definition

MENU_ITEM = re.compile(r"「([^」]+)」")
REPLY_WORD = re.compile(r"【([^】]+)】")
PAGE = re.compile(r"(?:https?://[^/\s]+)?(/(?:[a-z0-9_-]+/?)+)(?=[\s，。；）)]|$)")
# Features the old answers named that this product does not have.
INVENTED = ("卡包", "我的账单", "投诉建议", "“我的”", "申请电子发票", "开具电子发票", "电子发票会发送")


def _answers(db):
    return list(db.session.scalars(select(FaqEntry).where(FaqEntry.active.is_(True))))


def _menu_names(menu: dict) -> set[str]:
    names = set()
    for button in menu["button"]:
        names.add(button["name"])
        names.update(sub["name"] for sub in button.get("sub_button", ()))
    return names


def test_the_knowledge_base_ships_with_at_least_60_entries(db):
    assert db.session.scalar(select(func.count(FaqEntry.id)).where(FaqEntry.active.is_(True))) >= 60


def test_every_menu_item_an_answer_names_is_in_the_menu(db, app):
    with app.test_request_context():
        menu = _menu_names(menu_definition())
    named = {(e.question, item) for e in _answers(db) for item in MENU_ITEM.findall(e.answer)}
    assert named, "the answers name menu items"
    assert [(q, item) for q, item in named if item not in menu] == []


def test_every_reply_word_an_answer_names_is_understood(db):
    named = {(e.question, word) for e in _answers(db) for word in REPLY_WORD.findall(e.answer)}
    assert named
    not_understood = [(q, w) for q, w in named
                      if w not in conversation.COMMANDS and intents.classify(w).intent == Intent.UNKNOWN]
    assert not_understood == []


def test_every_page_an_answer_names_is_a_route(db, app):
    adapter = app.url_map.bind("localhost")
    for entry in _answers(db):
        for path in PAGE.findall(entry.answer):
            adapter.match(path)  # raises NotFound for a page that does not exist


def test_no_answer_promises_a_feature_that_does_not_exist(db):
    assert [(e.question, word) for e in _answers(db) for word in INVENTED if word in e.answer] == []


def test_every_answer_is_filled_in_from_settings_and_the_season(db, make_season):
    make_season()
    for entry in _answers(db):
        assert "{" not in knowledge.render_answer(entry.answer), entry.question


@pytest.mark.parametrize("asked, question", [
    ("供暖费怎么交", "供暖费怎么交？"), ("暖气费在哪交", "供暖费怎么交？"),
    ("什么时候开始供暖", "什么时候开始供暖？"), ("几号来暖气", "什么时候开始供暖？"),
    ("供暖到什么时候结束", "供暖到什么时候结束？"),
    ("家里没人住", "家里没人住还要交暖气费吗？"), ("空房子要交取暖费吗", "家里没人住还要交暖气费吗？"),
    ("过户", "房屋过户后热费怎么办？"), ("暖气片怎么排气", "暖气片怎么放气？"),
    ("暖气有噪音", "暖气有响声怎么办？"), ("室温多少度达标", "室温标准是多少度？"),
    ("报停了想恢复供暖", "报停后如何恢复供暖？"), ("能开发票吗", "能开发票吗？"),
])
def test_residents_phrasings_find_the_entry(db, asked, question):
    assert knowledge.search_faq(asked)[0].question == question
