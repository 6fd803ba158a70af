import pytest

from app import create_app
from app.config import ConfigError, ProductionConfig, load_config


def test_production_refuses_default_secrets(monkeypatch):
    for name in ("SECRET_KEY", "BRIDGE_SECRET", "DATABASE_URL", "REDIS_URL", "WECHAT_SANDBOX"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError) as err:
        create_app(ProductionConfig())
    message = str(err.value)
    assert "SECRET_KEY" in message and "BRIDGE_SECRET" in message and "DATABASE_URL" in message


def test_production_refuses_the_sandbox(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "a-long-random-production-secret")
    monkeypatch.setenv("BRIDGE_SECRET", "bridge-secret-from-the-vault")
    monkeypatch.setenv("DATABASE_URL", "postgresql://heating@db/heating")
    monkeypatch.setenv("REDIS_URL", "redis://redis:6379/0")
    monkeypatch.setenv("WECHATPAY_APIV3_KEY", "0123456789abcdef0123456789abcdef")
    monkeypatch.setenv("WECHATPAY_PRIVATE_KEY_PATH", "/etc/heating/apiclient_key.pem")
    monkeypatch.setenv("WECHATPAY_PUBLIC_KEY_PATH", "/etc/heating/wechatpay_public_key.pem")
    monkeypatch.setenv("WECHATPAY_PUBLIC_KEY_ID", "PUB_KEY_ID_0000000001")
    ProductionConfig().check()  # complete production settings pass
    monkeypatch.setenv("WECHAT_SANDBOX", "1")
    with pytest.raises(ConfigError, match="WECHAT_SANDBOX"):
        ProductionConfig().check()


def test_postgres_urls_use_psycopg3(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/db")
    assert load_config("development").SQLALCHEMY_DATABASE_URI == "postgresql+psycopg://u@h/db"


def test_unknown_app_env_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown APP_ENV"):
        load_config("staging")
