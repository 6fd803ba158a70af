"""Sandbox settings: defaults, and reading them from the environment for `python -m`.

The credentials default to the backend's development defaults (app/config.py), and the
environment variable names are the backend's own, so one environment configures both sides.
"""
from __future__ import annotations

import os
from datetime import timedelta, timezone
from urllib.parse import urlsplit

# The development merchant certificate serial, known to both sides (app/config.py has the same).
DEV_MERCHANT_CERT_SERIAL = "5A4DB0C5DE7A11F0000000000000000000000001"
PAY_SIGN_MODES = ("public_key", "platform_cert", "both")
# WeChat Pay writes its times in Beijing time (+08:00), whatever the machine's zone.
BEIJING = timezone(timedelta(hours=8))

DEFAULTS: dict = {
    "store_path": "instance/sandbox.db",
    "callback_url": "http://127.0.0.1:5000/wechat/callback",
    # The backend's page that starts WeChat's web sign-in (its official-account pages), which
    # the sandbox page's "打开公众号页面" opens with ?next=<page>&sandbox_openid=<the user>;
    # None: <the callback URL's origin>/h5/login.
    "web_entry_url": None,
    # The web-authorisation domain(s) (网页授权域名, comma-separated) that an OAuth redirect_uri
    # must be on (10003 otherwise); the host of the backend's PUBLIC_BASE_URL by default.
    "oauth_domain": "127.0.0.1",
    # Caller IPs the token endpoints accept (list or comma-separated); None: no IP whitelist.
    "ip_whitelist": None,
    "token": "demo-callback-token",
    "aes_key": None,  # 43-character EncodingAESKey; set means safe mode
    "oa_appid": "wx_demo_official_account",
    "oa_secret": "demo-oa-secret",
    "oa_original_id": "gh_sandbox000001",
    "mp_appid": "wx_demo_mini_program",
    "mp_secret": "demo-mp-secret",
    "mchid": "1900000001",
    "apiv3_key": "sandbox-apiv3-key-0123456789abcd",  # 32 ASCII bytes, like the real one
    # Where to write the platform public key PEM (and "<path>.id") for the backend to read.
    "pay_public_key_path": None,
    "pay_public_key_id": None,  # None: generated once and kept in the store
    # The merchant's private key, public key or certificate; when given, request
    # signatures are verified cryptographically, otherwise only their format and mchid.
    "merchant_key_path": None,
    # The serial of the merchant's API certificate (apiclient_cert.pem) as WeChat Pay has it
    # registered: the Authorization's serial_no must be it (401 SIGN_ERROR otherwise). The
    # default is the development serial the backend also uses (app/config.py); None: the
    # serial of the certificate at merchant_key_path.
    "merchant_cert_serial": DEV_MERCHANT_CERT_SERIAL,
    # How WeChat Pay signs its answers and notifications (WECHAT.md §8): "public_key" (a
    # merchant on the WeChat Pay public key: Wechatpay-Serial PUB_KEY_ID_…), "platform_cert"
    # (a merchant that never switched: the platform certificate's serial), "both" (switching:
    # answers follow the request's Wechatpay-Serial, notifications alternate certificate /
    # public key). GET /v3/certificates serves the platform certificate in every mode.
    "pay_sign_mode": "public_key",
    # The appids bound to the merchant (AppID账号管理); a JSAPI order for another appid gets
    # 400 APPID_MCHID_NOT_MATCH. None: the official account's and the mini-program's.
    "pay_bound_appids": None,
    "template_finish_events": True,  # post TEMPLATESENDJOBFINISH after template sends
    "events_async": True,  # post those events from a thread (False: before answering)
    "callback_timeout": 5.0,  # WeChat gives the server 5 s ...
    "callback_attempts": 3,  # ... and tries three times in all
    "notify_timeout": 5.0,
    # Seconds after which an accepted refund succeeds by itself (REFUND.SUCCESS is posted);
    # None: refunds stay PROCESSING until POST /sandbox/pay/refunds/<out_refund_no>/settle.
    "refund_auto_settle": 2.0,
    # The account's templates (wechat/sandbox/templates.py): [{template_id, app: "oa"|"mp",
    # type?: "template"|"subscribe", title, content: "标签:{{thing1.DATA}}\n…", example?, enums?}].
    # Sends with any other template id get 40037; data that is not exactly a template's keys,
    # each within its rule, gets 47003. More can be registered with POST /sandbox/templates.
    "templates": [],
}

# config key -> environment variables, first set wins
ENV_NAMES: dict[str, tuple[str, ...]] = {
    "store_path": ("SANDBOX_STORE",),
    "callback_url": ("SANDBOX_CALLBACK_URL",),
    "web_entry_url": ("SANDBOX_WEB_ENTRY_URL",),
    "token": ("SANDBOX_TOKEN", "WECHAT_TOKEN"),
    "aes_key": ("SANDBOX_AES_KEY", "WECHAT_AES_KEY"),
    "oa_appid": ("SANDBOX_OA_APPID", "WECHAT_APPID"),
    "oa_secret": ("SANDBOX_OA_SECRET", "WECHAT_SECRET"),
    "mp_appid": ("SANDBOX_MP_APPID", "MINIAPP_APPID"),
    "mp_secret": ("SANDBOX_MP_SECRET", "MINIAPP_SECRET"),
    "mchid": ("SANDBOX_MCHID", "WECHATPAY_MCHID"),
    "apiv3_key": ("SANDBOX_APIV3_KEY", "WECHATPAY_APIV3_KEY"),
    "pay_public_key_path": ("SANDBOX_PAY_PUBLIC_KEY_PATH", "WECHATPAY_PUBLIC_KEY_PATH"),
    "pay_public_key_id": ("SANDBOX_PAY_PUBLIC_KEY_ID", "WECHATPAY_PUBLIC_KEY_ID"),
    "merchant_key_path": ("SANDBOX_MERCHANT_KEY_PATH", "WECHATPAY_PRIVATE_KEY_PATH"),
    "merchant_cert_serial": ("SANDBOX_MERCHANT_CERT_SERIAL", "WECHATPAY_CERT_SERIAL_NO"),
    "pay_sign_mode": ("SANDBOX_PAY_SIGN_MODE",),
    "pay_bound_appids": ("SANDBOX_PAY_BOUND_APPIDS",),
    "oauth_domain": ("SANDBOX_OAUTH_DOMAIN",),
    "ip_whitelist": ("SANDBOX_IP_WHITELIST",),
}


def build_config(overrides: dict | None = None) -> dict:
    """Defaults updated with `overrides` (unknown keys are refused to catch typos)."""
    overrides = overrides or {}
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown sandbox settings: {sorted(unknown)}")
    config = {**DEFAULTS, **overrides}
    aes_key = config["aes_key"]
    if aes_key and len(aes_key) != 43:
        raise ValueError("aes_key (EncodingAESKey) must be 43 characters")
    if len(config["apiv3_key"].encode()) != 32:
        raise ValueError("apiv3_key must be 32 bytes")
    if config["pay_sign_mode"] not in PAY_SIGN_MODES:
        raise ValueError(f"pay_sign_mode must be one of {PAY_SIGN_MODES}")
    bound = config["pay_bound_appids"]
    if isinstance(bound, str):
        config["pay_bound_appids"] = [appid.strip() for appid in bound.split(",") if appid.strip()]
    whitelist = config["ip_whitelist"]
    if isinstance(whitelist, str):
        config["ip_whitelist"] = [ip.strip() for ip in whitelist.split(",") if ip.strip()]
    return config


def config_from_env(environ: dict | None = None) -> dict:
    """Settings named in ENV_NAMES, from the environment."""
    environ = os.environ if environ is None else environ
    found = {}
    for key, names in ENV_NAMES.items():
        for name in names:
            if environ.get(name):
                found[key] = environ[name]
                break
    if "oauth_domain" not in found and environ.get("PUBLIC_BASE_URL"):
        # The backend's public host is where its web-authorisation pages live.
        found["oauth_domain"] = urlsplit(environ["PUBLIC_BASE_URL"]).hostname or DEFAULTS["oauth_domain"]
    return found
