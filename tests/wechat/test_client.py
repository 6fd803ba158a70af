"""Our WeChat client against the sandbox: the stable token, shared by every process, and
configuration errors (IP whitelist, credentials) reported as what to fix, not retried."""
import pytest
import requests

from wechat import client as wechat_client
from wechat.client import CONFIG_ERROR_HOLD, WeChatConfigError


def _user_info(wechat, token, openid):
    return requests.get(f"{wechat.base}/cgi-bin/user/info", timeout=10,
                        params={"access_token": token, "openid": openid}).json()


def _legacy_token(wechat, app):
    return requests.get(f"{wechat.base}/cgi-bin/token", timeout=10, params={
        "grant_type": "client_credential", "appid": app.config["WECHAT_APPID"],
        "secret": app.config["WECHAT_SECRET"]}).json()["access_token"]


def test_another_tool_fetching_a_legacy_token_does_not_kill_ours(app, db, wechat):
    person = wechat.create_user()
    ours = wechat_client.official_account().access_token
    # An admin console or a second deployment uses the same appid with /cgi-bin/token; each
    # of its fetches retires the previous legacy token five minutes later — not ours.
    for _ in range(2):
        _legacy_token(wechat, app)
    requests.post(f"{wechat.base}/clock", json={"advance": 301}, timeout=10)
    assert _user_info(wechat, ours, person["openid"])["subscribe"] == 1
    assert wechat_client.official_account().access_token == ours  # still the stored one, no fetch


def test_every_caller_of_the_stable_token_gets_the_same_one(app, db, wechat):
    ours = wechat_client.official_account().access_token
    theirs = requests.post(f"{wechat.base}/cgi-bin/stable_token", timeout=10, json={
        "grant_type": "client_credential", "appid": app.config["WECHAT_APPID"],
        "secret": app.config["WECHAT_SECRET"]}).json()
    assert theirs["access_token"] == ours and 300 < theirs["expires_in"] <= 7200


def test_the_mini_program_has_its_own_stable_token(db, wechat):
    oa, mp = wechat_client.official_account(), wechat_client.mini_program()
    assert oa.access_token != mp.access_token


def test_an_ip_outside_the_whitelist_is_a_configuration_error_held_not_retried(app, db, wechat, redis):
    wechat.faults(ip_whitelist=["203.0.113.7"])  # our 127.0.0.1 is not on it
    client = wechat_client.official_account()
    with pytest.raises(WeChatConfigError) as refused:
        client.access_token
    assert refused.value.errcode == 40164
    assert "IP白名单" in str(refused.value) and "not in whitelist" in refused.value.wechat_errmsg
    key = f"wechat:token-config-error:{app.config['WECHAT_APPID']}"
    assert 0 < redis.ttl(key) <= CONFIG_ERROR_HOLD
    # Even once the whitelist is fixed, every process gets the held error until it expires:
    # nobody hammers the token endpoint with calls that cannot succeed.
    wechat.faults(ip_whitelist=None)
    other = wechat_client.HeatingWeChatClient(app.config["WECHAT_APPID"], app.config["WECHAT_SECRET"],
                                              api_base=app.config["WECHAT_API_BASE"], redis=redis)
    with pytest.raises(WeChatConfigError):
        other.access_token
    redis.delete(key)  # the hold is over
    assert other.access_token


def test_a_wrong_secret_names_the_setting_to_fix(app, db, wechat, redis):
    client = wechat_client.HeatingWeChatClient(app.config["WECHAT_APPID"], "not-the-secret",
                                               api_base=app.config["WECHAT_API_BASE"], redis=redis)
    with pytest.raises(WeChatConfigError) as refused:
        client.access_token
    assert refused.value.errcode == 40125 and "WECHAT_SECRET" in str(refused.value)


def test_an_api_refusing_our_ip_is_a_configuration_error_too(db, wechat):
    person = wechat.create_user()
    client = wechat_client.official_account()
    client.access_token
    wechat.faults(errcode=40164, times=1, api="user/info")
    with pytest.raises(WeChatConfigError) as refused:
        client.user.get(person["openid"])
    assert refused.value.errcode == 40164
