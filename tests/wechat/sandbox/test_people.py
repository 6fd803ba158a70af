"""Simulated users: messages and events reach the callback signed (and encrypted in safe
mode) exactly as wechatpy expects, passive replies come back to the inbox, login codes work once."""
import time

import pytest
from wechatpy import create_reply, parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import WeChatClientException
from wechatpy.utils import check_signature

from .conftest import AES_KEY, OA_APPID, TOKEN


def _reply_with(text):
    def answer(received):
        message = parse_message(received.body.decode())
        return 200, create_reply(text, message).render().encode()
    return answer


def test_plain_text_message_is_signed_and_parsed_by_wechatpy(sandbox, backend):
    user = sandbox.create_user()
    result = sandbox.post(f"/users/{user['openid']}/messages", json={"type": "text", "content": "暖气不热"}).json()

    assert result["ok"] is True
    received = backend.wait_for(lambda r: r.path == "/wechat/callback")
    check_signature(TOKEN, received.args["signature"], received.args["timestamp"], received.args["nonce"])
    message = parse_message(received.body.decode())
    assert (message.type, message.content, message.source) == ("text", "暖气不热", user["openid"])
    assert message.id > 0


def test_passive_text_reply_lands_in_inbox(sandbox, backend):
    backend.answer = _reply_with("您好，已收到")
    user = sandbox.create_user()
    result = sandbox.post(f"/users/{user['openid']}/messages", json={"content": "你好"}).json()
    assert result["reply"]["Content"] == "您好，已收到"
    inbox = sandbox.inbox(user["openid"])
    assert [(m["kind"], m["content"]) for m in inbox] == [("passive", "您好，已收到")]


def test_safe_mode_message_decrypts_with_wechatpy_and_encrypted_reply_is_verified(safe_sandbox, backend):
    crypto = WeChatCrypto(TOKEN, AES_KEY, OA_APPID)

    def answer(received):
        xml = crypto.decrypt_message(received.body, received.args["msg_signature"],
                                     received.args["timestamp"], received.args["nonce"])
        reply = create_reply("加密回复", parse_message(xml)).render()
        return 200, crypto.encrypt_message(reply, received.args["nonce"], received.args["timestamp"]).encode()

    backend.answer = answer
    user = safe_sandbox.create_user()
    result = safe_sandbox.post(f"/users/{user['openid']}/messages", json={"content": "安全模式"}).json()

    received = backend.wait_for(lambda r: r.path == "/wechat/callback")
    assert received.args["encrypt_type"] == "aes"
    assert b"<Encrypt>" in received.body and "安全模式".encode() not in received.body
    assert result["ok"] is True, result
    assert result["reply"]["Content"] == "加密回复"
    assert safe_sandbox.inbox(user["openid"])[0]["content"] == "加密回复"


def test_safe_mode_rejects_a_plaintext_reply(safe_sandbox, backend):
    backend.answer = _reply_with("明文")
    user = safe_sandbox.create_user()
    result = safe_sandbox.post(f"/users/{user['openid']}/messages", json={"content": "hi"}).json()
    assert result["ok"] is False
    assert result["user_sees"] == "该公众号暂时无法提供服务，请稍后再试"


def test_json_reply_is_a_failure_the_user_sees(sandbox, backend):
    backend.answer = lambda received: (200, b'{"ok": true}')
    user = sandbox.create_user()
    result = sandbox.post(f"/users/{user['openid']}/messages", json={"content": "hi"}).json()
    assert result["ok"] is False and "user_sees" in result


def test_slow_callback_is_tried_three_times_with_the_same_message(sandbox, backend):
    def slow(received):
        time.sleep(2.5)  # beyond the sandbox's 2 s test timeout
        return 200, b"success"

    backend.answer = slow
    user = sandbox.create_user()
    result = sandbox.post(f"/users/{user['openid']}/messages", json={"content": "重试"}).json()
    assert result["attempts"] == 3 and result["ok"] is False
    bodies = {r.body for r in backend.received if r.path == "/wechat/callback"}
    assert len(bodies) == 1


def test_image_message_media_is_downloadable(sandbox, backend, oa_client):
    user = sandbox.create_user()
    sandbox.post(f"/users/{user['openid']}/messages", json={"type": "image"})
    message = parse_message(backend.wait_for(lambda r: r.path == "/wechat/callback").body.decode())
    assert message.type == "image"
    response = oa_client.media.download(message.media_id)
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.content[:2] == b"\xff\xd8"
    assert "attachment" in response.headers["Content-disposition"]


def test_location_message_carries_coordinates(sandbox, backend):
    user = sandbox.create_user()
    sandbox.post(f"/users/{user['openid']}/messages",
                 json={"type": "location", "latitude": 45.75, "longitude": 126.63, "label": "哈尔滨"})
    message = parse_message(backend.wait_for(lambda r: r.path == "/wechat/callback").body.decode())
    assert (message.type, message.label) == ("location", "哈尔滨")
    assert tuple(map(float, message.location)) == (45.75, 126.63)


def test_subscribe_with_qr_scene_and_scan_events(sandbox, backend):
    user = sandbox.create_user(follow=False)
    sandbox.post(f"/users/{user['openid']}/messages", json={"type": "event", "event": "subscribe", "scene": "1024"})
    sandbox.post(f"/users/{user['openid']}/messages", json={"type": "event", "event": "SCAN", "scene": "2048"})
    subscribe, scan = [parse_message(r.body.decode()) for r in backend.received]
    assert (subscribe.event, subscribe.scene_id) == ("subscribe_scan", "1024")
    assert (scan.event, scan.scene_id) == ("scan", "2048")
    assert sandbox.get(f"/users/{user['openid']}").json()["subscribed"] is True


def test_unsubscribe_event_stops_following(sandbox, backend):
    user = sandbox.create_user()
    sandbox.post(f"/users/{user['openid']}/messages", json={"event": "unsubscribe"})
    assert parse_message(backend.received[0].body.decode()).event == "unsubscribe"
    assert sandbox.get(f"/users/{user['openid']}").json()["subscribed"] is False


def test_click_event_carries_menu_key(sandbox, backend):
    user = sandbox.create_user()
    sandbox.post(f"/users/{user['openid']}/messages", json={"event": "CLICK", "key": "REPAIR"})
    message = parse_message(backend.received[0].body.decode())
    assert (message.event, message.key) == ("click", "REPAIR")


def test_login_code_works_once_with_jscode2session(sandbox, mp_client):
    user = sandbox.create_user()
    code = sandbox.post(f"/users/{user['openid']}/login-code").json()["code"]

    session = mp_client.wxa.code_to_session(code)
    assert session["openid"] == user["mp_openid"] != user["oa_openid"]
    assert session["unionid"] == user["unionid"] and session["session_key"]

    with pytest.raises(WeChatClientException) as error:
        mp_client.wxa.code_to_session(code)
    assert error.value.errcode == 40163


def test_unknown_login_code_is_40029(sandbox, mp_client):
    with pytest.raises(WeChatClientException) as error:
        mp_client.wxa.code_to_session("nonsense")
    assert error.value.errcode == 40029
