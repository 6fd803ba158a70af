"""The official account's menu: the pages as view buttons, within WeChat's limits, set on the
account by `flask wechat sync-menu` and in the sandbox by `flask wechat register-demo`."""
from urllib.parse import urlsplit

import pytest
import requests

from wechat import client as wechat_client
from wechat.cli import menu_definition, menu_problems


def _menu(wechat, app) -> dict:
    token = requests.get(f"{wechat.base}/cgi-bin/token", params={
        "grant_type": "client_credential", "appid": app.config["WECHAT_APPID"],
        "secret": app.config["WECHAT_SECRET"]}, timeout=5).json()["access_token"]
    return requests.get(f"{wechat.base}/cgi-bin/menu/get", params={"access_token": token}, timeout=5).json()["menu"]


def _leaves(menu: dict) -> dict:
    return {b["name"]: b for top in menu["button"] for b in (top.get("sub_button") or [top])}


def test_sync_menu_points_the_buttons_at_the_pages(db, wechat, runner, app):
    result = runner.invoke(args=["wechat", "sync-menu"])
    assert result.exit_code == 0, result.output
    menu = _menu(wechat, app)
    assert len(menu["button"]) <= 3 and all(len(b.get("sub_button") or []) <= 5 for b in menu["button"])
    base = app.config["PUBLIC_BASE_URL"]
    leaves = _leaves(menu)
    views = {name: b["url"] for name, b in leaves.items() if b["type"] == "view"}
    assert views["缴费"] == f"{base}/pay"
    assert views["在线报修"] == f"{base}/report"
    assert views["我的工单"] == f"{base}/t"
    assert views["我的户号"] == f"{base}/me"
    mini = leaves["小程序报修"]
    assert (mini["type"], mini["appid"], mini["pagepath"]) == ("miniprogram", app.config["MINIAPP_APPID"],
                                                            "pages/repair/new")
    assert mini["url"].startswith(base)   # what old clients open instead: a page, not a dead end
    assert leaves["联系客服"] == {"type": "click", "name": "联系客服", "key": "MENU_SERVICE"}


def test_every_view_button_opens_one_of_our_pages(db, app, client):
    """Each page asks WeChat's browser to sign in (and so is a page, not a 404)."""
    for button in _leaves(menu_definition_in(app)).values():
        url = button.get("url")
        if not url:
            continue
        path = urlsplit(url).path
        res = client.get(path)
        assert res.status_code == 302 and res.location.startswith("/h5/login"), (button["name"], res.status_code)


def menu_definition_in(app) -> dict:
    with app.test_request_context():
        return menu_definition()


def test_the_menu_keeps_wechats_limits(app):
    menu = menu_definition_in(app)
    assert menu_problems(menu) == []
    for top in menu["button"]:
        assert len(top["name"].encode()) <= 16
        for sub in top.get("sub_button") or []:
            assert len(sub["name"].encode()) <= 60
    too_long = {"button": [{"type": "view", "name": "缴费查询与电子发票", "url": "https://x"}] * 4}
    problems = menu_problems(too_long)
    assert any("1到3个" in p for p in problems) and any("16字节" in p for p in problems)


@pytest.mark.parametrize(("menu", "errcode"), [
    ({"button": [{"type": "view", "name": "缴费查询与电子发票", "url": "https://x"}]}, 40018),
    ({"button": [{"name": "报修", "sub_button": [{"type": "view", "name": "在" * 21, "url": "https://x"}]}]}, 40025),
    ({"button": [{"type": "view", "name": "缴费"}]}, 40017),
    ({"button": [{"name": "我的", "sub_button": [{"type": "click", "name": "客服", "key": "k" * 129}]}]}, 40026),
    ({"button": [{"type": "click", "name": "a", "key": "A"}] * 4}, 40016),
])
def test_the_sandbox_refuses_menus_wechat_refuses(db, wechat, app, menu, errcode):
    with pytest.raises(Exception) as refused:
        wechat_client.official_account().menu.create(menu)
    assert getattr(refused.value, "errcode", None) == errcode


def test_register_demo_sets_the_same_menu_in_the_sandbox(db, wechat, runner, app):
    result = runner.invoke(args=["wechat", "register-demo"])
    assert result.exit_code == 0, result.output
    assert _menu(wechat, app) == menu_definition_in(app)


def test_menu_clicks_answer_like_the_commands(db, wechat):
    person = wechat.create_user()
    reply = wechat.send(person["openid"], type="event", event="CLICK", key="MENU_BILL")["reply"]["Content"]
    assert "绑定" in reply  # not bound yet: explains how
