"""`python -m wechat.sandbox`: run the sandbox as its own process (default port 8001)."""
from __future__ import annotations

import argparse
import os

from .app import create_sandbox_app
from .config import DEFAULTS, config_from_env


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m wechat.sandbox", description="Offline WeChat sandbox")
    parser.add_argument("--host", default=os.environ.get("SANDBOX_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("SANDBOX_PORT", "8001")))
    options = {
        "store": "store_path", "callback-url": "callback_url", "token": "token", "aes-key": "aes_key",
        "oa-appid": "oa_appid", "oa-secret": "oa_secret", "mp-appid": "mp_appid", "mp-secret": "mp_secret",
        "mchid": "mchid", "apiv3-key": "apiv3_key", "pay-public-key-path": "pay_public_key_path",
        "pay-public-key-id": "pay_public_key_id", "merchant-key-path": "merchant_key_path",
        "merchant-cert-serial": "merchant_cert_serial", "pay-sign-mode": "pay_sign_mode",
        "pay-bound-appids": "pay_bound_appids",
    }
    for flag, key in options.items():
        parser.add_argument(f"--{flag}", dest=key, help=f"default: {DEFAULTS[key]!r} or its environment variable")
    parser.add_argument("--no-template-events", action="store_true", help="do not post TEMPLATESENDJOBFINISH")
    parser.add_argument("--refund-auto-settle", type=float, default=None, metavar="SECONDS",
                        help="seconds until an accepted refund succeeds (default 2); negative: only when told")
    args = parser.parse_args(argv)
    config = config_from_env()
    config.update({key: getattr(args, key) for key in options.values() if getattr(args, key)})
    if config.get("pay_public_key_path") is None:
        config["pay_public_key_path"] = "instance/sandbox_wechatpay_public_key.pem"
    if args.no_template_events:
        config["template_finish_events"] = False
    if args.refund_auto_settle is not None:
        config["refund_auto_settle"] = args.refund_auto_settle if args.refund_auto_settle >= 0 else None
    app = create_sandbox_app(config)
    sb = app.extensions["wechat_sandbox"]
    print(f"WeChat sandbox on http://{args.host}:{args.port}/sandbox  (API base: same URL)")
    print(f"  callback -> {sb.config['callback_url']}  safe mode: {'on' if sb.crypto else 'off'}")
    print(f"  WeChat Pay public key {sb.pay_keys.public_key_id} written to {sb.config['pay_public_key_path']}")
    print(f"  WeChat Pay signs with: {sb.config['pay_sign_mode']} (platform certificate {sb.pay_keys.cert_serial});"
          f" merchant certificate serial {sb.pay_keys.merchant_cert_serial}")
    from werkzeug.serving import run_simple

    run_simple(args.host, args.port, app, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
