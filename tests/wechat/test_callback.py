"""The callback's boundary: signatures, timestamps, safe mode, bad input, retries."""
import hashlib
import time

import pytest
from sqlalchemy import func, select
from wechatpy.crypto import WeChatCrypto

from app.models import Conversation, InboundMessage, Ticket

TOKEN = "demo-callback-token"


def _signed(timestamp=None, nonce="12345"):
    timestamp = str(timestamp or int(time.time()))
    signature = hashlib.sha1("".join(sorted([TOKEN, timestamp, nonce])).encode()).hexdigest()
    return {"signature": signature, "timestamp": timestamp, "nonce": nonce, "openid": "oUSER"}


def _text(content, msg_id=1001, sender="oUSER00000000000000000000001"):
    return (f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[{sender}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>")


def _inbound_count(db):
    return db.session.scalar(select(func.count()).select_from(InboundMessage))


def test_url_verification_echoes_only_with_a_valid_signature(client):
    assert client.get("/wechat/callback", query_string={**_signed(), "echostr": "hello"}).data == b"hello"
    bad = {**_signed(), "signature": "0" * 40, "echostr": "hello"}
    assert client.get("/wechat/callback", query_string=bad).status_code == 403


def test_wrong_signature_and_stale_timestamp_are_refused(client, db):
    bad = {**_signed(), "signature": "f" * 40}
    assert client.post("/wechat/callback", query_string=bad, data=_text("你好")).status_code == 403
    stale = _signed(timestamp=int(time.time()) - 3600)
    assert client.post("/wechat/callback", query_string=stale, data=_text("你好")).status_code == 403
    assert _inbound_count(db) == 0


@pytest.mark.parametrize("body", [
    b"<xml><Content>unclosed",
    b"not xml at all",
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
    b"<xml><FromUserName>&lol2;</FromUserName><MsgType>text</MsgType></xml>",
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><Content>&xxe;</Content></xml>',
])
def test_malformed_xml_and_entity_tricks_get_400_and_store_nothing(client, db, body):
    res = client.post("/wechat/callback", query_string=_signed(), data=body)
    assert res.status_code == 400
    assert _inbound_count(db) == 0


def test_body_over_one_megabyte_is_refused(client, db):
    res = client.post("/wechat/callback", query_string=_signed(), data=_text("热" * 400_000))
    assert res.status_code == 413
    assert _inbound_count(db) == 0


def test_unknown_message_type_gets_a_polite_reply(client, db):
    xml = (f"<xml><ToUserName>gh</ToUserName><FromUserName>oUSER1</FromUserName><CreateTime>{int(time.time())}"
           "</CreateTime><MsgType>hologram</MsgType><MsgId>77</MsgId></xml>")
    res = client.post("/wechat/callback", query_string=_signed(), data=xml)
    assert res.status_code == 200
    assert "暂不支持" in res.data.decode()


def test_the_same_message_three_times_has_one_effect(client, db):
    for _ in range(3):
        res = client.post("/wechat/callback", query_string=_signed(), data=_text("人工", msg_id=4242))
        assert res.status_code == 200
        assert "人工客服" in res.data.decode()  # the retry gets the same answer
    assert _inbound_count(db) == 1
    # 人工 opens one live-chat conversation (not a ticket), whatever the retries
    assert db.session.scalar(select(func.count()).select_from(Conversation)) == 1
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_safe_mode_message_is_decrypted_and_the_reply_encrypted(app, client, db, monkeypatch):
    aes_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
    monkeypatch.setitem(app.config, "WECHAT_AES_KEY", aes_key)
    crypto = WeChatCrypto(TOKEN, aes_key, app.config["WECHAT_APPID"])
    params = _signed()
    encrypted = crypto.encrypt_message(_text("帮助", msg_id=555), params["nonce"], params["timestamp"])
    # encrypt_message builds a reply envelope; WeChat's push carries Encrypt the same way.
    from xml.etree import ElementTree
    root = ElementTree.fromstring(encrypted)
    enc = root.findtext("Encrypt")
    push = f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt></xml>"
    params.update(encrypt_type="aes", msg_signature=root.findtext("MsgSignature"))
    res = client.post("/wechat/callback", query_string=params, data=push)
    assert res.status_code == 200
    reply = ElementTree.fromstring(res.data)
    plain = crypto.decrypt_message(res.data, reply.findtext("MsgSignature"), reply.findtext("TimeStamp"),
                                   reply.findtext("Nonce"))
    assert "账单" in plain  # the help text
    bad = {**params, "msg_signature": "0" * 40}
    assert client.post("/wechat/callback", query_string=bad, data=push).status_code == 403


def test_wechat_published_sample_decrypts_and_verifies():
    # Tencent's official Python sample (WECHAT.md §10 B).
    crypto = WeChatCrypto("spamtest", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx2c2769f8efd9abc2")
    encrypt = ("hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=")
    body = f"<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    xml = crypto.decrypt_message(body, "5d197aaffba7e9b25a30732f161a50dee96bd5fa", "1409735669", "1320562132")
    assert "<Content><![CDATA[abcdteT]]></Content>" in xml
    assert "6054768590064713728" in xml
