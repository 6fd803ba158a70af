"""Settings: every one is read from the environment in app/config.py, when the app's config is
built (not when a module is imported), and the app has one time zone (app.clock)."""
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from app import clock
from app.config import PROJECT_ROOT, ConfigError, load_config

# Read from app.config by name but not settings: facts the app learns at start (REDIS_EMBEDDED)
# and flask-smorest's fixed document titles (app/openapi.py).
NOT_SETTINGS = {"REDIS_EMBEDDED", "API_TITLE", "API_VERSION", "OPENAPI_VERSION", "OPENAPI_URL_PREFIX",
                "OPENAPI_JSON_PATH"}
READ = re.compile(r"""(?:config|cfg)(?:\.get\(|\[|\.setdefault\()\s*["']([A-Z][A-Z0-9_]+)["']""")


def test_every_setting_the_code_reads_is_defined_in_app_config():
    """A setting read with a default where it is used (config.get("X", 3)) and missing from
    app/config.py cannot be set from the environment; the two defaults drift."""
    cfg = load_config("development")
    read = set()
    for folder in ("app", "wechat", "jobs", "mobile_api"):
        for path in (PROJECT_ROOT / folder).rglob("*.py"):
            if "sandbox" in path.parts:   # the sandbox is WeChat: its own settings
                continue
            read |= set(READ.findall(path.read_text(encoding="utf-8")))
    assert {"UPLOAD_DIR", "TIMEZONE", "WECHAT_AES_KEY_PREVIOUS"} <= read   # the scan finds them
    missing = sorted(name for name in read - NOT_SETTINGS if not hasattr(cfg, name) and name not in vars(type(cfg)))
    assert missing == []


def test_settings_come_from_the_environment_when_the_config_is_built(monkeypatch, tmp_path):
    from app import config   # imported before the variables are set: nothing is read at import

    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "inst"))
    monkeypatch.setenv("WECHAT_AES_KEY_PREVIOUS", "Vx3Bq9Lm2Kz7Pw4Nt8Hr1Gy6Jd5Fs0Ca3Ex9Uk2Ob7T")
    monkeypatch.setenv("BROADCAST_QUEUED_TTL", "900")
    monkeypatch.setenv("DASHBOARD_POLL_SECONDS", "1.5")
    monkeypatch.setenv("DASHBOARD_SSE_MAX_SECONDS", "120")
    monkeypatch.setenv("OUTBOX_DISPATCH_ON_COMMIT", "0")
    monkeypatch.setenv("TIMEZONE", "Asia/Urumqi")
    cfg = config.load_config("development")
    assert cfg.INSTANCE_DIR == str(tmp_path / "inst") and (tmp_path / "inst").is_dir()
    assert cfg.UPLOAD_DIR == str(tmp_path / "inst" / "uploads")   # under the instance by default
    assert cfg.SQLALCHEMY_DATABASE_URI.endswith(str(tmp_path / "inst" / "heating.db"))
    assert cfg.WECHAT_AES_KEY_PREVIOUS == "Vx3Bq9Lm2Kz7Pw4Nt8Hr1Gy6Jd5Fs0Ca3Ex9Uk2Ob7T"
    assert (cfg.BROADCAST_QUEUED_TTL, cfg.DASHBOARD_POLL_SECONDS, cfg.DASHBOARD_SSE_MAX_SECONDS) == (900, 1.5, 120)
    assert cfg.OUTBOX_DISPATCH_ON_COMMIT is False and cfg.TIMEZONE == "Asia/Urumqi"
    monkeypatch.setenv("UPLOAD_DIR", str(tmp_path / "photos"))
    assert config.load_config("development").UPLOAD_DIR == str(tmp_path / "photos")


def test_the_defaults_without_any_variable(monkeypatch):
    for name in ("UPLOAD_DIR", "BROADCAST_QUEUED_TTL", "DASHBOARD_POLL_SECONDS", "DASHBOARD_SSE_MAX_SECONDS",
                 "OUTBOX_DISPATCH_ON_COMMIT", "TIMEZONE", "INSTANCE_PATH"):
        monkeypatch.delenv(name, raising=False)
    cfg = load_config("development")
    assert Path(cfg.UPLOAD_DIR) == PROJECT_ROOT / "instance" / "uploads"
    assert (cfg.BROADCAST_QUEUED_TTL, cfg.DASHBOARD_POLL_SECONDS, cfg.DASHBOARD_SSE_MAX_SECONDS) == (3600, 3.0, 300)
    assert cfg.OUTBOX_DISPATCH_ON_COMMIT is True and cfg.TIMEZONE == clock.DEFAULT_TIMEZONE == "Asia/Shanghai"


@pytest.mark.parametrize("value", ["Beijing", "UTC+8", "../etc/passwd"])
def test_an_unknown_time_zone_is_refused_at_start(monkeypatch, value):
    monkeypatch.setenv("TIMEZONE", value)
    with pytest.raises(ConfigError, match="TIMEZONE"):
        load_config("development")


def test_local_day_and_time_follow_the_timezone_setting(app, monkeypatch, clock):
    clock.travel_to(datetime(2026, 12, 2, 16, 30, tzinfo=timezone.utc))   # 00:30 on the 3rd in Beijing
    with app.app_context():
        assert clock.local_tz().key == "Asia/Shanghai"
        assert clock.local_day().isoformat() == "2026-12-03" and clock.local_now().hour == 0
        monkeypatch.setitem(app.config, "TIMEZONE", "Europe/London")
        assert clock.local_day().isoformat() == "2026-12-02" and clock.local_now().hour == 16
    assert clock.local_tz() is clock.BEIJING   # outside the app: Beijing



def test_asia_shanghai_is_written_once_in_the_code():
    """One time-zone constant: every other place asks app.clock."""
    places = []
    for folder in ("app", "wechat", "jobs", "mobile_api"):
        for path in (PROJECT_ROOT / folder).rglob("*.py"):
            if "sandbox" in path.parts:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if re.search(r"""["']Asia/Shanghai["']""", line) or re.search(r"\bBEIJING\s*=", line):
                    places.append(f"{path.relative_to(PROJECT_ROOT)}:{number}")
    assert places and all(place.startswith("app/clock.py:") for place in places), places
