"""A resident's free text, whatever its phrasing, through the real callback and the sandbox:
repairs confirmed once, questions answered (never a ticket), greetings, bills, progress,
ratings in chat, and bad input answered without any effect."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.models import Intent, IntentRule, Ticket, TicketEvent, TicketSource, TicketState, TicketType, utcnow
from app.reference.knowledge_base import ENTRIES
from app.services import billing, intents, tickets
from app.services.actors import Actor
from tests.wechat.residents import bound_resident, crewed_home


def _count(db, model=Ticket):
    db.session.expire_all()
    return db.session.scalar(select(func.count(model.id)))


@pytest.mark.parametrize("text, intent", [
    ("暖气漏水了，快来人", Intent.EMERGENCY), ("暖气管子爆了", Intent.EMERGENCY), ("有煤气味", Intent.EMERGENCY),
    ("家里暖气不热", Intent.REPAIR), ("我家暖气一点都不热，派人来看看", Intent.REPAIR),
    ("暖气片不热是什么原因", Intent.QUESTION), ("供暖费怎么交", Intent.QUESTION),
    ("什么时候开始供暖", Intent.QUESTION), ("家里没人住", Intent.QUESTION),
    ("师傅什么时候来", Intent.PROGRESS), ("查一下我家欠多少钱", Intent.BILL), ("非常满意", Intent.RATING),
    ("你好", Intent.GREETING), ("谢谢", Intent.GREETING), ("转人工", Intent.HUMAN), ("哈哈哈", Intent.UNKNOWN),
    # full-width letters and digits, spaces, punctuation: NFKC and compaction
    ("ＨＥＬＬＯ", Intent.GREETING), ("５", Intent.RATING), ("暖 气 漏 水 了 ！！", Intent.EMERGENCY),
])
def test_classifier_understands_ordinary_words(db, text, intent):
    assert intents.classify(text).intent == intent


def test_gas_is_an_emergency_tagged_gas(db):
    assert "gas" in intents.classify("厨房有燃气味").tags
    assert "gas" not in intents.classify("暖气漏水了").tags


def test_an_edited_vocabulary_takes_effect_at_once(db):
    assert intents.classify("暖气片结冰了").intent == Intent.UNKNOWN
    intents.save_rule(None, intent=Intent.REPAIR, phrase="结冰", match="phrase", weight=6)
    db.session.commit()
    assert intents.classify("暖气片结冰了").intent == Intent.REPAIR


def test_a_bad_vocabulary_row_is_refused_with_field_messages(db):
    from app.errors import ValidationError
    with pytest.raises(ValidationError) as err:
        intents.save_rule(None, intent="weather", phrase=" ", match="fuzzy", weight="lots")
    assert set(err.value.fields) == {"intent", "phrase", "match", "weight"}
    assert _count(db, IntentRule) == len({(i, p, m) for i, p, m, *_ in __import__(
        "app.reference.intent_rules", fromlist=["rows"]).rows()})


# --- repairs in words -----------------------------------------------------------------------------

def test_a_repair_in_words_is_confirmed_before_the_ticket_is_created(db, wechat, make_household, make_crew,
                                                                     make_staff):
    home, crew, *_ = crewed_home(make_household, make_crew, make_staff)
    openid, _ = bound_resident(db, wechat, home)
    ask = wechat.say(openid, "卧室暖气不热，麻烦派人来看看")
    assert "回复 1 确认报修" in ask and _count(db) == 0
    done = wechat.say(openid, "1")
    [ticket] = db.session.scalars(select(Ticket)).all()
    assert ticket.number in done and ticket.description == "卧室暖气不热，麻烦派人来看看"
    assert ticket.type == TicketType.REPAIR and ticket.crew_id == crew.id
    assert "没有待评价" not in wechat.say(openid, "1") and _count(db) == 1  # the step is answered once


def test_cancelling_the_confirmation_creates_nothing(db, wechat, make_household):
    openid, _ = bound_resident(db, wechat, make_household())
    wechat.say(openid, "家里暖气不热")
    assert "取消" in wechat.say(openid, "2")
    assert _count(db) == 0


def test_with_an_open_repair_the_words_are_added_to_it_instead_of_a_duplicate(db, wechat, make_household):
    home = make_household()
    openid, user = bound_resident(db, wechat, home)
    open_one = tickets.create_ticket(Actor.of_resident(user), type=TicketType.REPAIR,
                                     source=TicketSource.OFFICIAL_ACCOUNT, description="客厅暖气不热", household=home)
    db.session.commit()
    ask = wechat.say(openid, "卧室暖气也不热了")
    assert open_one.number in ask and "补充" in ask
    assert open_one.number in wechat.say(openid, "1")
    assert _count(db) == 1
    assert db.session.scalars(select(TicketEvent.note).where(TicketEvent.action == "resident_note")).all() == [
        "卧室暖气也不热了"]


def test_an_unbound_resident_reporting_in_words_is_told_to_bind(db, wechat):
    person = wechat.create_user()
    assert "绑定" in wechat.say(person["openid"], "我要报修，暖气不热")
    assert _count(db) == 0


# --- questions, greetings, bills, progress --------------------------------------------------------------

@pytest.mark.parametrize("asked, question", [
    ("暖气片不热是什么原因", "暖气片不热是什么原因？"),
    ("供暖费怎么交", "供暖费怎么交？"),
    ("什么时候开始供暖", "什么时候开始供暖？"),
    ("供暖到什么时候结束", "供暖到什么时候结束？"),
    ("家里没人住", "家里没人住还要交暖气费吗？"),
    ("房子过户了热费怎么办", "房屋过户后热费怎么办？"),
    ("暖气片怎么放气", "暖气片怎么放气？"),
    ("我想办理报停", "如何办理报停？"),
])
def test_questions_get_the_faq_answer_and_never_a_ticket(db, wechat, make_household, make_season, asked, question):
    make_season()
    openid, _ = bound_resident(db, wechat, make_household())
    reply = wechat.say(openid, asked)
    answer = next(a for _, q, a, _ in ENTRIES if q == question)
    assert reply.startswith(answer[:8].split("{")[0]) and "{" not in reply
    assert _count(db) == 0


def test_season_dates_in_answers_come_from_the_season(db, wechat, make_season):
    season = make_season()
    db.session.commit()
    person = wechat.create_user()
    reply = wechat.say(person["openid"], "什么时候开始供暖")
    start = season.starts_on
    assert f"{start.year}年{start.month}月{start.day}日" in reply and season.code in reply


def test_indoor_temperature_standard_comes_from_the_setting(db, wechat, app, monkeypatch):
    monkeypatch.setitem(app.config, "INDOOR_TEMP_STANDARD", 20.0)
    person = wechat.create_user()
    assert "不低于20℃" in wechat.say(person["openid"], "室温标准是多少度")


def test_an_unanswerable_question_lists_what_the_bot_can_do(db, wechat):
    person = wechat.create_user()
    reply = wechat.say(person["openid"], "楼下超市几点关门")
    assert "人工" in reply and "账单" in reply and _count(db) == 0


@pytest.mark.parametrize("text, expected", [("你好", "您好"), ("谢谢你们", "不客气"), ("辛苦了", "不客气")])
def test_greetings_and_thanks_are_answered_politely_not_sent_to_a_person(db, wechat, text, expected):
    person = wechat.create_user()
    assert expected in wechat.say(person["openid"], text)
    assert _count(db) == 0


def test_bill_in_words_shows_the_bill(db, wechat, make_household, make_season, clock):
    home = make_household(area_m2="100.00")
    billing.issue_bills(make_season(unit_price_fen=2500), [home])
    openid, _ = bound_resident(db, wechat, home)
    assert "2,500.00元" in wechat.say(openid, "查一下我家欠多少钱")


def test_progress_in_words_lists_the_open_tickets(db, wechat, make_household):
    home = make_household()
    openid, user = bound_resident(db, wechat, home)
    t = tickets.create_ticket(Actor.of_resident(user), type=TicketType.REPAIR, source=TicketSource.OFFICIAL_ACCOUNT,
                              description="卧室暖气片不热", household=home)
    db.session.commit()
    assert t.number in wechat.say(openid, "师傅什么时候来啊")


# --- ratings in chat -------------------------------------------------------------------------------

def _closed_ticket(db, user, home, make_staff, *, closed_ago=timedelta(hours=1)):
    t = tickets.create_ticket(Actor.of_resident(user), type=TicketType.INQUIRY, source=TicketSource.OFFICIAL_ACCOUNT,
                              description="咨询热费", household=home)
    agent = make_staff()
    tickets.close_ticket(t, Actor.of_staff(agent), "已答复")
    t.closed_at = utcnow() - closed_ago
    db.session.commit()
    return t


@pytest.mark.parametrize("words, score", [("5", 5), ("满意", 4), ("非常满意", 5), ("不满意", 2), ("一般", 3)])
def test_a_rating_in_chat_rates_the_latest_closed_ticket(db, wechat, make_household, make_staff, words, score):
    home = make_household()
    openid, user = bound_resident(db, wechat, home)
    t = _closed_ticket(db, user, home, make_staff)
    reply = wechat.say(openid, words)
    db.session.expire_all()
    assert db.session.get(Ticket, t.id).rating == score and t.number in reply


def test_rating_word_alone_asks_for_a_score(db, wechat, make_household, make_staff):
    home = make_household()
    openid, user = bound_resident(db, wechat, home)
    t = _closed_ticket(db, user, home, make_staff)
    assert "1-5" in wechat.say(openid, "评价")
    db.session.expire_all()
    assert db.session.get(Ticket, t.id).rating is None


def test_a_rating_after_72_hours_changes_nothing(db, wechat, make_household, make_staff):
    home = make_household()
    openid, user = bound_resident(db, wechat, home)
    t = _closed_ticket(db, user, home, make_staff, closed_ago=timedelta(hours=73))
    assert "没有可评价的工单" in wechat.say(openid, "5")
    db.session.expire_all()
    assert db.session.get(Ticket, t.id).rating is None


def test_a_rating_for_a_ticket_that_is_not_theirs_changes_nothing(db, wechat, make_household, make_staff):
    home, other_home = make_household(), make_household()
    openid, _ = bound_resident(db, wechat, home)
    _, neighbour = bound_resident(db, wechat, other_home, nickname="邻居")
    theirs = _closed_ticket(db, neighbour, other_home, make_staff)
    assert "本人" in wechat.say(openid, f"评价 {theirs.number} 5分")
    assert "没有可评价的工单" in wechat.say(openid, "5")  # the neighbour's ticket is not "theirs"
    db.session.expire_all()
    assert db.session.get(Ticket, theirs.id).rating is None


# --- bad input -------------------------------------------------------------------------------------

def test_emoji_only_gets_a_prompt_to_type(db, wechat):
    person = wechat.create_user()
    assert "文字" in wechat.say(person["openid"], "😂😂👍")
    assert "文字" in wechat.say(person["openid"], "/::)/::D")
    assert _count(db) == 0


def test_a_message_over_2000_characters_is_refused_with_the_limit(db, wechat, make_household):
    openid, _ = bound_resident(db, wechat, make_household())
    reply = wechat.say(openid, "暖气漏水了" * 401)
    assert "2000" in reply and _count(db) == 0


def test_voice_uses_wechats_recognition_text(db, wechat, make_household, make_crew, make_staff):
    home, *_ = crewed_home(make_household, make_crew, make_staff)
    openid, _ = bound_resident(db, wechat, home)
    result = wechat.send(openid, type="voice", recognition="暖气管子爆了！")
    assert "紧急工单" in result["reply"]["Content"]
    assert db.session.scalar(select(Ticket.state)) in TicketState.OPEN


def test_voice_without_recognition_gets_a_polite_prompt_to_type(db, wechat):
    person = wechat.create_user()
    result = wechat.send(person["openid"], type="voice")
    assert "文字" in result["reply"]["Content"] and _count(db) == 0
