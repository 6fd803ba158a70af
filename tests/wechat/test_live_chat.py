"""Live chat (会话) through the real callback and the WeChat sandbox: a resident asks for a
person, an agent answers as customer-service messages inside WeChat's window."""
import hashlib
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
from sqlalchemy import func, select

from app import clock as app_clock
from app.errors import ConflictError
from app.models import (
    ChatSendStatus, Conversation, ConversationMessage, FaqEntry, InboundMessage, Role, Ticket,
    WechatUser,
)
from app.services import chat
from app.services.uploads import open_stored
from tests.factories import bind_wechat_user
from wechat.sandbox.media import make_jpeg

TOKEN = "demo-callback-token"
IN_HOURS = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)      # 10:00 Beijing
AFTER_HOURS = datetime(2026, 11, 25, 14, 30, tzinfo=timezone.utc)  # 22:30 Beijing


@pytest.fixture()
def at():
    """Put the app's clock at an instant (office hours depend on it); back to real time after."""
    yield app_clock.travel_to
    app_clock.back_to_real_time()


@pytest.fixture()
def resident(db, wechat, make_household):
    home = make_household(owner_name="刘秀英")
    person, user = bind_wechat_user(db, wechat, household=home, nickname="刘秀英", mini_program=False)
    db.session.commit()
    return person["openid"], user, home


@pytest.fixture()
def agents(db, make_staff):
    one, two = make_staff(role=Role.AGENT, name="客服小王"), make_staff(role=Role.AGENT, name="客服小李")
    db.session.commit()
    return one, two


def _conv(db) -> Conversation:
    db.session.expire_all()
    return db.session.scalar(select(Conversation).order_by(Conversation.id.desc()))


def _texts(inbox) -> list[str]:
    return [m.get("content") for m in inbox if m.get("kind") == "custom" and m.get("content")]


def test_human_opens_one_conversation_with_the_question_and_a_queue_place(db, wechat, resident, at):
    at(IN_HOURS)
    openid, _, home = resident
    wechat.say(openid, "卧室暖气片上面热下面凉是怎么回事")
    first = wechat.say(openid, "人工")
    assert "已为您转接人工客服" in first and "前面还有0位" in first
    again = wechat.say(openid, "人工")
    assert "前面还有0位" in again                      # the same conversation, not a new one
    conv = _conv(db)
    assert db.session.scalar(select(func.count(Conversation.id))) == 1
    assert db.session.scalar(select(func.count(Ticket.id))) == 0
    assert conv.status == "waiting" and conv.household_id == home.id and not conv.callback_requested
    assert [m.text for m in conv.messages if m.direction == "in"] == ["卧室暖气片上面热下面凉是怎么回事"]


def test_while_open_messages_go_to_the_agent_not_the_bot_and_end_with_jieshu(db, wechat, resident, at):
    at(IN_HOURS)
    db.session.add(FaqEntry(category="其他", question="暖气片可以刷银粉漆吗？", answer="可以，请选用耐高温的银粉漆。",
                            keywords="银粉漆 刷漆"))
    db.session.commit()
    openid, _, _ = resident
    assert wechat.say(openid, "暖气片能刷银粉漆吗") == "可以，请选用耐高温的银粉漆。"   # the bot, before
    wechat.say(openid, "人工")
    assert wechat.say(openid, "暖气片能刷银粉漆吗") is None                    # now the agent's
    wechat.send(openid, type="image")
    conv = _conv(db)
    inbound = [m for m in conv.messages if m.direction == "in"]
    assert inbound[-2].text == "暖气片能刷银粉漆吗" and inbound[-1].media_id
    ended = wechat.say(openid, "结束")
    assert "已结束人工会话" in ended                                          # nobody answered: no rating asked
    assert _conv(db).status == "closed" and _conv(db).closed_by == "resident"
    assert wechat.say(openid, "暖气片能刷银粉漆吗") == "可以，请选用耐高温的银粉漆。"   # the bot again


def test_agent_takes_replies_transfers_and_closes_with_a_rating_invitation(db, wechat, resident, agents, worker, at):
    at(IN_HOURS)
    openid, _, _ = resident
    one, two = agents
    wechat.say(openid, "人工")
    conv = _conv(db)
    chat.claim(conv, one)
    db.session.commit()
    with pytest.raises(ConflictError):
        chat.claim(conv, two)                               # taken: the second agent is told
    db.session.rollback()
    chat.reply(chat.get_conversation(conv.id), one, "您好，我是客服小王，请问您家是哪个房间不热？")
    db.session.commit()
    worker()
    assert "您好，我是客服小王，请问您家是哪个房间不热？" in _texts(wechat.inbox(openid))
    assert wechat.say(openid, "卧室") is None
    conv = _conv(db)
    assert conv.status == "active" and conv.first_response_at is not None and conv.claimed_at is not None
    assert conv.messages[-1].text == "卧室" and conv.messages[-2].status == ChatSendStatus.SENT

    chat.transfer(conv, one, two)
    db.session.commit()
    with pytest.raises(ConflictError):
        chat.reply(_conv(db), one, "还在吗")                 # no longer theirs
    db.session.rollback()
    chat.close(_conv(db), two)
    db.session.commit()
    worker()
    texts = _texts(wechat.inbox(openid))
    assert "您的会话已转给客服客服小李，请稍候。" in texts
    assert chat.RATING_INVITATION in texts
    assert "感谢您的评价" in wechat.say(openid, "5")
    conv = _conv(db)
    assert conv.rating == 5 and conv.agent_id == two.id
    assert "感谢" not in (wechat.say(openid, "5") or "")     # rated once; "5" goes to the bot after


def test_reply_outside_the_48_hour_window_is_refused_with_the_reason_and_an_invitation_goes_out(
        db, wechat, resident, agents, worker, at):
    at(IN_HOURS)
    openid, _, _ = resident
    one, _ = agents
    wechat.say(openid, "人工")
    conv = _conv(db)
    chat.claim(conv, one)
    db.session.commit()
    # Two days and an hour later, on both clocks (ours and WeChat's).
    requests.post(f"{wechat.base}/clock", json={"advance": 49 * 3600}, timeout=10)
    at(IN_HOURS + timedelta(hours=49))
    window = chat.reply_window(_conv(db))
    assert not window.open and "48小时" in window.reason
    with pytest.raises(ConflictError, match="48小时"):
        chat.reply(_conv(db), one, "您好")
    db.session.rollback()
    chat.invite_back(_conv(db), one)
    db.session.commit()
    worker()
    cards = [m for m in wechat.inbox(openid) if m.get("kind") == "template"]
    assert cards and cards[-1]["title"] == "客服回复提醒"
    assert _conv(db).messages[-1].status == ChatSendStatus.SENT


def test_wechat_refusal_is_kept_with_the_message_and_the_resend_goes_out(db, wechat, resident, agents, worker, at):
    at(IN_HOURS)
    openid, _, _ = resident
    one, _ = agents
    wechat.say(openid, "人工")
    conv = _conv(db)
    chat.claim(conv, one)
    wechat.faults(errcode=45015, times=1, api="message/custom/send")   # WeChat says: window closed
    chat.reply(conv, one, "请问您家的户号是多少？")
    db.session.commit()
    worker()
    message = _conv(db).messages[-1]
    assert message.status == ChatSendStatus.FAILED and message.errcode == 45015
    assert "48小时" in message.error
    chat.retry(message, one)
    db.session.commit()
    worker()
    assert _conv(db).messages[-1].status == ChatSendStatus.SENT
    assert _texts(wechat.inbox(openid)).count("请问您家的户号是多少？") == 1


def test_five_replies_per_resident_message_then_the_box_says_why(db, wechat, resident, agents, worker, at):
    at(IN_HOURS)
    openid, _, _ = resident
    one, _ = agents
    wechat.say(openid, "人工")
    chat.claim(_conv(db), one)
    for i in range(5):
        chat.reply(_conv(db), one, f"第{i + 1}条")
    db.session.commit()
    worker()
    window = chat.reply_window(_conv(db))
    assert not window.open and "45047" in window.reason
    assert len(_texts(wechat.inbox(openid))) == 5
    wechat.say(openid, "好的")
    assert chat.reply_window(_conv(db)).left == 5


def _post_callback(live_app, xml: str) -> str:
    ts, nonce = str(int(time.time())), "777"
    sig = hashlib.sha1("".join(sorted([TOKEN, ts, nonce])).encode()).hexdigest()
    res = requests.post(f"{live_app.url}/wechat/callback", params={"signature": sig, "timestamp": ts, "nonce": nonce},
                        data=xml.encode(), timeout=10)
    assert res.status_code == 200
    return res.text


def test_a_wechat_retry_of_the_same_message_joins_the_conversation_once(db, wechat, resident, live_app, at):
    at(IN_HOURS)
    openid, _, _ = resident
    wechat.say(openid, "人工")
    xml = (f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
           f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
           f"<Content><![CDATA[楼下邻居家也不热]]></Content><MsgId>880011</MsgId></xml>")
    for _ in range(3):
        _post_callback(live_app, xml)
    conv = _conv(db)
    assert [m.text for m in conv.messages].count("楼下邻居家也不热") == 1
    assert db.session.scalar(select(func.count(InboundMessage.id)).where(InboundMessage.dedupe_key == "880011")) == 1


def test_out_of_hours_answer_gives_hours_and_hotline_and_flags_a_call_back(db, wechat, resident, app, at):
    at(AFTER_HOURS)
    openid, _, _ = resident
    answer = wechat.say(openid, "人工")
    assert app.config["HOTLINE_NUMBER"] in answer and "08:00-20:00" in answer and "不在服务时间" in answer
    conv = _conv(db)
    assert conv.callback_requested and conv.status == "waiting"
    assert conv.messages[-1].channel == "passive" and app.config["HOTLINE_NUMBER"] in conv.messages[-1].text


def test_transcript_becomes_a_ticket_with_the_residents_words_and_photo(db, wechat, resident, agents, worker, at):
    at(IN_HOURS)
    openid, user, home = resident
    one, _ = agents
    wechat.say(openid, "人工")
    wechat.say(openid, "客厅暖气片接口滴水")
    wechat.send(openid, type="image")
    worker()                                                   # the photo is fetched and stored
    conv = _conv(db)
    photo = conv.messages[-1]
    assert photo.image_path and open_stored(photo.image_path).read_bytes()[:2] == b"\xff\xd8"
    ticket = chat.to_ticket(conv, one)
    db.session.commit()
    assert "客厅暖气片接口滴水" in ticket.description and ticket.household_id == home.id
    assert ticket.reporter_id == user.id and [p.path for p in ticket.photos] == [photo.image_path]
    with pytest.raises(ConflictError):
        chat.to_ticket(_conv(db), one)


def test_agent_image_goes_out_through_media_upload(db, wechat, resident, agents, worker, at):
    at(IN_HOURS)
    from app.services.uploads import store_image

    openid, _, _ = resident
    one, _ = agents
    wechat.say(openid, "人工")
    conv = _conv(db)
    chat.claim(conv, one)
    path, content_type, _ = store_image(make_jpeg("valve"), folder=f"chat/{conv.id}")
    chat.reply(conv, one, image=(path, content_type))
    db.session.commit()
    worker()
    sent = [m for m in wechat.inbox(openid) if m.get("kind") == "custom" and m.get("msgtype") == "image"]
    assert len(sent) == 1 and sent[0]["media_id"] == _conv(db).messages[-1].media_id
    assert _conv(db).messages[-1].status == ChatSendStatus.SENT


def test_one_open_conversation_per_person_even_at_once(db, resident):
    _, user, _ = resident
    db.session.add(Conversation(wechat_user_id=user.id, status="waiting", last_activity_at=app_clock.utcnow()))
    db.session.commit()
    from sqlalchemy.exc import IntegrityError

    db.session.add(Conversation(wechat_user_id=user.id, status="active", last_activity_at=app_clock.utcnow()))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    conv, created = chat.open_conversation(db.session.get(WechatUser, user.id), "还在吗")
    assert not created and conv.messages[-1].text == "还在吗"
