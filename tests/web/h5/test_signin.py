"""Signing in to the official account's pages with WeChat's web authorisation (sandbox OAuth)."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import requests

from app.models import ApiSession, HouseholdBinding, WechatUser


def test_a_page_opened_without_sign_in_goes_through_wechat_and_back_to_the_same_page(h5, db):
    me = h5.resident("王芳")
    first = me.client.get("/me?tab=1")
    assert first.status_code == 302 and first.location.startswith("/h5/login")
    start = me.client.get(first.location)
    authorize = urlsplit(start.location)
    query = parse_qs(authorize.query)
    assert query["scope"] == ["snsapi_base"] and query["redirect_uri"][0].endswith("/h5/oauth")
    back = me.client.get(me.consent(start))
    assert back.status_code == 302 and back.location == "/me?tab=1"
    page = me.client.get(back.location)
    assert page.status_code == 200 and "我绑定的户" in page.get_data(as_text=True)
    assert db.session.query(WechatUser).filter_by(oa_openid=me.openid).count() == 1


def test_the_openid_is_the_same_person_as_in_the_chat(h5, db, make_household, make_wechat_user):
    me = h5.resident("刘秀英")
    household = make_household(owner_name="刘秀英")
    user = make_wechat_user(oa_openid=me.openid, household=household)
    db.session.commit()
    page = me.open("/me")
    assert household.account_no in page.get_data(as_text=True)
    assert db.session.query(WechatUser).count() == 1


def test_a_forged_code_shows_a_page_and_signs_nobody_in(h5, db):
    me = h5.resident()
    start = me.client.get(f"/h5/login?next=/me&sandbox_openid={me.openid}")
    state = parse_qs(urlsplit(start.location).query)["state"][0]
    res = me.client.get(f"/h5/oauth?code=forged0123456789&state={state}")
    html = res.get_data(as_text=True)
    assert res.status_code == 400 and "text/html" in res.content_type
    assert "授权码无效或已过期" in html and "重新打开" in html
    assert db.session.query(ApiSession).count() == 0 and db.session.query(WechatUser).count() == 0
    assert me.client.get("/me").status_code == 302   # still not signed in


def test_a_used_code_cannot_sign_in_twice(h5, db):
    me = h5.resident()
    start = me.client.get(f"/h5/login?next=/me&sandbox_openid={me.openid}")
    callback = me.consent(start)
    assert me.client.get(callback).status_code == 302
    other = h5.app.test_client()
    # Someone replaying the callback URL (its state is not in their cookie, nor the code unused).
    assert other.get(callback).status_code == 400
    assert db.session.query(ApiSession).count() == 1


def test_a_code_for_another_state_is_refused(h5, db):
    me = h5.resident()
    start = me.client.get(f"/h5/login?next=/me&sandbox_openid={me.openid}")
    callback = me.consent(start)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    res = me.client.get(f"/h5/oauth?code={code}&state=deadbeef")
    assert res.status_code == 400 and "授权已失效" in res.get_data(as_text=True)
    assert db.session.query(ApiSession).count() == 0


def test_next_is_only_ever_a_path_on_this_site(h5):
    me = h5.resident()
    res = me.sign_in(next_path="//evil.example/x")
    assert res.status_code == 302 and res.location == "/me"


def test_a_post_without_the_csrf_token_is_refused_with_a_page(h5, db):
    me = h5.resident()
    me.sign_in()
    res = me.client.post("/me/bind", data={"account_no": "R1", "owner_name": "张伟"})
    assert res.status_code == 400 and "安全校验失败" in res.get_data(as_text=True)
    assert db.session.query(HouseholdBinding).count() == 0


def test_the_domain_verification_file_is_served_from_settings(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "WECHAT_MP_VERIFY_CODE", "AbC123xyz")
    res = client.get("/MP_verify_AbC123xyz.txt")
    assert res.status_code == 200 and res.get_data(as_text=True) == "AbC123xyz"
    assert res.content_type.startswith("text/plain")
    assert client.get("/MP_verify_other1.txt").status_code == 404
    monkeypatch.setitem(app.config, "WECHAT_MP_VERIFY_CODE", None)
    assert client.get("/MP_verify_AbC123xyz.txt").status_code == 404


def test_the_verification_setting_takes_the_file_name_or_the_code(monkeypatch):
    from app.config import ConfigError, load_config
    import pytest

    for value in ("MP_verify_Q1w2E3.txt", "Q1w2E3"):
        monkeypatch.setenv("WECHAT_MP_VERIFY_FILE", value)
        assert load_config("testing").WECHAT_MP_VERIFY_CODE == "Q1w2E3"
    monkeypatch.setenv("WECHAT_MP_VERIFY_FILE", "../etc/passwd")
    with pytest.raises(ConfigError):
        load_config("testing")
