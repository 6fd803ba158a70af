import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app import create_app
from app.config import ConfigError, ProductionConfig, load_config

# Every variable the production check reads: cleared first, so the machine's environment
# never decides a test.
PRODUCTION_VARS = (
    "SECRET_KEY", "BRIDGE_SECRET", "DATABASE_URL", "REDIS_URL", "WECHAT_SANDBOX", "WECHAT_APPID", "WECHAT_SECRET",
    "WECHAT_TOKEN", "WECHAT_AES_KEY", "MINIAPP_APPID", "MINIAPP_SECRET", "WECHATPAY_MCHID", "WECHATPAY_APIV3_KEY",
    "WECHATPAY_PRIVATE_KEY_PATH", "WECHATPAY_PUBLIC_KEY_PATH", "WECHATPAY_PUBLIC_KEY_ID", "WECHATPAY_CERT_SERIAL_NO",
    "WECHATPAY_NOTIFY_URL", "PUBLIC_BASE_URL", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE", "WECHATPAY_REFUND_NOTIFY_URL", "WECHATPAY_VERIFY_MODE", "WECHAT_AES_KEY_PREVIOUS",
)


@pytest.fixture()
def production_env(monkeypatch, tmp_path):
    """A complete, safe production environment (real key files); tests then break one thing."""
    for name in PRODUCTION_VARS:
        monkeypatch.delenv(name, raising=False)
    merchant = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    platform = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_path = tmp_path / "apiclient_key.pem"
    private_path.write_bytes(merchant.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    public_path = tmp_path / "pub_key.pem"
    public_path.write_bytes(platform.public_key().public_bytes(serialization.Encoding.PEM,
                                                               serialization.PublicFormat.SubjectPublicKeyInfo))
    env = {
        "SECRET_KEY": "q3V9Zr7LwP2xK8mN4bT6yH1cF5gJ0dSa",
        "BRIDGE_SECRET": "Hb7Nq2Wc9Lp4Xs8Kd3Rf6Tv1Zm5Gy0Ja",
        "DATABASE_URL": "postgresql://heating@db/heating",
        "REDIS_URL": "redis://redis:6379/0",
        "WECHAT_APPID": "wx3f6a8c2e9b1d4a70",
        "WECHAT_SECRET": "8e1f4c7a2b9d6e3f0a5c8b1d4e7f2a9c",
        "WECHAT_TOKEN": "Kq8Zt3Lm9Xw2Pv7R",
        "WECHAT_AES_KEY": "Vx3Bq9Lm2Kz7Pw4Nt8Hr1Gy6Jd5Fs0Ca3Ex9Uk2Ob7T",
        "MINIAPP_APPID": "wx9b2d4f6a8c0e1357",
        "MINIAPP_SECRET": "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d",
        "WECHATPAY_MCHID": "1612345678",
        "WECHATPAY_APIV3_KEY": "Tz4Mw8Qp1Ks6Ny3Bx9Lr2Hv7Jc5Gd0Fa",
        "WECHATPAY_PRIVATE_KEY_PATH": str(private_path),
        "WECHATPAY_PUBLIC_KEY_PATH": str(public_path),
        "WECHATPAY_PUBLIC_KEY_ID": "PUB_KEY_ID_0116123456782026120200000000000001",
        "WECHATPAY_CERT_SERIAL_NO": "6B3F0A9E21C47D85E09A4C3B7F12D8E6A05C9B41",
        "WECHATPAY_NOTIFY_URL": "https://heat.example.cn/pay/notify",
        "PUBLIC_BASE_URL": "https://heat.example.cn",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def _problems() -> str:
    """The start-up error of a production config read from the environment now."""
    with pytest.raises(ConfigError) as err:
        ProductionConfig().check()
    return str(err.value)


def _named(message: str) -> set[str]:
    return set(re.findall(r"^  - ([A-Z0-9_]+):", message, re.M))


def test_a_correct_production_config_starts(production_env):
    cfg = ProductionConfig()
    cfg.check()
    assert cfg.SESSION_COOKIE_SECURE is True and cfg.SESSION_COOKIE_HTTPONLY is True
    assert cfg.SESSION_COOKIE_SAMESITE == "Lax"


def test_production_refuses_default_secrets(monkeypatch):
    for name in PRODUCTION_VARS:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError) as err:
        create_app(ProductionConfig())
    message = str(err.value)
    # One error names every problem, each on its own line with the variable and the reason.
    assert _named(message) >= {
        "SECRET_KEY", "BRIDGE_SECRET", "DATABASE_URL", "REDIS_URL", "WECHAT_APPID", "WECHAT_SECRET", "WECHAT_TOKEN",
        "WECHAT_AES_KEY", "MINIAPP_APPID", "MINIAPP_SECRET", "WECHATPAY_MCHID", "WECHATPAY_APIV3_KEY",
        "WECHATPAY_PRIVATE_KEY_PATH", "WECHATPAY_PUBLIC_KEY_PATH", "WECHATPAY_PUBLIC_KEY_ID", "WECHATPAY_NOTIFY_URL",
        "PUBLIC_BASE_URL", "WECHATPAY_CERT_SERIAL_NO"}
    assert "demo-callback-token" in message and "sandbox-apiv3-key" in message
    assert "生产配置不安全" in message and "安全模式" in message


def test_demo_values_are_refused_each_by_name(production_env, monkeypatch):
    demo = {"WECHAT_TOKEN": "demo-callback-token", "WECHAT_APPID": "wx_demo_official_account",
            "WECHAT_SECRET": "demo-oa-secret", "MINIAPP_APPID": "wx_demo_mini_program",
            "MINIAPP_SECRET": "demo-mp-secret", "WECHATPAY_MCHID": "1900000001",
            "WECHATPAY_APIV3_KEY": "sandbox-apiv3-key-0123456789abcd",
            "WECHAT_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}
    for name, value in demo.items():
        monkeypatch.setenv(name, value)
    message = _problems()
    assert _named(message) == set(demo)
    assert "still the development/demo default 'demo-callback-token'" in message
    assert "WeChat's documentation" in message   # the AES key of WeChat's own example


def test_placeholders_and_malformed_credentials_are_refused(production_env, monkeypatch):
    monkeypatch.setenv("WECHAT_SECRET", "your-app-secret-here")
    monkeypatch.setenv("MINIAPP_APPID", "wx123")                         # not an AppID
    monkeypatch.setenv("WECHAT_TOKEN", "abc")                            # WeChat allows it; too short for us
    monkeypatch.setenv("WECHATPAY_APIV3_KEY", "Tz4Mw8Qp1Ks6Ny3Bx9Lr2Hv7Jc5Gd0")  # 30 bytes
    monkeypatch.setenv("WECHATPAY_MCHID", "MCH-12345")
    monkeypatch.setenv("SECRET_KEY", "x" * 40)                           # long, but not random
    message = _problems()
    assert _named(message) == {"WECHAT_SECRET", "MINIAPP_APPID", "WECHAT_TOKEN", "WECHATPAY_APIV3_KEY",
                               "WECHATPAY_MCHID", "SECRET_KEY"}
    assert "must be 32 bytes (is 30)" in message


def test_safe_mode_is_required_and_the_aes_key_must_be_a_real_one(production_env, monkeypatch):
    monkeypatch.delenv("WECHAT_AES_KEY")
    assert "production requires safe mode" in _problems()
    monkeypatch.setenv("WECHAT_AES_KEY", "Vx3Bq9Lm2Kz7Pw4Nt8Hr1Gy6Jd5Fs0Ca3")         # 34 characters
    assert "not a valid EncodingAESKey" in _problems()


def test_a_short_bridge_secret_is_refused(production_env, monkeypatch):
    monkeypatch.setenv("BRIDGE_SECRET", "Hb7Nq2Wc9Lp4Xs8Kd3Rf6Tv1Zm5Gy0J")   # 31 characters
    message = _problems()
    assert _named(message) == {"BRIDGE_SECRET"} and "too short (31 characters)" in message


def test_missing_unreadable_or_wrong_key_files_are_refused(production_env, monkeypatch, tmp_path):
    monkeypatch.setenv("WECHATPAY_PRIVATE_KEY_PATH", str(tmp_path / "nowhere.pem"))
    monkeypatch.setenv("WECHATPAY_PUBLIC_KEY_PATH", str(tmp_path))       # a directory: cannot be read as a file
    message = _problems()
    assert _named(message) == {"WECHATPAY_PRIVATE_KEY_PATH", "WECHATPAY_PUBLIC_KEY_PATH"}
    assert "no such file" in message and "cannot read" in message

    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    monkeypatch.setenv("WECHATPAY_PRIVATE_KEY_PATH", str(garbage))
    # The public key where the private key belongs, and the other way round.
    monkeypatch.setenv("WECHATPAY_PUBLIC_KEY_PATH", production_env["WECHATPAY_PRIVATE_KEY_PATH"])
    message = _problems()
    assert "is not a PEM merchant private key" in message and "is not a PEM WeChat Pay public key" in message

    monkeypatch.delenv("WECHATPAY_PRIVATE_KEY_PATH")
    monkeypatch.delenv("WECHATPAY_PUBLIC_KEY_PATH")                      # the sandbox's key is no default here
    assert _named(_problems()) == {"WECHATPAY_PRIVATE_KEY_PATH", "WECHATPAY_PUBLIC_KEY_PATH"}


def test_insecure_session_cookies_are_refused(production_env, monkeypatch):
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "0")
    monkeypatch.setenv("SESSION_COOKIE_HTTPONLY", "false")
    monkeypatch.setenv("SESSION_COOKIE_SAMESITE", "None")
    message = _problems()
    assert _named(message) == {"SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_SAMESITE"}
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "1")
    monkeypatch.setenv("SESSION_COOKIE_HTTPONLY", "1")
    monkeypatch.setenv("SESSION_COOKIE_SAMESITE", "strict")
    ProductionConfig().check()


def test_links_and_the_pay_notify_url_must_be_public_https(production_env, monkeypatch):
    monkeypatch.delenv("PUBLIC_BASE_URL")
    monkeypatch.setenv("WECHATPAY_NOTIFY_URL", "http://heat.example.cn/pay/notify")
    message = _problems()
    assert _named(message) == {"PUBLIC_BASE_URL", "WECHATPAY_NOTIFY_URL"} and "must be an https:// URL" in message


def test_the_merchant_certificate_serial_must_be_the_real_one(production_env, monkeypatch):
    monkeypatch.delenv("WECHATPAY_CERT_SERIAL_NO")      # no fallback (a hash of the key is a 401 live)
    message = _problems()
    assert _named(message) == {"WECHATPAY_CERT_SERIAL_NO"} and "development/demo default" in message
    for wrong in ("apiclient_cert.pem", "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"):   # not hex; WeChat's example
        monkeypatch.setenv("WECHATPAY_CERT_SERIAL_NO", wrong)
        assert _named(_problems()) == {"WECHATPAY_CERT_SERIAL_NO"}
    monkeypatch.setenv("WECHATPAY_CERT_SERIAL_NO", "6b3f0a9e21c47d85e09a4c3b7f12d8e6a05c9b41")
    ProductionConfig().check()


def test_refund_notify_url_must_be_https_and_notify_urls_carry_no_query(production_env, monkeypatch):
    monkeypatch.setenv("WECHATPAY_REFUND_NOTIFY_URL", "http://heat.example.cn/pay/refund-notify")
    message = _problems()
    assert _named(message) == {"WECHATPAY_REFUND_NOTIFY_URL"} and "must be an https:// URL" in message
    monkeypatch.setenv("WECHATPAY_REFUND_NOTIFY_URL", "https://heat.example.cn/pay/refund-notify?from=wx")
    monkeypatch.setenv("WECHATPAY_NOTIFY_URL", "https://heat.example.cn/pay/notify?from=wx")
    message = _problems()
    assert _named(message) == {"WECHATPAY_NOTIFY_URL", "WECHATPAY_REFUND_NOTIFY_URL"} and "cannot carry a query" in message
    monkeypatch.setenv("WECHATPAY_NOTIFY_URL", "https://heat.example.cn/pay/notify")
    monkeypatch.setenv("WECHATPAY_REFUND_NOTIFY_URL", "https://heat.example.cn/pay/refund-notify")
    ProductionConfig().check()


def test_the_previous_aes_key_when_set_must_be_a_real_one(production_env, monkeypatch):
    monkeypatch.setenv("WECHAT_AES_KEY_PREVIOUS", "Vx3Bq9Lm2Kz7Pw4Nt8Hr1Gy6Jd5Fs0Ca3Ex9Uk2Ob7")   # 42 characters
    message = _problems()
    assert _named(message) == {"WECHAT_AES_KEY_PREVIOUS"} and "is 42 characters" in message
    monkeypatch.setenv("WECHAT_AES_KEY_PREVIOUS", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR")  # wechatpy's test key
    assert _named(_problems()) == {"WECHAT_AES_KEY_PREVIOUS"}
    monkeypatch.setenv("WECHAT_AES_KEY_PREVIOUS", "Qm4Rt8Wz2Xc6Vb0Np3Ls7Kd1Fh5Gj9Ya2Ue6Io0Py4A")
    ProductionConfig().check()


def test_a_merchant_on_platform_certificates_needs_no_public_key(production_env, monkeypatch):
    monkeypatch.delenv("WECHATPAY_PUBLIC_KEY_PATH")
    monkeypatch.delenv("WECHATPAY_PUBLIC_KEY_ID")
    assert _named(_problems()) == {"WECHATPAY_PUBLIC_KEY_PATH", "WECHATPAY_PUBLIC_KEY_ID"}   # public_key by default
    monkeypatch.setenv("WECHATPAY_VERIFY_MODE", "both")
    assert _named(_problems()) == {"WECHATPAY_PUBLIC_KEY_PATH", "WECHATPAY_PUBLIC_KEY_ID"}
    monkeypatch.setenv("WECHATPAY_VERIFY_MODE", "platform_cert")
    ProductionConfig().check()
    monkeypatch.setenv("WECHATPAY_VERIFY_MODE", "certificates")
    with pytest.raises(ConfigError, match="WECHATPAY_VERIFY_MODE"):
        load_config("development")


def test_production_refuses_the_sandbox(production_env, monkeypatch):
    monkeypatch.setenv("WECHAT_SANDBOX", "1")
    assert _named(_problems()) == {"WECHAT_SANDBOX"}


def test_development_and_tests_keep_their_demo_defaults(monkeypatch):
    for name in PRODUCTION_VARS:
        monkeypatch.delenv(name, raising=False)
    for env in ("development", "testing"):
        cfg = load_config(env)
        cfg.check()   # demo values, no key files, plain cookies: fine outside production
        assert cfg.WECHAT_TOKEN == "demo-callback-token" and cfg.SESSION_COOKIE_SECURE is False
        assert cfg.SESSION_COOKIE_HTTPONLY is True and cfg.SESSION_COOKIE_SAMESITE == "Lax"


def test_postgres_urls_use_psycopg3(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/db")
    assert load_config("development").SQLALCHEMY_DATABASE_URI == "postgresql+psycopg://u@h/db"


def test_unknown_app_env_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown APP_ENV"):
        load_config("staging")


def test_production_refuses_demo_template_ids(production_env):
    """Every other setting right, the kinds still on the demo's template ids: WeChat would answer
    40037 to each notice, so start-up stops (create_app builds the template registry, which
    checks them: app/ knows nothing of WeChat's templates)."""
    from wechat.templates import TemplateConfigError, build_registry

    cfg = ProductionConfig()
    cfg.check()
    with pytest.raises(TemplateConfigError) as err:
        build_registry({**vars(cfg), "ENV_NAME": cfg.ENV_NAME})
    message = str(err.value)
    assert "WECHAT_TEMPLATES.ticket_updated" in message and "MINIAPP_TEMPLATES.ticket_updated" in message
    assert "still the demo template id" in message
