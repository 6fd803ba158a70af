"""Media, QR codes, OAuth2, followers, tags and the menu, through the real wechatpy client."""
import io
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from wechatpy.exceptions import WeChatClientException
from wechatpy.oauth import WeChatOAuth

from .conftest import OA_APPID, OA_SECRET


def test_uploaded_media_downloads_with_same_bytes_until_three_days(sandbox, oa_client):
    data = b"\xff\xd8\xff\xe0" + b"jpeg" * 100
    media_id = oa_client.media.upload("image", ("photo.jpg", io.BytesIO(data), "image/jpeg"))["media_id"]
    assert oa_client.media.download(media_id).content == data

    sandbox.post("/clock", json={"advance": 3 * 86400 + 1})
    with pytest.raises(WeChatClientException) as error:
        oa_client.media.download(media_id)
    assert error.value.errcode == 40007


def test_temporary_qr_code_is_created_and_shown(sandbox, oa_client):
    result = oa_client.qrcode.create({"expire_seconds": 600, "action_name": "QR_SCENE",
                                      "action_info": {"scene": {"scene_id": 1001}}})
    assert result["expire_seconds"] == 600 and result["url"].startswith("http://weixin.qq.com/q/")
    image = requests.get(sandbox.base + "/cgi-bin/showqrcode", params={"ticket": result["ticket"]}, timeout=5)
    assert image.headers["Content-Type"] == "image/jpeg" and image.content[:2] == b"\xff\xd8"


def test_permanent_qr_scene_id_over_100000_is_refused(sandbox, oa_client):
    with pytest.raises(WeChatClientException):
        oa_client.qrcode.create({"action_name": "QR_LIMIT_SCENE", "action_info": {"scene": {"scene_id": 100001}}})


def test_oauth_code_exchanges_once_for_openid_and_userinfo(sandbox):
    user = sandbox.create_user()

    class SandboxOAuth(WeChatOAuth):
        API_BASE_URL = sandbox.base + "/"
        OAUTH_BASE_URL = sandbox.base + "/connect/"

    oauth = SandboxOAuth(OA_APPID, OA_SECRET, "http://h5.example/bind", scope="snsapi_userinfo", state="s1")
    consent = requests.get(oauth.authorize_url.split("#")[0] + f"&sandbox_openid={user['openid']}",
                           allow_redirects=False, timeout=5)
    assert consent.status_code == 302
    query = parse_qs(urlparse(consent.headers["Location"]).query)
    assert query["state"] == ["s1"]
    token = oauth.fetch_access_token(query["code"][0])
    assert token["openid"] == user["openid"] and token["unionid"] == user["unionid"]
    assert oauth.get_user_info()["nickname"] == user["nickname"]
    with pytest.raises(Exception):
        oauth.fetch_access_token(query["code"][0])


def test_followers_and_batch_user_info(sandbox, oa_client):
    a, b = sandbox.create_user(), sandbox.create_user()
    sandbox.create_user(follow=False)
    followers = oa_client.user.get_followers()
    assert followers["total"] == 2 and set(followers["data"]["openid"]) == {a["openid"], b["openid"]}
    infos = oa_client.user.get_batch([a["openid"], b["openid"]])
    assert {i["unionid"] for i in infos} == {a["unionid"], b["unionid"]}


def test_unfollowed_user_info_has_no_profile(sandbox, oa_client):
    user = sandbox.create_user(follow=False)
    assert oa_client.user.get(user["openid"]) == {"subscribe": 0, "openid": user["openid"], "unionid": user["unionid"]}


def test_duplicate_tag_name_is_45157(sandbox, oa_client):
    oa_client.tag.create("二号站")
    with pytest.raises(WeChatClientException) as error:
        oa_client.tag.create("二号站")
    assert error.value.errcode == 45157


def test_menu_created_is_returned(sandbox, oa_client):
    menu = {"button": [{"type": "click", "name": "报修", "key": "REPAIR"}]}
    oa_client.menu.create(menu)
    assert oa_client.menu.get()["menu"] == menu


def test_page_is_chinese_html_without_external_assets(sandbox):
    response = sandbox.get("/")
    assert response.headers["Content-Type"].startswith("text/html")
    assert "模拟用户" in response.text
    assert "http://" not in response.text and "https://" not in response.text
