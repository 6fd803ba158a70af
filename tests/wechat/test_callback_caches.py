"""What the callback keeps in each process — FAQ answers with the season's facts filled in,
intent classifications — follows the data: an edit takes effect with the next message."""
from datetime import date

from sqlalchemy import delete

from app.models import HeatingSeason
from app.services import intents
from app.reference.knowledge_base import ENTRIES as FAQ

START_QUESTION = "什么时候开始供暖"


def test_a_season_edit_changes_the_faq_answer_at_once(db, wechat, make_season, clock):
    season = make_season(code="2026-2027", starts_on=date(2026, 11, 15), ends_on=date(2027, 3, 15))
    db.session.commit()
    person = wechat.create_user()
    first = wechat.say(person["openid"], START_QUESTION)
    assert "自2026年11月15日开始供暖" in first and "共121天" in first
    assert wechat.say(person["openid"], START_QUESTION) == first  # the kept answer, word for word

    season.starts_on = date(2026, 11, 10)  # the console's edit, through the ORM
    db.session.commit()
    again = wechat.say(person["openid"], START_QUESTION)
    assert "自2026年11月10日开始供暖" in again and "共126天" in again


def test_answers_stay_right_when_redis_loses_its_keys(db, wechat, make_season, redis, clock):
    make_season(code="2026-2027")
    db.session.commit()
    person = wechat.create_user()
    assert "2026-2027" in wechat.say(person["openid"], START_QUESTION)

    db.session.execute(delete(HeatingSeason))  # around the ORM: no version bump
    db.session.commit()
    redis.flushdb()  # and Redis forgot the version: a fresh one, never the old value
    assert "{season}" in next(a for _, q, a, _ in FAQ if q == "什么时候开始供暖？")  # the answer has season facts
    person = wechat.create_user()
    assert "以公告为准" in wechat.say(person["openid"], START_QUESTION)


def test_a_vocabulary_edit_changes_the_classification_of_a_text_seen_before(db, redis):
    text = "暖气片发出咕噜咕噜的声音"
    before = intents.classify(text)
    assert intents.classify(text) is before  # remembered
    intents.save_rule(None, intent="repair", phrase="咕噜咕噜", match="word", weight=10, tag="noise")
    db.session.commit()
    after = intents.classify(text)
    assert "咕噜咕噜" not in before.matched and "咕噜咕噜" in after.matched
