"""Building the sandbox: a Blueprint to mount in an app, or a Flask app of its own."""
from __future__ import annotations

from flask import Blueprint, Flask, jsonify

from . import (accounts, bills, faults, history, jsbridge, media, messages, oauth, page, pay, people, refunds, templates,
               tokens)
from .core import Sandbox
from .errors import ControlError, WeChatError


def create_sandbox_blueprint(config: dict | None = None, name: str = "wechat_sandbox") -> Blueprint:
    """Every sandbox route, relative to its base: /cgi-bin/..., /sns/..., /v3/..., /users, ...

    Mount it with url_prefix="/sandbox"; the base URL for the backend's clients is then
    http://host:port/sandbox (WECHAT_API_BASE and WECHATPAY_API_BASE).
    """
    sb = Sandbox(config)
    bp = Blueprint(name, __name__)
    bp.sandbox = sb  # for tests and the mounting app

    @bp.errorhandler(WeChatError)
    def wechat_error(error: WeChatError):
        return jsonify(error.body()), 200  # WeChat's JSON APIs fail with HTTP 200 (trap 1)

    @bp.errorhandler(ControlError)
    def control_error(error: ControlError):
        return jsonify({"error": {"code": str(error.status), "message": error.message}}), error.status

    for module in (tokens, faults, people, templates, messages, oauth, media, accounts, pay, refunds, bills, history,
                   jsbridge, page):
        module.register(bp, sb)
    return bp


def create_sandbox_app(config: dict | None = None) -> Flask:
    """The sandbox as its own app: everything under /sandbox, the WeChat APIs also at the root."""
    bp = create_sandbox_blueprint(config)
    app = Flask(__name__)
    app.json.ensure_ascii = False
    app.register_blueprint(bp, url_prefix="/sandbox")
    app.register_blueprint(bp, url_prefix="", name="wechat_sandbox_root")
    app.extensions["wechat_sandbox"] = bp.sandbox
    return app
