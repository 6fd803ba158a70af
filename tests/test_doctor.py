"""`flask doctor` against the WeChat sandbox over real HTTP: all green on the demo config, and a
clear ✗ with exit code 1 for each broken setting (the other checks still run)."""
from __future__ import annotations

import pytest

from tests.live import LiveServer, SandboxDriver
from wechat.sandbox import create_sandbox_app
from wechat.sandbox.crypto import generate_rsa_key, private_key_pem
from wechat.sandbox_link import sandbox_config

CERT_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"


@pytest.fixture(scope="module")
def merchant_key(tmp_path_factory):
    path = tmp_path_factory.mktemp("doctor-merchant") / "apiclient_key.pem"
    path.write_text(private_key_pem(generate_rsa_key()))
    return str(path)


@pytest.fixture(scope="module")
def doctor_sandbox(app, live_app, tmp_path_factory, merchant_key):
    """A sandbox that checks our WeChat Pay signatures (it knows our key and serial)."""
    folder = tmp_path_factory.mktemp("doctor-sandbox")
    server = LiveServer(create_sandbox_app(sandbox_config(
        app.config, store_path=str(folder / "sandbox.db"), callback_url=f"{live_app.url}/wechat/callback",
        pay_public_key_path=str(folder / "wechatpay_public_key.pem"), merchant_key_path=merchant_key,
        merchant_cert_serial=CERT_SERIAL, events_async=False,
    )))
    server.public_key_path = str(folder / "wechatpay_public_key.pem")
    yield server
    server.stop()


@pytest.fixture()
def doctor(app, db, live_app, doctor_sandbox, merchant_key, runner, monkeypatch):
    base = f"{doctor_sandbox.url}/sandbox"
    for name, value in {
        "WECHAT_API_BASE": base + "/", "WECHATPAY_API_BASE": base,
        "WECHATPAY_PRIVATE_KEY_PATH": merchant_key, "WECHATPAY_CERT_SERIAL_NO": CERT_SERIAL,
        "WECHATPAY_PUBLIC_KEY_PATH": doctor_sandbox.public_key_path, "WECHATPAY_PUBLIC_KEY_ID": None,
        "WECHATPAY_NOTIFY_URL": live_app.url + "/pay/notify", "WECHATPAY_REFUND_NOTIFY_URL": None,
    }.items():
        monkeypatch.setitem(app.config, name, value)
    app.extensions.pop("wechat_clients", None)
    app.extensions.pop("wechatpay", None)
    driver = SandboxDriver(base)
    driver.reset()
    assert runner.invoke(args=["wechat", "sync-menu"]).exit_code == 0

    def run():
        app.extensions.pop("wechat_clients", None)
        app.extensions.pop("wechatpay", None)
        return runner.invoke(args=["doctor"])

    yield run
    app.extensions.pop("wechat_clients", None)
    app.extensions.pop("wechatpay", None)


def section(output: str, title: str) -> str:
    """The lines of one check: its ✓/✗ line and the indented lines under it."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if title in line)
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith("    ")), len(lines))
    return "\n".join(lines[start:end])


def test_doctor_is_green_on_the_demo_config(doctor):
    result = doctor()
    assert result.exit_code == 0, result.output
    assert "✗" not in result.output
    for title in ("access tokens", "message templates", "official-account menu", "pay notify URLs",
                  "WeChat Pay keys", "database", "Redis"):
        assert section(result.output, title)[0] in "✓!", result.output
    assert "WeChat Pay accepted a signed request" in result.output
    assert "http is fine in development only" in result.output   # the dev notify URL is http


def test_a_template_missing_from_the_account_is_named(doctor, app, monkeypatch):
    monkeypatch.setitem(app.config, "WECHAT_TEMPLATES", {"payment_paid": "TPL_NOT_IN_THE_ACCOUNT"})
    result = doctor()
    assert result.exit_code == 1
    templates = section(result.output, "message templates")
    assert templates.startswith("✗")
    assert "WECHAT_TEMPLATES.payment_paid" in templates and "TPL_NOT_IN_THE_ACCOUNT" in templates
    assert section(result.output, "database").startswith("✓")   # the others still ran


def test_template_keys_that_differ_from_the_account_are_named(doctor, app, monkeypatch):
    monkeypatch.setitem(app.config, "MINIAPP_TEMPLATES", {"arrears_reminder": {
        "template_id": "MP_TPL_BILL_REMINDER", "title": "缴费提醒",
        "keys": {"thing1": "item", "thing9": "tip"}}})
    result = doctor()
    assert result.exit_code == 1
    templates = section(result.output, "message templates")
    assert "MINIAPP_TEMPLATES.arrears_reminder" in templates and "thing9" in templates and "thing2" in templates


def test_a_changed_menu_asks_for_sync_menu(doctor, app, monkeypatch):
    monkeypatch.setitem(app.config, "MINIAPP_APPID", app.config["MINIAPP_APPID"])  # restored after
    from wechat import client as wechat_client

    with app.app_context():
        wechat_client.official_account().menu.create({"button": [{"type": "click", "name": "旧菜单", "key": "OLD"}]})
    result = doctor()
    assert result.exit_code == 1
    menu = section(result.output, "official-account menu")
    assert menu.startswith("✗") and "flask wechat sync-menu" in menu and "旧菜单" in menu


def test_an_account_without_a_menu_asks_for_sync_menu(doctor, app):
    from wechat import client as wechat_client

    with app.app_context():
        wechat_client.official_account().menu.delete()
    result = doctor()
    assert result.exit_code == 1
    menu = section(result.output, "official-account menu")
    assert menu.startswith("✗") and "the account has no menu" in menu and "check itself failed" not in menu


def test_wrong_merchant_key_is_refused_by_wechat_pay(doctor, app, monkeypatch, tmp_path):
    other = tmp_path / "other_key.pem"
    other.write_text(private_key_pem(generate_rsa_key()))
    monkeypatch.setitem(app.config, "WECHATPAY_PRIVATE_KEY_PATH", str(other))
    result = doctor()
    assert result.exit_code == 1
    keys = section(result.output, "WeChat Pay keys")
    assert keys.startswith("✗") and "SIGN_ERROR" in keys and "WECHATPAY_CERT_SERIAL_NO" in keys


def test_wrong_certificate_serial_is_refused_by_wechat_pay(doctor, app, monkeypatch):
    monkeypatch.setitem(app.config, "WECHATPAY_CERT_SERIAL_NO", "0123456789ABCDEF0123456789ABCDEF01234567")
    result = doctor()
    assert result.exit_code == 1
    assert "SIGN_ERROR" in section(result.output, "WeChat Pay keys")


def test_unreadable_or_broken_key_files_are_named(doctor, app, monkeypatch, tmp_path):
    broken = tmp_path / "pub_key.pem"
    broken.write_text("not a key")
    monkeypatch.setitem(app.config, "WECHATPAY_PRIVATE_KEY_PATH", str(tmp_path / "missing.pem"))
    monkeypatch.setitem(app.config, "WECHATPAY_PUBLIC_KEY_PATH", str(broken))
    result = doctor()
    assert result.exit_code == 1
    keys = section(result.output, "WeChat Pay keys")
    assert "WECHATPAY_PRIVATE_KEY_PATH" in keys and "missing.pem" in keys
    assert "WECHATPAY_PUBLIC_KEY_PATH" in keys and "PEM" in keys
    assert "no signed request made" in keys


def test_wrong_app_secret_fails_the_token_check(doctor, app, monkeypatch):
    monkeypatch.setitem(app.config, "WECHAT_SECRET", "0" * 32)
    result = doctor()
    assert result.exit_code == 1
    tokens = section(result.output, "access tokens")
    assert tokens.startswith("✗") and "WECHAT_SECRET" in tokens


def test_unreachable_notify_url_and_http_in_production_fail(doctor, app, monkeypatch):
    monkeypatch.setitem(app.config, "WECHATPAY_NOTIFY_URL", "http://127.0.0.1:9/pay/notify")
    monkeypatch.setitem(app.config, "ENV_NAME", "production")
    result = doctor()
    assert result.exit_code == 1
    urls = section(result.output, "pay notify URLs")
    assert "must be https:// in production" in urls and "unreachable" in urls
    assert "WECHATPAY_REFUND_NOTIFY_URL=http://127.0.0.1:9/pay/refund-notify" in urls
