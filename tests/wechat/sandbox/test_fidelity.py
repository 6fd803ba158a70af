"""The sandbox checked against WeChat's own published samples and rules, so that its
fidelity is tested rather than assumed (WECHAT.md §10 for the vectors, §1–§6 and traps 2, 6,
14, 15 for the rules; each rule names the document it comes from).

The crypto vectors are run through the sandbox's own implementation (wechat/sandbox/crypto.py,
written from the spec, independent of wechatpy); everything else goes over HTTP.
"""
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from defusedxml import ElementTree
from wechatpy import create_reply, parse_message
from wechatpy.messages import UnknownMessage
from wechatpy.replies import ArticlesReply

from wechat.inbound import parse_message as parse_inbound
from wechat.sandbox.crypto import MessageCrypto, sha1_signature

from .conftest import MP_APPID, MP_SECRET, OA_APPID, OA_SECRET

FAILURE = "该公众号暂时无法提供服务，请稍后再试"


# --- 1. Published vectors: signatures and safe-mode encryption ---------------------------------

def test_plain_signature_matches_the_published_vector():
    # wechatpy tests/test_utils.py: token "test", timestamp 1410685589, nonce "test".
    assert sha1_signature("test", "1410685589", "test") == "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"


def test_tencent_official_python_sample_decrypts_and_its_msg_signature_matches():
    # Tencent's WXBizMsgCrypt Sample.py (WECHAT.md §10 B).
    crypto = MessageCrypto("spamtest", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx2c2769f8efd9abc2")
    encrypt = ("hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHF"
               "VAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVti"
               "cbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+"
               "77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5"
               "MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=")
    assert crypto.signature("1409735669", "1320562132", encrypt) == "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
    xml = crypto.decrypt(encrypt)
    message = parse_message(xml)
    assert (message.type, message.content, message.source, message.target) == (
        "text", "abcdteT", "oyORnuP8q7ou2gfYjqLzSIWZf0rs", "gh_10f6c3c3ac5a")
    assert (message.time, message.id) == (1409735668, 6054768590064713728)


WECHATPY_TOKEN, WECHATPY_KEY, WECHATPY_APPID = "123456", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "wx49f0ab532d5d035a"


def test_wechatpy_published_vector_decrypts():
    # wechatpy tests/test_crypto.py test_decrypt_message (WECHAT.md §10 A).
    crypto = MessageCrypto(WECHATPY_TOKEN, WECHATPY_KEY, WECHATPY_APPID)
    encrypt = ("RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6"
               "Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx41"
               "0cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4"
               "jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhD"
               "pbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0=")
    assert crypto.signature("1411525903", "461056294", encrypt) == "74d92dfeb87ba7c714f89d98870ae5eb62dff26d"
    message = parse_message(crypto.decrypt(encrypt))
    assert (message.content, message.source, message.id) == ("test", "messense", 4363689963896700987)


def test_wechatpy_published_vector_encrypts_byte_for_byte():
    # wechatpy tests/test_crypto.py test_encrypt_message: the random prefix fixed to 1234567890123456.
    reply = ("<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n"
             "<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n<ToUserName><![CDATA[messense]]></ToUserName>\n"
             "<AgentID>1</AgentID>\n<CreateTime>1411525903</CreateTime>\n</xml>")
    crypto = MessageCrypto(WECHATPY_TOKEN, WECHATPY_KEY, WECHATPY_APPID)
    encrypt = crypto.encrypt(reply, random_prefix=b"1234567890123456")
    assert encrypt == (
        "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURn"
        "AtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oy"
        "KQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkd"
        "Q39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3")
    assert crypto.signature("1411525903", "461056294", encrypt) == "407518b7649e86ef23978113f92d27afa9296533"
    assert crypto.decrypt(encrypt) == reply


def test_official_java_sample_vector_encrypts_byte_for_byte():
    # WXBizMsgCryptTest.testAesEncrypt (WECHAT.md §10 C): PKCS#7 with 32-byte blocks, IV = key[:16].
    crypto = MessageCrypto("pamtest", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wxb11529c136998cb6")
    encrypt = crypto.encrypt("我是中文abcd123", random_prefix=b"aaaabbbbccccdddd")
    assert encrypt == "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
    assert crypto.decrypt(encrypt) == "我是中文abcd123"


# --- 2. access_token: the legacy endpoint and stable_token (doc/service/api/base/…) -----------

def _legacy(sandbox, appid=OA_APPID, secret=OA_SECRET):
    return sandbox.get("/cgi-bin/token", params={"grant_type": "client_credential", "appid": appid,
                                                  "secret": secret}).json()


def _stable(sandbox, force=None, appid=OA_APPID, secret=OA_SECRET):
    body = {"grant_type": "client_credential", "appid": appid, "secret": secret}
    if force is not None:
        body["force_refresh"] = force
    return sandbox.post("/cgi-bin/stable_token", json=body).json()


def _works(sandbox, token) -> int:
    """0 when the token is accepted, else the errcode."""
    answer = sandbox.get("/cgi-bin/tags/get", params={"access_token": token}).json()
    return answer.get("errcode", 0)


def _advance(sandbox, seconds):
    sandbox.post("/clock", json={"advance": seconds})


def test_stable_token_is_the_same_while_valid_and_counts_down(sandbox):
    first = _stable(sandbox)
    assert first["expires_in"] == 7200
    _advance(sandbox, 1000)
    again = _stable(sandbox, force=False)
    assert again["access_token"] == first["access_token"] and 6190 <= again["expires_in"] <= 6200


def test_stable_and_legacy_tokens_do_not_touch_each_other(sandbox):
    stable = _stable(sandbox)["access_token"]
    legacy = _legacy(sandbox)["access_token"]
    _legacy(sandbox)                       # a new legacy token retires the previous legacy one ...
    _stable(sandbox)                       # ... while stable calls retire nothing
    _advance(sandbox, 301)
    assert _works(sandbox, legacy) == 40001
    assert _works(sandbox, stable) == 0


def test_stable_token_is_renewed_in_its_last_five_minutes_and_the_old_one_lives_to_its_end(sandbox):
    old = _stable(sandbox)["access_token"]
    _advance(sandbox, 7200 - 299)
    renewed = _stable(sandbox)
    assert renewed["access_token"] != old and renewed["expires_in"] == 7200
    assert _works(sandbox, old) == 0       # both valid during the hand-over
    _advance(sandbox, 300)
    assert _works(sandbox, old) != 0 and _works(sandbox, renewed["access_token"]) == 0


def test_any_stable_token_answer_lives_at_least_five_minutes(sandbox):
    _stable(sandbox)
    for step in (3000, 3000, 900, 250, 100):
        _advance(sandbox, step)
        assert _stable(sandbox)["expires_in"] >= 300


def test_force_refresh_kills_the_old_token_at_once_but_not_twice_within_30_seconds(sandbox):
    old = _stable(sandbox)["access_token"]
    forced = _stable(sandbox, force=True)["access_token"]
    assert forced != old and _works(sandbox, old) == 40001 and _works(sandbox, forced) == 0
    assert _stable(sandbox, force=True)["access_token"] == forced   # within 30 s: "不会刷新"
    _advance(sandbox, 30)
    assert _stable(sandbox, force=True)["access_token"] != forced


def test_force_refresh_is_limited_to_20_a_day(sandbox):
    for _ in range(20):
        assert "access_token" in _stable(sandbox, force=True)
        _advance(sandbox, 31)
    assert _stable(sandbox, force=True)["errcode"] == 45009
    assert "access_token" in _stable(sandbox)  # normal mode still answers


def test_stable_token_errors_are_the_documented_ones(sandbox):
    wrong = _stable(sandbox, secret="wrong")
    assert wrong["errcode"] == 40125 and wrong["errmsg"].startswith("invalid appsecret")
    assert _stable(sandbox, appid="wx_unknown")["errcode"] == 40013
    assert sandbox.post("/cgi-bin/stable_token", json={"appid": OA_APPID, "secret": OA_SECRET}).json()["errcode"] == 40002
    get = sandbox.get("/cgi-bin/stable_token")
    assert get.status_code == 200 and get.json()["errcode"] == 43002
    # Each account has its own: the mini-program's is another token.
    assert _stable(sandbox, appid=MP_APPID, secret=MP_SECRET)["access_token"] != _stable(sandbox)["access_token"]


def test_stable_token_minute_limit_is_45011(sandbox):
    sandbox.faults(minute_quota={"cgi-bin/stable_token": 2})
    assert "access_token" in _stable(sandbox) and "access_token" in _stable(sandbox)
    assert _stable(sandbox)["errcode"] == 45011


# --- 3. IP whitelist (40164) -------------------------------------------------------------------

def test_token_calls_from_outside_the_ip_whitelist_get_40164_in_wechats_words(sandbox):
    sandbox.faults(ip_whitelist=["203.0.113.7"])
    for answer in (_legacy(sandbox), _stable(sandbox)):
        assert answer["errcode"] == 40164
        assert re.fullmatch(r"invalid ip 127\.0\.0\.1 ipv6 ::ffff:127\.0\.0\.1, not in whitelist rid: \S+",
                            answer["errmsg"])
    sandbox.faults(ip_whitelist=["203.0.113.7", "127.0.0.1"])
    assert "access_token" in _stable(sandbox)
    sandbox.faults(ip_whitelist=None)
    assert "access_token" in _legacy(sandbox)


def test_the_whitelist_does_not_hide_a_wrong_secret(sandbox):
    sandbox.faults(ip_whitelist=["203.0.113.7"])
    assert _stable(sandbox, secret="wrong")["errcode"] == 40125


# --- 4. Web authorisation: redirect_uri domain (10003) and state --------------------------------

def _authorize(sandbox, user, redirect_uri="https://heat.example.com/dashboard/oauth", state="abc123"):
    return sandbox.get("/connect/oauth2/authorize", allow_redirects=False, params={
        "appid": OA_APPID, "redirect_uri": redirect_uri, "response_type": "code", "scope": "snsapi_base",
        "state": state, "sandbox_openid": user["openid"]})


@pytest.mark.parametrize("redirect_uri", [
    "https://evil.example.net/dashboard/oauth",   # another domain
    "https://example.com/dashboard/oauth",        # the parent domain
    "https://www.heat.example.com/oauth",         # a sub-domain: the configured name is a full host name
    "javascript:alert(1)",
    "/dashboard/oauth",
])
def test_a_redirect_uri_off_the_web_authorisation_domain_gets_10003(sandbox, redirect_uri):
    user = sandbox.create_user()
    answer = _authorize(sandbox, user, redirect_uri)
    assert answer.status_code != 302
    assert "redirect_uri域名与后台配置不一致" in answer.text and "10003" in answer.text


def test_a_redirect_uri_on_the_domain_comes_back_with_code_and_state(sandbox):
    user = sandbox.create_user()
    answer = _authorize(sandbox, user, "http://heat.example.com:8080/p?x=1")  # any path, scheme or port
    assert answer.status_code == 302
    back = urlsplit(answer.headers["Location"])
    query = parse_qs(back.query)
    assert (back.netloc, back.path, query["x"], query["state"]) == ("heat.example.com:8080", "/p", ["1"], ["abc123"])
    assert query["code"][0]


def test_a_domain_setting_with_a_port_needs_that_port(sandbox):
    sandbox.faults(oauth_domain="heat.example.com:8443")
    user = sandbox.create_user()
    assert _authorize(sandbox, user, "https://heat.example.com:8443/o").status_code == 302
    assert _authorize(sandbox, user, "https://heat.example.com/o").status_code == 400


@pytest.mark.parametrize("state,ok", [
    ("", True), ("a" * 128, True), ("AZaz09", True),
    ("a" * 129, False), ("abc-def", False), ("abc_def", False), ("中文", False), ("a b", False),
])
def test_state_must_be_a_to_z_and_digits_at_most_128(sandbox, state, ok):
    user = sandbox.create_user()
    answer = _authorize(sandbox, user, state=state)
    assert (answer.status_code == 302) is ok
    if not ok:
        assert "state" in answer.text


# --- 5. Passive replies (doc/service/guide/…/Passive_user_reply_message) ------------------------

def _answer_with(render):
    def answer(received):
        return 200, render(parse_message(received.body.decode())).encode()
    return answer


def _news(message, count):
    reply = ArticlesReply(message=message)
    for n in range(count):
        reply.add_article({"title": f"停热通知{n}", "description": "和平小区", "image": "", "url": "https://heat.example.com/o"})
    return reply.render()


def _send(sandbox, user, **message):
    return sandbox.post(f"/users/{user['openid']}/messages", json=message).json()


def test_a_reply_must_come_from_the_accounts_original_id(sandbox, backend):
    backend.answer = _answer_with(lambda m: create_reply("您好", m).render().replace(m.target, "gh_someone_else"))
    user = sandbox.create_user()
    result = _send(sandbox, user, type="text", content="你好")
    assert result["ok"] is False and result["user_sees"] == FAILURE
    assert "FromUserName" in result["error"]
    assert [m["kind"] for m in sandbox.inbox(user["openid"], both=True) if m["direction"] != "in"] == ["error"]


def test_a_reply_must_go_to_the_sender(sandbox, backend):
    backend.answer = _answer_with(lambda m: create_reply("您好", m).render().replace(m.source, "o" + "x" * 27))
    user = sandbox.create_user()
    result = _send(sandbox, user, type="text", content="你好")
    assert result["ok"] is False and "ToUserName" in result["error"]


def test_a_news_reply_to_a_user_message_carries_one_article(sandbox, backend):
    user = sandbox.create_user()
    backend.answer = _answer_with(lambda m: _news(m, 1))
    assert _send(sandbox, user, type="text", content="停热")["ok"] is True
    backend.answer = _answer_with(lambda m: _news(m, 2))
    result = _send(sandbox, user, type="text", content="停热")
    assert result["ok"] is False and result["user_sees"] == FAILURE and "allows 1" in result["error"]


def test_a_news_reply_to_an_event_may_carry_eight_articles(sandbox, backend):
    user = sandbox.create_user()
    backend.answer = _answer_with(lambda m: _news(m, 8))
    assert _send(sandbox, user, type="event", event="CLICK", key="MENU_OUTAGE")["ok"] is True
    backend.answer = _answer_with(lambda m: _news(m, 9))
    assert _send(sandbox, user, type="event", event="CLICK", key="MENU_OUTAGE")["ok"] is False


# --- 6. Text links to the mini-program (customer-service text, passive text) ---------------------

def _link(appid=None):
    attrs = f' data-miniprogram-appid="{appid}"' if appid else ""
    return f'请<a href="https://mp.weixin.qq.com"{attrs} data-miniprogram-path="pages/repair/new">打开报修页面</a>'


def test_a_mini_program_link_without_appid_is_flagged_not_refused(sandbox, backend):
    user = sandbox.create_user()
    backend.answer = _answer_with(lambda m: create_reply(_link(), m).render())
    result = _send(sandbox, user, type="text", content="报修")
    assert result["ok"] is True and "no data-miniprogram-appid" in result["flags"][0]
    passive = [m for m in sandbox.inbox(user["openid"]) if m["kind"] == "passive"][0]
    assert passive["flags"] == result["flags"]
    backend.answer = _answer_with(lambda m: create_reply(_link("wx_some_other_app"), m).render())
    assert "not the mini-program bound" in _send(sandbox, user, type="text", content="报修")["flags"][0]
    backend.answer = _answer_with(lambda m: create_reply(_link(MP_APPID), m).render())
    assert "flags" not in _send(sandbox, user, type="text", content="报修")


def test_a_customer_service_text_link_without_appid_is_sent_but_flagged(sandbox, oa_client):
    user = sandbox.create_user()
    _send(sandbox, user, type="text", content="在吗")  # opens the 48-hour window
    assert oa_client.message.send_text(user["openid"], _link())["errcode"] == 0
    sent = [m for m in sandbox.inbox(user["openid"]) if m["kind"] == "custom"][-1]
    assert "no data-miniprogram-appid" in sent["flags"][0]
    oa_client.message.send_text(user["openid"], _link(MP_APPID))
    assert "flags" not in [m for m in sandbox.inbox(user["openid"]) if m["kind"] == "custom"][-1]


def test_a_customer_service_news_message_carries_one_article_else_45008(sandbox, oa_client):
    from wechatpy.exceptions import WeChatClientException

    user = sandbox.create_user()
    _send(sandbox, user, type="text", content="在吗")
    article = {"title": "停热通知", "description": "和平小区", "url": "https://heat.example.com/o", "image": ""}
    oa_client.message.send_articles(user["openid"], [article])
    with pytest.raises(WeChatClientException) as refused:
        oa_client.message.send_articles(user["openid"], [article, article])
    assert refused.value.errcode == 45008


# --- 7. Subscription-notice events: the documented XML -----------------------------------------

# doc/service/guide/product/subscription_messages/push (用户操作订阅通知弹窗), verbatim.
DOC_POPUP_SAMPLE = """<xml>
    <ToUserName><![CDATA[gh_123456789abc]]></ToUserName>
    <FromUserName><![CDATA[otFpruAK8D-E6EfStSYonYSBZ8_4]]></FromUserName>
    <CreateTime>1610969440</CreateTime>
    <MsgType><![CDATA[event]]></MsgType>
    <Event><![CDATA[subscribe_msg_popup_event]]></Event>
    <SubscribeMsgPopupEvent>
        <List>
            <TemplateId><![CDATA[VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc]]></TemplateId>
            <SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString>
            <PopupScene>2</PopupScene>
        </List>
        <List>
            <TemplateId><![CDATA[9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI]]></TemplateId>
            <SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString>
            <PopupScene>2</PopupScene>
        </List>
    </SubscribeMsgPopupEvent>
</xml>"""


def _shape(xml: str):
    """Element names in order, nested, with whether each leaf's text is a bare number."""
    def walk(element):
        children = list(element)
        if not children:
            return element.tag, (element.text or "").strip().isdigit()
        return element.tag, [walk(child) for child in children]
    return walk(ElementTree.fromstring(xml.encode()))


def test_the_popup_event_the_sandbox_pushes_has_the_documented_shape(sandbox, backend):
    user = sandbox.create_user()
    _send(sandbox, user, type="event", event="subscribe_msg_popup_event",
          templates=[{"template_id": "T1", "status": "accept"}, {"template_id": "T2", "status": "reject"}])
    pushed = backend.wait_for(lambda r: b"subscribe_msg_popup_event" in r.body).body.decode()
    assert _shape(pushed) == _shape(DOC_POPUP_SAMPLE)
    assert "<PopupScene>2</PopupScene>" in pushed  # a bare number, as documented


def test_wechatpy_reads_these_events_as_unknown_messages_and_ours_as_events():
    # wechatpy 1.8.18 has no class for them (trap 15); wechat.inbound registers them.
    import wechatpy.events

    registered = {name: wechatpy.events.EVENT_TYPES.pop(name) for name in
                  ("subscribe_msg_popup_event", "subscribe_msg_change_event", "subscribe_msg_sent_event")}
    try:
        assert isinstance(parse_message(DOC_POPUP_SAMPLE), UnknownMessage)
    finally:
        wechatpy.events.EVENT_TYPES.update(registered)
    event = parse_inbound(DOC_POPUP_SAMPLE)
    assert (event.type, event.event) == ("event", "subscribe_msg_popup_event")
    assert [(i["TemplateId"][:4], i["SubscribeStatusString"]) for i in event.items] == [("VRR0", "accept"), ("9nLI", "reject")]
    one = DOC_POPUP_SAMPLE.split("<List>")[0] + "<List>" + DOC_POPUP_SAMPLE.split("<List>")[1].split("</List>")[0] \
        + "</List></SubscribeMsgPopupEvent></xml>"
    assert len(parse_inbound(one).items) == 1  # xmltodict gives a dict for one <List>


def test_the_change_event_uses_its_own_wrapper_and_only_reject(sandbox, backend):
    user = sandbox.create_user()
    _send(sandbox, user, type="event", event="subscribe_msg_change_event", templates=[{"template_id": "T1"}])
    pushed = backend.wait_for(lambda r: b"subscribe_msg_change_event" in r.body).body.decode()
    assert "<SubscribeMsgChangeEvent><List>" in pushed and "<PopupScene>" not in pushed
    assert parse_inbound(pushed).items == [{"TemplateId": "T1", "SubscribeStatusString": "reject"}]
    refused = sandbox.post(f"/users/{user['openid']}/messages", json={
        "type": "event", "event": "subscribe_msg_change_event", "templates": [{"template_id": "T1", "status": "accept"}]})
    assert refused.status_code == 400


def test_the_sent_event_after_a_subscription_notice_has_bare_number_fields(sandbox, backend, oa_client):
    user = sandbox.create_user()
    sandbox.post(f"/users/{user['openid']}/consent", json={"template_id": "T_OA", "scene": "oa"})
    oa_client.message.send_subscribe_message(user["openid"], "T_OA", {"thing1": {"value": "停热通知"}})
    pushed = backend.wait_for(lambda r: b"subscribe_msg_sent_event" in r.body).body.decode()
    assert re.search(r"<SubscribeMsgSentEvent><List><TemplateId><!\[CDATA\[T_OA\]\]></TemplateId><MsgID>\d+</MsgID>"
                     r"<ErrorCode>0</ErrorCode><ErrorStatus><!\[CDATA\[success\]\]></ErrorStatus></List>", pushed)
    # Without a consent WeChat refuses the notice (43101) and pushes nothing.
    from wechatpy.exceptions import WeChatClientException

    with pytest.raises(WeChatClientException) as refused:
        oa_client.message.send_subscribe_message(user["openid"], "T_OA", {"thing1": {"value": "停热通知"}})
    assert refused.value.errcode == 43101
