import pytest

from app.models import FaqEntry
from app.services.knowledge import answer_question, search_faq, tokenize


@pytest.fixture()
def faq(db):
    """The knowledge base: shipped by migration 0015 (reference rows, the same in every test)."""


@pytest.mark.parametrize("asked, expected", [
    ("暖气不热怎么办", "暖气不热怎么办？"),
    ("家里暖气片漏水了", "暖气片漏水了怎么办？"),
    ("滞纳金怎么算", "滞纳金怎么收？"),
    ("我想办理报停", "如何办理报停？"),
    ("发票怎么开", "能开发票吗？"),
])
def test_residents_questions_find_the_right_entry(faq, asked, expected):
    assert search_faq(asked)[0].question == expected


def test_small_talk_finds_nothing_confident(faq):
    assert answer_question("今天天气怎么样", threshold=0.35) is None
    assert answer_question("你好", threshold=0.35) is None


def test_index_follows_edits_to_the_knowledge_base(db, faq):
    assert answer_question("车位怎么租", threshold=0.35) is None
    db.session.add(FaqEntry(category="其他", question="小区车位怎么租？", answer="请联系物业。", keywords="车位 停车"))
    db.session.commit()
    assert answer_question("车位怎么租", threshold=0.35).answer == "请联系物业。"


def test_everyday_words_map_to_the_faq_wording():
    assert "热费" in tokenize("暖气费")
    assert "怎么" not in tokenize("怎么交暖气费")
