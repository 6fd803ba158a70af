"""Outbound messages through the real wechatpy client: windows, consent, template events."""
import pytest
from wechatpy import parse_message
from wechatpy.exceptions import WeChatClientException


def _errcode(call):
    with pytest.raises(WeChatClientException) as error:
        call()
    return error.value.errcode


def _user_who_wrote(sandbox, **kwargs):
    user = sandbox.create_user(**kwargs)
    sandbox.post(f"/users/{user['openid']}/messages", json={"content": "在吗"})
    return user


def test_custom_message_reaches_the_inbox(sandbox, oa_client):
    user = _user_who_wrote(sandbox)
    oa_client.message.send_text(user["openid"], "师傅下午到")
    inbox = sandbox.inbox(user["openid"])
    assert [(m["kind"], m["content"]) for m in inbox] == [("custom", "师傅下午到")]


def test_custom_message_without_user_message_is_45015(sandbox, oa_client):
    user = sandbox.create_user()
    assert _errcode(lambda: oa_client.message.send_text(user["openid"], "hi")) == 45015


def test_custom_message_after_48_hours_is_45015(sandbox, oa_client):
    user = _user_who_wrote(sandbox)
    sandbox.post("/clock", json={"advance": 48 * 3600 + 1})
    assert _errcode(lambda: oa_client.message.send_text(user["openid"], "迟到的回复")) == 45015


def test_sixth_custom_message_in_window_is_45047(sandbox, oa_client):
    user = _user_who_wrote(sandbox)
    for n in range(5):
        oa_client.message.send_text(user["openid"], f"第{n}条")
    assert _errcode(lambda: oa_client.message.send_text(user["openid"], "第六条")) == 45047


def test_window_closed_fault_forces_45015(sandbox, oa_client):
    user = _user_who_wrote(sandbox)
    sandbox.faults(window_closed=True)
    assert _errcode(lambda: oa_client.message.send_text(user["openid"], "hi")) == 45015


def test_custom_message_to_unknown_openid_is_40003(sandbox, oa_client):
    assert _errcode(lambda: oa_client.message.send_text("o" + "x" * 27, "hi")) == 40003


def test_template_send_posts_templatesendjobfinish_with_its_msgid(sandbox, backend, oa_client):
    user = sandbox.create_user()
    data = {"character_string1": {"value": "10100001"}, "amount2": {"value": "¥1234.00"},
            "time3": {"value": "2026年12月31日 18:00"}}
    result = oa_client.message.send_template(user["openid"], "TPL_BILL", data)
    event = backend.wait_for(lambda r: b"TEMPLATESENDJOBFINISH" in r.body)
    assert b"<MsgID>" in event.body  # capital D, as WeChat spells it
    message = parse_message(event.body.decode())
    assert message.event == "templatesendjobfinish"
    assert str(message._data["MsgID"]) == str(result["msgid"])
    assert message._data["Status"] == "success"
    received = sandbox.inbox(user["openid"])[0]
    assert (received["template_id"], received["title"]) == ("TPL_BILL", "缴费提醒")
    assert received["rows"] == [["户号", "10100001"], ["欠费金额", "¥1234.00"], ["缴费截止", "2026年12月31日 18:00"]]


def test_template_status_fault_reports_user_block(sandbox, backend, oa_client):
    user = sandbox.create_user()
    sandbox.faults(template_status="failed:user block")
    oa_client.message.send_template(user["openid"], "TPL", {"thing1": {"value": "v"}})
    event = backend.wait_for(lambda r: b"TEMPLATESENDJOBFINISH" in r.body)
    assert parse_message(event.body.decode())._data["Status"] == "failed:user block"


def test_template_events_can_be_switched_off(sandbox, backend, oa_client):
    user = sandbox.create_user()
    sandbox.faults(template_finish_events=False)
    oa_client.message.send_template(user["openid"], "TPL", {"thing1": {"value": "v"}})
    with pytest.raises(AssertionError):
        backend.wait_for(lambda r: b"TEMPLATESENDJOBFINISH" in r.body, timeout=0.5)


def test_template_to_unfollowed_user_is_43004(sandbox, oa_client):
    user = sandbox.create_user(follow=False)
    assert _errcode(lambda: oa_client.message.send_template(user["openid"], "TPL", {"thing1": {"value": "v"}})) == 43004


def test_template_with_empty_value_is_47003(sandbox, oa_client):
    user = sandbox.create_user()
    assert _errcode(lambda: oa_client.message.send_template(user["openid"], "TPL", {"thing1": {"value": ""}})) == 47003


def test_template_client_msg_id_sends_once(sandbox, oa_client):
    user = sandbox.create_user()
    body = {"touser": user["openid"], "template_id": "TPL", "client_msg_id": "bill-42", "data": {"thing1": {"value": "v"}}}
    first = oa_client.post("message/template/send", data=body)
    second = oa_client.post("message/template/send", data=body)
    assert first["msgid"] == second["msgid"]
    assert len(sandbox.inbox(user["openid"])) == 1


def test_template_client_msg_id_dedupes_for_ten_minutes_only(sandbox, oa_client):
    """WECHAT.md §3: the same openid + client_msg_id is sent once within 10 minutes. Our
    recovery of a cut-off template message relies on exactly this, and on nothing longer."""
    user = sandbox.create_user()
    body = {"touser": user["openid"], "template_id": "TPL", "client_msg_id": "notice-7", "data": {"thing1": {"value": "v"}}}
    first = oa_client.post("message/template/send", data=body)
    sandbox.post("/clock", json={"advance": 9 * 60})
    assert oa_client.post("message/template/send", data=body)["msgid"] == first["msgid"]
    assert len(sandbox.inbox(user["openid"])) == 1
    sandbox.post("/clock", json={"advance": 61})  # 10 minutes and a second after the first
    assert oa_client.post("message/template/send", data=body)["msgid"] != first["msgid"]
    assert len(sandbox.inbox(user["openid"])) == 2


def test_subscribe_message_consumes_one_consent(sandbox, mp_client):
    user = sandbox.create_user()
    data = {"thing1": {"value": "暖气维修"}}
    send = lambda: mp_client.wxa.send_subscribe_message(user["mp_openid"], "TID_REPAIR", data, page="pages/t")
    assert _errcode(send) == 43101

    sandbox.post(f"/users/{user['openid']}/consent", json={"template_id": "TID_REPAIR"})
    send()
    assert _errcode(send) == 43101
    assert [m["kind"] for m in sandbox.inbox(user["openid"])] == ["subscribe"]


def test_subscribe_message_thing_over_20_chars_is_47003(sandbox, mp_client):
    user = sandbox.create_user()
    sandbox.post(f"/users/{user['openid']}/consent", json={"template_id": "TID"})
    data = {"thing1": {"value": "这是一段超过二十个字的很长很长很长很长的说明文字"}}
    assert _errcode(lambda: mp_client.wxa.send_subscribe_message(user["mp_openid"], "TID", data)) == 47003


def test_mass_send_caps_each_user_at_four_a_month(sandbox, oa_client):
    users = [sandbox.create_user() for _ in range(2)]
    openids = [u["openid"] for u in users]
    for n in range(5):
        oa_client.message.send_mass_text(openids, f"停热通知{n}")
    assert len(sandbox.inbox(openids[0])) == 4


def test_mass_sendall_by_tag_reaches_tagged_followers(sandbox, oa_client):
    tagged, other = sandbox.create_user(), sandbox.create_user()
    tag = oa_client.tag.create("一号站")
    oa_client.tag.tag_user(tag["id"], [tagged["openid"]])
    oa_client.message.send_mass_text(tag["id"], "一号站明日检修", is_to_all=False)
    assert len(sandbox.inbox(tagged["openid"])) == 1
    assert sandbox.inbox(other["openid"]) == []
