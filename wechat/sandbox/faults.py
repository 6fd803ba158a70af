"""Quotas, rate limits and injected faults (WECHAT.md §2, §3, §7 and the fidelity traps).

Every WeChat API call passes `guard()` once its credentials are known. Injected faults are
counted down ("the next N calls"), never open-ended, because wechatpy retries 40001/40014/42001
by recursion without a limit (WECHAT.md §9).

POST /sandbox/faults takes any of these keys (several at once are fine):
  {"errcode": 45015, "times": 1, "api": "message/custom/send", "errmsg": "..."}
  {"busy": 3}                              -1 for the next 3 calls (optionally "api")
  {"token_invalid": 40001, "times": 1}     40001/40014/42001 for calls made with a token
  {"delay": 6, "times": 1, "api": "..."}   answer 6 s late
  {"rate_limit_per_minute": 20}            45011 beyond 20 calls a minute per API and appid
  {"daily_quota": {"message/template/send": 5}}   45009 beyond 5 a day (Beijing day)
  {"window_closed": true}                  45015 for every customer-service message
  {"template_status": "failed:user block"} Status of the next TEMPLATESENDJOBFINISH events
  {"template_finish_events": false}        stop posting TEMPLATESENDJOBFINISH
  {"ip_whitelist": ["203.0.113.7"]}        token calls from other IPs get 40164 (null: no check)
  {"oauth_domain": "heat.example.com"}     web-authorisation domain(s) redirect_uri must use (10003)
  {"minute_quota": {"cgi-bin/stable_token": 5}}  45011 beyond 5 calls a minute
  {"pay_sign_mode": "both"}                how WeChat Pay signs: public_key | platform_cert | both
  {"pay_error": "NOT_ENOUGH", "times": 1, "api": "refund/domestic/refunds"}
                                           the next WeChat Pay calls answer that error (its
                                           documented HTTP status and message, signed)
GET reads the state, DELETE clears it (quota counters included).
"""
from __future__ import annotations

import json
import random
import time

from flask import Blueprint, jsonify, request

from .config import PAY_SIGN_MODES
from .errors import ControlError, PayError, WeChatError

# Default daily quotas per appid and API (WECHAT.md §2-§7); others are unlimited.
DAILY_QUOTAS = {
    "cgi-bin/token": 2000,
    "cgi-bin/stable_token": 500_000,
    "cgi-bin/message/template/send": 100_000,
    "cgi-bin/message/custom/send": 500_000,
    "cgi-bin/message/subscribe/send": 10_000_000,
    "cgi-bin/message/mass/sendall": 100,
    "cgi-bin/message/mass/send": 100,
    "cgi-bin/user/get": 500,
    "cgi-bin/user/info": 5_000_000,
    "cgi-bin/media/upload": 100_000,
    "cgi-bin/media/get": 200_000,
    "cgi-bin/qrcode/create": 100_000,
}
# Documented per-minute limits per appid and API (45011 beyond); others have none.
MINUTE_QUOTAS = {"cgi-bin/stable_token": 10_000}
TOKEN_ERRCODES = (40001, 40014, 42001)
SETTINGS_KEY = "fault_settings"
# WeChat Pay errors a test may inject: code -> (HTTP status, message as WeChat Pay words it).
PAY_ERRORS = {
    "SYSTEM_ERROR": (500, "系统错误"),
    "FREQUENCY_LIMITED": (429, "频率超限"),
    "NOT_ENOUGH": (403, "基本账户余额不足，请充值后重新发起"),
    "USER_ACCOUNT_ABNORMAL": (403, "退款请求失败"),
    "NO_AUTH": (403, "商户无权限"),
    "BIZERR_NEED_RETRY": (500, "退款处理中，请稍后重试"),
}


def _matches(pattern: str | None, api: str) -> bool:
    if not pattern:
        return True
    pattern = pattern.strip("/")
    return api == pattern or api.endswith("/" + pattern)


def settings(sb) -> dict:
    return sb.setting(SETTINGS_KEY, {})


def daily_quota(sb, api: str) -> int | None:
    overrides = settings(sb).get("daily_quota", {})
    for pattern, limit in overrides.items():
        if _matches(pattern, api):
            return int(limit)
    return DAILY_QUOTAS.get(api)


def minute_quota(sb, api: str) -> int | None:
    conf = settings(sb)
    for pattern, limit in conf.get("minute_quota", {}).items():
        if _matches(pattern, api):
            return int(limit)
    return conf.get("rate_limit_per_minute") or MINUTE_QUOTAS.get(api)


def ip_whitelist(sb) -> set[str] | None:
    """The caller IPs the token endpoints accept (WECHAT.md §2, 40164), or None: no check.
    The ``ip_whitelist`` setting wins over the sandbox's config of the same name."""
    conf = settings(sb)
    value = conf["ip_whitelist"] if "ip_whitelist" in conf else sb.config.get("ip_whitelist")
    return None if value is None else set(value)


def oauth_domains(sb) -> list[str]:
    """The web-authorisation domain(s) (网页授权域名) a redirect_uri must be on."""
    conf = settings(sb)
    value = conf["oauth_domain"] if "oauth_domain" in conf else sb.config.get("oauth_domain")
    return split_list(value) or []


def split_list(value) -> list[str] | None:
    """A list, or a comma-separated string, as a list of stripped items; None stays None."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(item).strip() for item in items if str(item).strip()]


def guard(sb, api: str, appid: str, with_token: bool, *, count: bool = True) -> None:
    """Apply slow answers, injected errors, the per-minute limit and the daily quota.

    ``count=False``: the call is counted later by ``count_call`` in the view's own write
    transaction (one write per call on a hot path); ``wechat_api`` makes sure it is counted,
    and that 45011/45009 still outrank the view's own errors, as when counted here."""
    delay = 0.0
    injected = None
    over = None
    if _any_fault(sb, api):
        with sb.store.tx() as conn:
            delay, injected = _take_faults(conn, api, with_token)
            if not injected and count:
                over = count_call(sb, conn, api, appid)
    elif count and _limited(sb, api):
        with sb.store.tx() as conn:
            over = count_call(sb, conn, api, appid)
    if delay:
        time.sleep(delay)  # outside the transaction: a slow answer holds no lock
    if injected:
        raise WeChatError(injected["errcode"], injected.get("errmsg"))
    if over:
        raise WeChatError(over)


def _any_fault(sb, api: str) -> bool:
    """Whether an injected errcode or delay may apply (a read: most calls take no lock for it)."""
    return any(_matches(row["api"], api) for row in sb.store.all(
        "SELECT api FROM faults WHERE kind IN ('errcode', 'delay')"))


def _take_faults(conn, api: str, with_token: bool) -> tuple[float, dict | None]:
    """Count down the injected faults that apply to this call: (delay, injected error)."""
    delay = 0.0
    injected = None
    for row in conn.execute("SELECT * FROM faults ORDER BY id").fetchall():
        if not _matches(row["api"], api):
            continue
        value = json.loads(row["value"])
        if row["kind"] == "errcode":
            if injected or (value["errcode"] in TOKEN_ERRCODES and not with_token):
                continue
            injected = value
        elif row["kind"] == "delay" and not delay:
            delay = float(value["seconds"])
        else:
            continue
        if row["remaining"] <= 1:
            conn.execute("DELETE FROM faults WHERE id = ?", (row["id"],))
        else:
            conn.execute("UPDATE faults SET remaining = remaining - 1 WHERE id = ?", (row["id"],))
    return delay, injected


def _limited(sb, api: str) -> bool:
    return bool(minute_quota(sb, api)) or daily_quota(sb, api) is not None


def count_call(sb, conn, api: str, appid: str) -> int | None:
    """Count the call against the per-minute limit and the daily quota, in the caller's
    write transaction; 45011 or 45009 when it is over (the count stays: WeChat counts
    refused calls too), else None."""
    now = sb.now()
    over = None
    limit = minute_quota(sb, api)
    if limit:
        minute = int(now // 60)
        if _bump(conn, f"minute:{appid}:{api}:{minute}", (minute + 1) * 60) > int(limit):
            over = 45011
    quota = daily_quota(sb, api)
    if quota is not None and not over:
        day = sb.beijing_now().strftime("%Y-%m-%d")
        if _bump(conn, f"day:{appid}:{api}:{day}", now + 2 * 86400) > quota:
            over = 45009
    if random.random() < 0.01:
        conn.execute("DELETE FROM counters WHERE expires_at < ?", (now,))
    return over


def pay_guard(sb, api: str) -> None:
    """WeChat Pay calls: raise an injected ``pay_error`` for the next matching calls."""
    injected = None
    with sb.store.tx() as conn:
        for row in conn.execute("SELECT * FROM faults WHERE kind = 'pay_error' ORDER BY id").fetchall():
            if not _matches(row["api"], api):
                continue
            injected = json.loads(row["value"])
            if row["remaining"] <= 1:
                conn.execute("DELETE FROM faults WHERE id = ?", (row["id"],))
            else:
                conn.execute("UPDATE faults SET remaining = remaining - 1 WHERE id = ?", (row["id"],))
            break
    if injected:
        status, message = PAY_ERRORS[injected["code"]]
        raise PayError(status, injected["code"], message)


def _bump(conn, key: str, expires_at: float) -> int:
    return conn.execute(
        "INSERT INTO counters (key, count, expires_at) VALUES (?, 1, ?) "
        "ON CONFLICT(key) DO UPDATE SET count = count + 1 RETURNING count",
        (key, expires_at),
    ).fetchone()["count"]


def _add(sb, kind: str, value: dict, times, api) -> None:
    times = int(times or 1)
    if times < 1:
        raise ControlError(400, "times must be at least 1")
    sb.store.run(
        "INSERT INTO faults (kind, api, value, remaining) VALUES (?, ?, ?, ?)",
        kind, api, json.dumps(value), times,
    )


def set_faults(sb, data: dict) -> None:
    times, api = data.get("times", 1), data.get("api")
    if "errcode" in data:
        _add(sb, "errcode", {"errcode": int(data["errcode"]), "errmsg": data.get("errmsg")}, times, api)
    if "busy" in data:
        _add(sb, "errcode", {"errcode": -1, "errmsg": None}, data["busy"], api)
    if "token_invalid" in data:
        code = int(data["token_invalid"]) if data["token_invalid"] not in (True, 1) else 40001
        if code not in TOKEN_ERRCODES:
            raise ControlError(400, f"token_invalid must be one of {TOKEN_ERRCODES}")
        _add(sb, "errcode", {"errcode": code, "errmsg": None}, times, api)
    if "delay" in data:
        _add(sb, "delay", {"seconds": float(data["delay"])}, times, api)
    if "pay_error" in data:
        if data["pay_error"] not in PAY_ERRORS:
            raise ControlError(400, f"pay_error must be one of {sorted(PAY_ERRORS)}")
        _add(sb, "pay_error", {"code": data["pay_error"]}, times, api)
    conf = settings(sb)
    for key in ("rate_limit_per_minute", "window_closed", "template_status", "template_finish_events"):
        if key in data:
            conf[key] = data[key]
    for name in ("daily_quota", "minute_quota"):
        if name in data:
            if not isinstance(data[name], dict):
                raise ControlError(400, f"{name} must map an API path to a number")
            conf.setdefault(name, {}).update(data[name])
    if "ip_whitelist" in data:
        value = data["ip_whitelist"]
        if value is not None and not isinstance(value, (list, str)):
            raise ControlError(400, "ip_whitelist must be a list of IP addresses, or null to switch it off")
        conf["ip_whitelist"] = split_list(value)
    if "pay_sign_mode" in data:
        if data["pay_sign_mode"] not in PAY_SIGN_MODES + (None,):
            raise ControlError(400, f"pay_sign_mode must be one of {PAY_SIGN_MODES} (null: the setting's)")
        conf["pay_sign_mode"] = data["pay_sign_mode"]
    if "oauth_domain" in data:
        if not isinstance(data["oauth_domain"], (list, str)):
            raise ControlError(400, "oauth_domain must be a domain or a list of them")
        conf["oauth_domain"] = split_list(data["oauth_domain"])
    sb.store.set_json(SETTINGS_KEY, conf)


def describe(sb) -> dict:
    rows = sb.store.all("SELECT * FROM faults ORDER BY id")
    return {
        "injected": [
            {"id": r["id"], "kind": r["kind"], "api": r["api"], "remaining": r["remaining"], **json.loads(r["value"])}
            for r in rows
        ],
        "settings": settings(sb),
        "default_daily_quotas": DAILY_QUOTAS,
        "default_minute_quotas": MINUTE_QUOTAS,
    }


def clear(sb) -> None:
    with sb.store.tx() as conn:
        conn.execute("DELETE FROM faults")
        conn.execute("DELETE FROM counters")
        conn.execute("DELETE FROM kv WHERE key = ?", (SETTINGS_KEY,))


def register(bp: Blueprint, sb) -> None:
    @bp.route("/faults", methods=["GET", "POST", "DELETE"])
    def faults_endpoint():
        if request.method == "POST":
            data = request.get_json(silent=True)
            if not isinstance(data, dict):
                raise ControlError(400, "JSON object expected")
            set_faults(sb, data)
        elif request.method == "DELETE":
            clear(sb)
        return jsonify(describe(sb))
