"""Switchable faults: injected once means returned once, quotas per day, busy, slow answers."""
import time

import pytest
import requests
from wechatpy.exceptions import APILimitedException, WeChatClientException


def _errcode(call):
    with pytest.raises(WeChatClientException) as error:
        call()
    return error.value.errcode


def test_fault_injected_once_is_returned_once_as_http_200(sandbox, oa_client):
    user = sandbox.create_user()
    oa_client.user.get(user["openid"])  # fetch the token first
    sandbox.faults(errcode=45009, times=1, api="user/info")
    token = oa_client.access_token
    first = requests.get(sandbox.base + "/cgi-bin/user/info", params={"access_token": token, "openid": user["openid"]})
    second = requests.get(sandbox.base + "/cgi-bin/user/info", params={"access_token": token, "openid": user["openid"]})
    assert first.status_code == 200 and first.json()["errcode"] == 45009
    assert second.json()["subscribe"] == 1
    assert sandbox.get("/faults").json()["injected"] == []


def test_injected_40001_once_lets_wechatpy_refresh_and_succeed(sandbox, oa_client):
    user = sandbox.create_user()
    oa_client.user.get(user["openid"])
    old = oa_client.access_token
    sandbox.faults(token_invalid=40001, times=1)
    assert oa_client.user.get(user["openid"])["subscribe"] == 1
    assert oa_client.access_token != old


def test_daily_quota_gives_45009_after_the_quota(sandbox, oa_client):
    user = sandbox.create_user()
    sandbox.faults(daily_quota={"message/template/send": 2})
    send = lambda: oa_client.message.send_template(user["openid"], "TPL", {"thing1": {"value": "v"}})
    send()
    send()
    with pytest.raises(APILimitedException) as error:
        send()
    assert error.value.errcode == 45009


def test_daily_quota_resets_at_beijing_midnight(sandbox, oa_client):
    user = sandbox.create_user()
    sandbox.faults(daily_quota={"user/info": 1})
    oa_client.user.get(user["openid"])
    assert _errcode(lambda: oa_client.user.get(user["openid"])) == 45009
    now = sandbox.get("/clock").json()["now"]
    seconds_to_midnight = 86400 - (now + 8 * 3600) % 86400
    sandbox.post("/clock", json={"advance": seconds_to_midnight + 1})
    assert oa_client.user.get(user["openid"])["subscribe"] == 1


def test_token_fetch_quota_is_2000_a_day(sandbox):
    from wechat.sandbox.faults import DAILY_QUOTAS

    assert DAILY_QUOTAS["cgi-bin/token"] == 2000
    sandbox.faults(daily_quota={"cgi-bin/token": 1})
    params = {"grant_type": "client_credential", "appid": "wx_test_oa", "secret": "test-oa-secret"}
    assert "access_token" in sandbox.get("/cgi-bin/token", params=params).json()
    assert sandbox.get("/cgi-bin/token", params=params).json()["errcode"] == 45009


def test_per_minute_limit_gives_45011(sandbox, oa_client):
    user = sandbox.create_user()
    sandbox.faults(rate_limit_per_minute=2)
    oa_client.user.get(user["openid"])
    oa_client.user.get(user["openid"])
    assert _errcode(lambda: oa_client.user.get(user["openid"])) == 45011


def test_busy_returns_minus_one_for_the_next_n_calls(sandbox, oa_client):
    user = sandbox.create_user()
    oa_client.user.get(user["openid"])
    sandbox.faults(busy=2)
    assert _errcode(lambda: oa_client.user.get(user["openid"])) == -1
    assert _errcode(lambda: oa_client.user.get(user["openid"])) == -1
    assert oa_client.user.get(user["openid"])["subscribe"] == 1


def test_slow_answer_beyond_client_timeout(sandbox):
    sandbox.faults(delay=1.5, times=1, api="cgi-bin/token")
    params = {"grant_type": "client_credential", "appid": "wx_test_oa", "secret": "test-oa-secret"}
    with pytest.raises(requests.Timeout):
        requests.get(sandbox.base + "/cgi-bin/token", params=params, timeout=0.5)
    time.sleep(1.2)
    assert "access_token" in requests.get(sandbox.base + "/cgi-bin/token", params=params, timeout=2).json()


def test_delete_clears_faults(sandbox, oa_client):
    user = sandbox.create_user()
    oa_client.user.get(user["openid"])
    sandbox.faults(busy=5, window_closed=True)
    assert requests.delete(sandbox.base + "/faults").json()["injected"] == []
    assert oa_client.user.get(user["openid"])["subscribe"] == 1
