"""GET /sandbox/users: all users by default; ?q, ?limit and ?order=recent let the sandbox
page find one person among the demo city's hundreds; bad values are refused with 400."""
import html
import re
from urllib.parse import parse_qs

import pytest

from .conftest import OA_APPID


def _register(sandbox, *nicknames):
    response = sandbox.post("/users", json={"users": [{"nickname": n} for n in nicknames]})
    assert response.status_code == 200 and response.json()["created"] == len(nicknames), response.text
    return {u["nickname"]: u for u in sandbox.get("/users").json()}


def _nicknames(response):
    assert response.status_code == 200, response.text
    return [u["nickname"] for u in response.json()]


def test_without_parameters_every_user_is_listed_by_creation(sandbox):
    _register(sandbox, "leader1", "crew1_m1", "张伟")
    assert _nicknames(sandbox.get("/users")) == ["leader1", "crew1_m1", "张伟"]


def test_q_matches_a_substring_of_the_nickname_ignoring_ascii_case(sandbox):
    _register(sandbox, "crew1_lead", "crew1_m1", "crew10_m1", "CREW2_M1", "张伟", "张伟民", "王芳")
    assert _nicknames(sandbox.get("/users", params={"q": "Crew1_M1"})) == ["crew1_m1"]
    assert _nicknames(sandbox.get("/users", params={"q": "cReW"})) == ["crew1_lead", "crew1_m1", "crew10_m1", "CREW2_M1"]
    assert _nicknames(sandbox.get("/users", params={"q": "张伟"})) == ["张伟", "张伟民"]
    assert _nicknames(sandbox.get("/users", params={"q": "nobody"})) == []


def test_q_treats_like_wildcards_literally(sandbox):
    _register(sandbox, "crew1_m1", "crew1xm1", "100%")
    assert _nicknames(sandbox.get("/users", params={"q": "1_m1"})) == ["crew1_m1"]
    assert _nicknames(sandbox.get("/users", params={"q": "%"})) == ["100%"]


def test_q_matches_either_openid(sandbox):
    users = _register(sandbox, "李先生", "王阿姨")
    wang = users["王阿姨"]
    assert _nicknames(sandbox.get("/users", params={"q": wang["oa_openid"][3:15]})) == ["王阿姨"]
    assert _nicknames(sandbox.get("/users", params={"q": wang["mp_openid"]})) == ["王阿姨"]


def test_limit_caps_the_answer(sandbox):
    _register(sandbox, *[f"resident{i}" for i in range(12)])
    assert _nicknames(sandbox.get("/users", params={"limit": 5})) == [f"resident{i}" for i in range(5)]
    assert len(sandbox.get("/users", params={"limit": 200}).json()) == 12
    assert _nicknames(sandbox.get("/users", params={"q": "resident1", "limit": 2})) == ["resident1", "resident10"]


def test_order_recent_puts_the_latest_conversation_first_then_the_rest_by_creation(sandbox, backend):
    users = _register(sandbox, "张一", "李二", "王三", "赵四", "刘五")
    for name in ("赵四", "李二"):
        result = sandbox.post(f"/users/{users[name]['openid']}/messages", json={"content": "暖气不热"})
        assert result.status_code == 200, result.text
    assert _nicknames(sandbox.get("/users", params={"order": "recent"})) == ["李二", "赵四", "张一", "王三", "刘五"]

    # What the backend sends counts too: a custom message to 刘五 makes it the most recent.
    sandbox.sandbox.record(users["刘五"]["openid"], "out", "custom", {"msgtype": "text", "content": "您好"})
    assert _nicknames(sandbox.get("/users", params={"order": "recent", "limit": 3})) == ["刘五", "李二", "赵四"]
    assert _nicknames(sandbox.get("/users", params={"order": "recent", "q": "王"})) == ["王三"]


def test_order_recent_counts_a_last_message_given_at_registration(sandbox):
    now = sandbox.get("/clock").json()["now"]
    sandbox.post("/users", json={"users": [
        {"nickname": "old"}, {"nickname": "talked", "last_message_at": now - 3600}, {"nickname": "new"}]})
    assert _nicknames(sandbox.get("/users", params={"order": "recent"})) == ["talked", "old", "new"]


@pytest.mark.parametrize("params", [
    {"limit": "0"}, {"limit": "201"}, {"limit": "-1"}, {"limit": "ten"}, {"limit": "1.5"}, {"limit": ""},
    {"order": "oldest"}, {"order": "RECENT"}, {"q": "x" * 65},
])
def test_bad_parameters_are_refused_with_a_json_400(sandbox, params):
    response = sandbox.get("/users", params=params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "400" and error["message"]


# --- the OAuth consent chooser (/connect/oauth2/authorize without sandbox_openid) ---------------

AUTHORIZE = {"appid": OA_APPID, "redirect_uri": "https://heat.example.com/dashboard/oauth?next=/d",
             "response_type": "code", "scope": "snsapi_base", "state": "xyz"}


def _choices(page: str) -> list[tuple[str, dict]]:
    found = re.findall(r'<li><a href="\?([^"]+)">([^<]+)</a>', page)
    return [(name, {k: v[0] for k, v in parse_qs(html.unescape(query)).items()}) for query, name in found]


def test_chooser_lists_at_most_50_users_staff_first_with_the_hint(sandbox):
    _register(sandbox, *[f"住户{i:03d}" for i in range(80)], "leader1", "crew1_m1", "Agent1")
    response = sandbox.get("/connect/oauth2/authorize", params=AUTHORIZE)
    assert response.status_code == 200
    assert "沙箱模拟：选择以哪位微信用户身份授权" in response.text
    choices = _choices(response.text)
    assert len(choices) == 50
    assert [name for name, _ in choices[:3]] == ["leader1", "crew1_m1", "Agent1"]
    assert "只显示前 50 位" in response.text


def test_chooser_search_keeps_the_authorize_parameters_and_consents_as_the_chosen_user(sandbox):
    users = _register(sandbox, *[f"住户{i:03d}" for i in range(60)], "crew1_lead", "crew1_m1")
    response = sandbox.get("/connect/oauth2/authorize", params={**AUTHORIZE, "q": "CREW1_M1"})
    # The search form resubmits every other parameter of the request.
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', response.text))
    assert {k: html.unescape(v) for k, v in hidden.items()} == AUTHORIZE
    assert 'name="q" value="CREW1_M1"' in response.text

    [(name, query)] = _choices(response.text)
    assert name == "crew1_m1"
    assert query == {**AUTHORIZE, "sandbox_openid": users["crew1_m1"]["openid"]}
    consent = sandbox.get("/connect/oauth2/authorize", params=query, allow_redirects=False)
    assert consent.status_code == 302
    assert consent.headers["Location"].startswith(AUTHORIZE["redirect_uri"] + "&code=")


def test_chooser_says_when_nobody_matches(sandbox):
    _register(sandbox, "张伟")
    response = sandbox.get("/connect/oauth2/authorize", params={**AUTHORIZE, "q": "<李>"})
    assert _choices(response.text) == []
    assert "没有昵称或 openid 含“&lt;李&gt;”的用户" in response.text
