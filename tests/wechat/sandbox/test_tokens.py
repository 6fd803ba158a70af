"""access_token: the 5-minute overlap, 7200 s expiry, and wechatpy's refresh on 40001/42001."""
import pytest
import requests
from wechatpy.exceptions import WeChatClientException

from .conftest import OA_APPID, OA_SECRET


def _token(sandbox, secret=OA_SECRET):
    return sandbox.get("/cgi-bin/token", params={
        "grant_type": "client_credential", "appid": OA_APPID, "secret": secret}).json()


def _user_info(sandbox, token, openid):
    return sandbox.get("/cgi-bin/user/info", params={"access_token": token, "openid": openid}).json()


def test_wrong_secret_is_http_200_with_errcode_40001(sandbox):
    response = sandbox.get("/cgi-bin/token", params={
        "grant_type": "client_credential", "appid": OA_APPID, "secret": "wrong"})
    assert response.status_code == 200
    assert response.json()["errcode"] == 40001
    assert " rid: " in response.json()["errmsg"]


def test_new_token_retires_previous_one_after_five_minutes(sandbox):
    user = sandbox.create_user()
    first = _token(sandbox)["access_token"]
    second = _token(sandbox)["access_token"]
    assert first != second
    assert _user_info(sandbox, first, user["openid"])["subscribe"] == 1  # overlap: both work

    sandbox.post("/clock", json={"advance": 301})

    assert _user_info(sandbox, first, user["openid"])["errcode"] == 40001
    assert _user_info(sandbox, second, user["openid"])["subscribe"] == 1


def test_token_expires_after_7200_seconds_with_42001(sandbox):
    user = sandbox.create_user()
    answer = _token(sandbox)
    assert answer["expires_in"] == 7200
    sandbox.post("/clock", json={"advance": 7200})
    assert _user_info(sandbox, answer["access_token"], user["openid"])["errcode"] == 42001


def test_wechatpy_refetches_after_expiry_and_succeeds(sandbox, oa_client):
    user = sandbox.create_user()
    assert oa_client.user.get(user["openid"])["subscribe"] == 1
    old = oa_client.access_token
    sandbox.post("/clock", json={"advance": 7300})
    # wechatpy still believes its token is fresh; the sandbox answers 42001 and it refetches
    oa_client.session.set(f"{OA_APPID}_access_token", old, 7200)
    oa_client.expires_at = None
    assert oa_client.user.get(user["openid"])["subscribe"] == 1
    assert oa_client.access_token != old


def test_missing_token_is_41001(sandbox):
    response = requests.get(sandbox.base + "/cgi-bin/user/info", params={"openid": "x"}, timeout=5)
    assert response.json()["errcode"] == 41001


def test_mini_program_token_cannot_call_official_account_api(sandbox, mp_client):
    user = sandbox.create_user()
    with pytest.raises(WeChatClientException) as error:
        mp_client.message.send_text(user["openid"], "hi")
    assert error.value.errcode == 48001


def test_stable_token_returns_same_token_until_forced(sandbox):
    body = {"grant_type": "client_credential", "appid": OA_APPID, "secret": OA_SECRET}
    first = sandbox.post("/cgi-bin/stable_token", json=body).json()["access_token"]
    again = sandbox.post("/cgi-bin/stable_token", json=body).json()["access_token"]
    forced = sandbox.post("/cgi-bin/stable_token", json={**body, "force_refresh": True}).json()["access_token"]
    assert first == again != forced

