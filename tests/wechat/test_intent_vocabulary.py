"""The vocabulary's data, not special cases (issue 15): a room temperature below the indoor
standard (``low_temp`` rows) is a heating complaint, where to pay is a question, and every
emergency of both labelled corpora is recognised."""
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.errors import ValidationError
from app.models import Intent, IntentMatch, Ticket, TicketCategory
from app.services import intents
from tests.wechat.residents import bound_resident, crewed_home

CORPORA = [Path(__file__).parent / name for name in ("intent_corpus.tsv", "intent_heldout.tsv")]


@pytest.mark.parametrize("text, complaint", [
    ("家里才16度", True), ("家里十六度", True), ("屋里只有15.5℃", True), ("室温 14 °C 太冷", True),
    ("卧室十度左右", True), ("家里22度", False), ("家里二十度", False), ("18度达标吗", False),
    ("今天零下10度", False),
])
def test_a_temperature_below_the_standard_reads_as_a_heating_complaint(db, text, complaint):
    found = intents.classify(text)
    assert (found.intent == Intent.REPAIR and "no_heat" in found.tags) is complaint, found


def test_the_standard_compared_with_is_the_setting(db, app, monkeypatch):
    assert intents.classify("家里才17度").intent == Intent.REPAIR
    monkeypatch.setitem(app.config, "INDOOR_TEMP_STANDARD", 16.0)
    assert intents.classify("家里才17度").intent != Intent.REPAIR
    monkeypatch.setitem(app.config, "INDOOR_TEMP_STANDARD", 20.0)
    assert intents.classify("家里19度").intent == Intent.REPAIR


def test_a_temperature_rule_is_data_edited_like_any_other(db):
    assert intents.classify("家里才16摄氏").intent == Intent.UNKNOWN
    intents.save_rule(None, intent=Intent.REPAIR, phrase="摄氏", match=IntentMatch.LOW_TEMP, weight=6, tag="no_heat")
    db.session.commit()
    assert intents.classify("家里才16摄氏").intent == Intent.REPAIR
    with pytest.raises(ValidationError) as err:
        intents.save_rule(None, intent=Intent.REPAIR, phrase="16度", match=IntentMatch.LOW_TEMP, weight=6)
    assert "单位" in err.value.fields["phrase"][0]


@pytest.mark.parametrize("text", ["暖气费交到哪里", "暖气费在哪交", "热费去哪里交"])
def test_where_to_pay_is_a_question_not_progress(db, text):
    assert intents.classify(text).intent == Intent.QUESTION


def test_where_to_pay_gets_the_payment_answer_and_no_ticket(db, wechat, make_household, make_season):
    make_season()
    openid, _ = bound_resident(db, wechat, make_household())
    reply = wechat.say(openid, "暖气费交到哪里")
    assert "缴费" in reply and "工单" not in reply and "进度" not in reply.split("\n")[0]
    assert db.session.scalar(select(func.count(Ticket.id))) == 0


def test_a_low_room_temperature_in_chat_becomes_a_no_heat_repair_after_confirmation(
        db, wechat, make_household, make_crew, make_staff):
    home, *_ = crewed_home(make_household, make_crew, make_staff)
    openid, _ = bound_resident(db, wechat, home)
    assert "回复 1 确认报修" in wechat.say(openid, "家里才16度")
    assert "报修已受理" in wechat.say(openid, "1")
    db.session.expire_all()
    ticket = db.session.scalar(select(Ticket))
    assert (ticket.category, ticket.description) == (TicketCategory.NO_HEAT, "家里才16度")


def _rows(path: Path) -> list[tuple[str, str]]:
    return [tuple(line.split("\t", 1)) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("path", CORPORA, ids=lambda p: p.name)
def test_every_emergency_of_the_labelled_corpora_is_recognised(db, path):
    emergencies = [text for label, text in _rows(path) if label == Intent.EMERGENCY]
    assert len(emergencies) >= 10
    assert [t for t in emergencies if intents.classify(t).intent != Intent.EMERGENCY] == []
