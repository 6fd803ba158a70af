"""Subscription-notice events (subscribe_msg_*) are events: no reply, no 48-hour window.

wechatpy 1.8.18 parses them as unknown *messages*; taken as a user writing, they would open
the customer-service window (WeChat opens none for them) and answer "暂不支持此类消息"."""
import requests
from sqlalchemy import select

from app.models import InboundMessage
from wechat.notify import window_key


def _event(wechat, openid, event, templates):
    return wechat.send(openid, type="event", event=event, templates=templates)


def test_a_popup_answer_gets_no_reply_and_opens_no_window(db, wechat, redis):
    person = wechat.create_user()
    result = _event(wechat, person["openid"], "subscribe_msg_popup_event",
                    [{"template_id": "TPL_OUTAGE_OA", "status": "accept"}, {"template_id": "TPL_BILL_OA", "status": "reject"}])
    assert result["ok"] and result["reply"] is None and result["raw_reply"] == "success"
    assert not redis.exists(window_key(person["openid"]))
    row = db.session.scalar(select(InboundMessage))
    assert (row.msg_type, row.event) == ("event", "subscribe_msg_popup_event")
    assert "<SubscribeMsgPopupEvent>" in row.raw and row.raw.count("<List>") == 2


def test_a_single_template_popup_is_read_the_same_way(db, wechat, redis):
    person = wechat.create_user()
    result = _event(wechat, person["openid"], "subscribe_msg_popup_event", [{"template_id": "TPL_OUTAGE_OA"}])
    assert result["ok"] and result["reply"] is None
    assert not redis.exists(window_key(person["openid"]))


def test_switching_a_notice_off_gets_no_reply(db, wechat, redis):
    person = wechat.create_user()
    result = _event(wechat, person["openid"], "subscribe_msg_change_event", [{"template_id": "TPL_OUTAGE_OA"}])
    assert result["ok"] and result["reply"] is None
    assert not redis.exists(window_key(person["openid"]))
    assert db.session.scalar(select(InboundMessage.event)) == "subscribe_msg_change_event"


def test_the_outcome_of_a_subscription_notice_is_an_event_too(app, db, wechat, redis):
    person = wechat.create_user()
    # The official account's own subscription-notice template (we send none of these yet).
    requests.post(f"{wechat.base}/templates", timeout=10, json={"templates": [
        {"template_id": "TPL_OUTAGE_OA", "app": "oa", "type": "subscribe", "title": "停热通知",
         "content": "停热区域:{{thing1.DATA}}\n"}]}).raise_for_status()
    requests.post(f"{wechat.base}/users/{person['openid']}/consent", timeout=10,
                  json={"template_id": "TPL_OUTAGE_OA", "scene": "oa"})
    from wechat import client as wechat_client

    # WeChat posts subscribe_msg_sent_event to our callback once the notice is delivered.
    wechat_client.official_account().message.send_subscribe_message(
        person["openid"], "TPL_OUTAGE_OA", {"thing1": {"value": "和平小区停热"}})
    row = db.session.scalar(select(InboundMessage).where(InboundMessage.event == "subscribe_msg_sent_event"))
    assert row is not None and row.msg_type == "event"
    assert not redis.exists(window_key(person["openid"]))
    pushes = [m for m in requests.get(f"{wechat.base}/users/{person['openid']}/inbox", params={"all": 1},
                                      timeout=10).json() if m["kind"] == "event_push"]
    assert pushes and all(p["ok"] for p in pushes)
    assert not [m for m in wechat.inbox(person["openid"]) if m["kind"] == "passive"]


def test_an_event_wechat_adds_later_is_still_an_event(client, db, redis):
    from tests.wechat.test_callback import _signed

    xml = ("<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[oUSERnew0000000000000000001]]>"
           f"</FromUserName><CreateTime>{int(__import__('time').time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
           "<Event><![CDATA[some_future_event]]></Event></xml>")
    res = client.post("/wechat/callback", query_string=_signed(), data=xml)
    assert res.status_code == 200 and res.data == b"success"
    assert not redis.exists(window_key("oUSERnew0000000000000000001"))
    assert db.session.scalar(select(InboundMessage.event)) == "some_future_event"
