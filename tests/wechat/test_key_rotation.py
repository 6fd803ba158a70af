"""Rotating the EncodingAESKey (WECHAT.md §1.2): the new key in WECHAT_AES_KEY, the one it
replaces in WECHAT_AES_KEY_PREVIOUS; messages under either are read, and each reply is
encrypted with the key that opened its message, so WeChat can read it during the switch."""
import pytest

from app import config as app_config
from tests.live import LiveServer, SandboxDriver
from wechat.sandbox import create_sandbox_app
from wechat.sandbox_link import sandbox_config

OLD_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
NEW_KEY = "Zyxwvutsrqponmlkjihgfedcba9876543210ZYXWVUT"


@pytest.fixture()
def safe_sandbox(app, live_app, tmp_path):
    """A sandbox in safe mode with `key`, posting to our real callback."""
    servers = []

    def start(key: str) -> SandboxDriver:
        folder = tmp_path / f"sandbox-{len(servers)}"
        server = LiveServer(create_sandbox_app(sandbox_config(
            app.config, aes_key=key, store_path=str(folder / "sandbox.db"),
            callback_url=f"{live_app.url}/wechat/callback", pay_public_key_path=str(folder / "pay.pem"),
            events_async=False)))
        servers.append(server)
        return SandboxDriver(server.url + "/sandbox")

    yield start
    for server in servers:
        server.stop()


def test_the_previous_key_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("WECHAT_AES_KEY", NEW_KEY)
    monkeypatch.setenv("WECHAT_AES_KEY_PREVIOUS", OLD_KEY)
    cfg = app_config.TestConfig()
    assert (cfg.WECHAT_AES_KEY, cfg.WECHAT_AES_KEY_PREVIOUS) == (NEW_KEY, OLD_KEY)


def test_during_a_key_change_messages_under_both_keys_are_answered(app, db, safe_sandbox, monkeypatch):
    monkeypatch.setenv("WECHAT_AES_KEY", NEW_KEY)
    monkeypatch.setenv("WECHAT_AES_KEY_PREVIOUS", OLD_KEY)
    cfg = app_config.TestConfig()
    monkeypatch.setitem(app.config, "WECHAT_AES_KEY", cfg.WECHAT_AES_KEY)
    monkeypatch.setitem(app.config, "WECHAT_AES_KEY_PREVIOUS", cfg.WECHAT_AES_KEY_PREVIOUS)
    for key in (OLD_KEY, NEW_KEY):  # WeChat still on the old key, then on the new one
        wechat = safe_sandbox(key)
        person = wechat.create_user()
        # say() checks WeChat could verify and decrypt the reply with its own key
        assert "账单" in wechat.say(person["openid"], "帮助")


def test_a_key_we_do_not_hold_is_refused(app, db, safe_sandbox, monkeypatch):
    monkeypatch.setitem(app.config, "WECHAT_AES_KEY", NEW_KEY)
    monkeypatch.setitem(app.config, "WECHAT_AES_KEY_PREVIOUS", None)
    wechat = safe_sandbox(OLD_KEY)
    person = wechat.create_user()
    result = wechat._post(f"/users/{person['openid']}/messages", json={"type": "text", "content": "帮助"})
    assert not result["ok"] and result["status"] == 400
