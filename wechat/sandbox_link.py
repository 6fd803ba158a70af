"""The sandbox's settings derived from the app's (the app may know the sandbox; the
sandbox never imports the app): same credentials, our callback URL, and the templates our
configuration names — registered as a real account's templates are, so the sandbox refuses
what WeChat would refuse (WECHAT.md trap 14)."""
from __future__ import annotations

from urllib.parse import urlsplit

from wechat.templates import build_registry


def sandbox_config(cfg, **overrides) -> dict:
    """Settings for ``wechat.sandbox`` that make it act as WeChat for this app."""
    return {
        "callback_url": f"{cfg['PUBLIC_BASE_URL']}/wechat/callback",
        # Our pages' host is the account's web-authorisation domain (网页授权域名).
        "oauth_domain": urlsplit(cfg["PUBLIC_BASE_URL"]).hostname or "127.0.0.1",
        "token": cfg["WECHAT_TOKEN"], "aes_key": cfg["WECHAT_AES_KEY"],
        "oa_appid": cfg["WECHAT_APPID"], "oa_secret": cfg["WECHAT_SECRET"],
        "mp_appid": cfg["MINIAPP_APPID"], "mp_secret": cfg["MINIAPP_SECRET"],
        "mchid": cfg["WECHATPAY_MCHID"], "apiv3_key": cfg["WECHATPAY_APIV3_KEY"],
        # WeChat Pay knows our API certificate's serial (our requests must name it).
        "merchant_cert_serial": cfg["WECHATPAY_CERT_SERIAL_NO"],
        "templates": sandbox_templates(cfg),
        **overrides,
    }


def sandbox_templates(cfg) -> list[dict]:
    """The account's templates as the sandbox registers them (``POST /sandbox/templates``)."""
    return build_registry(cfg).account_templates()
