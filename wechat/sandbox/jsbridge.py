"""WeChat's in-app browser, for JSAPI payments from our web pages (WECHAT.md §8): a stand-in of
``WeixinJSBridge.invoke('getBrandWCPayRequest', params, callback)``.

``GET /jsbridge.js`` defines ``window.WeixinJSBridge`` and fires ``WeixinJSBridgeReady`` as
WeChat's browser does; a page of the official account includes it only when it talks to the
sandbox. ``invoke`` asks ``POST /jsbridge/check`` about the parameters, shows a small payment
sheet (支付 / 取消) and, on 支付, ``POST /jsbridge/pay`` pays the order and posts WeChat Pay's
notification, like ``POST /pay/<out_trade_no>/pay``. The callback receives
``{err_msg: 'get_brand_wcpay_request:ok' | ':cancel' | ':fail', err_desc?}``.

What WeChat checks before it shows the sheet, checked here on both calls:
- every parameter present (appId, timeStamp, nonceStr, package, signType, paySign), signType RSA;
- appId is the official account's (the page belongs to it), the package names a prepay_id
  WeChat Pay issued less than two hours ago, for an order of that same appid;
- paySign is the merchant's RSA-SHA256 signature of ``appId\\ntimeStamp\\nnonceStr\\npackage\\n``,
  checked with the merchant's key (``merchant_key_path``; without it nothing can be paid here);
- the order can still be paid (not closed, not paid already).
The answers are plain JSON with ``Access-Control-Allow-Origin: *`` and the requests are sent
as text/plain, so a page on another origin (the backend on :5000, the sandbox on :8001) calls
them without a preflight.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from flask import Blueprint, Response, request

from .crypto import load_any_public_key, rsa_verify
from .errors import ControlError
from .pay import PAYABLE_STATES, notify, pay_order

PREPAY_LIFETIME = 2 * 3600          # a prepay_id lives two hours (WeChat Pay's JSAPI guide)
FIELDS = ("appId", "timeStamp", "nonceStr", "package", "signType", "paySign")
SCRIPT = Path(__file__).with_name("static") / "jsbridge.js"


class BridgeRefusal(Exception):
    """What WeChat's browser answers with ``get_brand_wcpay_request:fail`` (err_desc)."""


def _params() -> dict:
    try:
        data = json.loads(request.get_data(as_text=True) or "null")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise BridgeRefusal("缺少支付参数")
    return data


def check_request(sb, params: dict):
    """The order a getBrandWCPayRequest would pay, after WeChat's checks; BridgeRefusal otherwise."""
    missing = [name for name in FIELDS if not isinstance(params.get(name), str) or not params.get(name)]
    if missing:
        raise BridgeRefusal(f"缺少参数：{','.join(missing)}")
    if params["signType"] != "RSA":
        raise BridgeRefusal("signType 须为 RSA")
    if params["appId"] != sb.config["oa_appid"]:
        raise BridgeRefusal("appId 与当前公众号不一致")
    package = params["package"]
    if not package.startswith("prepay_id="):
        raise BridgeRefusal("package 格式错误，应为 prepay_id=***")
    prepay = sb.store.one("SELECT * FROM prepays WHERE prepay_id = ?", package[len("prepay_id="):])
    if prepay is None or sb.now() - prepay["created_at"] > PREPAY_LIFETIME:
        raise BridgeRefusal("prepay_id 无效或已过期")
    if prepay["appid"] != params["appId"]:
        raise BridgeRefusal("appid 与下单时的 appid 不一致")
    merchant_key = sb.pay_keys.merchant_public_key or _merchant_key_written_since(sb)
    if merchant_key is None:
        raise BridgeRefusal("沙箱未配置商户密钥（merchant_key_path），无法校验 paySign")
    message = f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{package}\n"
    if not rsa_verify(merchant_key, message, params["paySign"]):
        raise BridgeRefusal("支付验证签名失败")
    order = sb.store.one("SELECT * FROM orders WHERE out_trade_no = ?", prepay["out_trade_no"])
    if order is None:
        raise BridgeRefusal("订单不存在")
    if order["trade_state"] == "CLOSED":
        raise BridgeRefusal("订单已关闭")
    if order["trade_state"] not in PAYABLE_STATES:
        raise BridgeRefusal("该订单已支付")
    return order


def _merchant_key_written_since(sb):
    """A development merchant key the backend generated after the sandbox started (mounted mode)."""
    path = sb.config["merchant_key_path"]
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        return load_any_public_key(f.read())


def _answer(payload: dict) -> Response:
    response = Response(json.dumps(payload, ensure_ascii=False), content_type="application/json; charset=utf-8")
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = "no-store"
    return response


def register(bp: Blueprint, sb) -> None:
    @bp.route("/jsbridge.js")
    def jsbridge_script():
        response = Response(SCRIPT.read_text(encoding="utf-8"), content_type="application/javascript; charset=utf-8")
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response

    @bp.route("/jsbridge/check", methods=["POST"])
    def jsbridge_check():
        try:
            order = check_request(sb, _params())
        except BridgeRefusal as refusal:
            return _answer({"ok": False, "err_desc": str(refusal)})
        params = json.loads(order["params"])
        return _answer({"ok": True, "description": params.get("description", ""), "total": order["total"]})

    @bp.route("/jsbridge/pay", methods=["POST"])
    def jsbridge_pay():
        try:
            order = check_request(sb, _params())
            pay_order(sb, order["out_trade_no"])
        except BridgeRefusal as refusal:
            return _answer({"ok": False, "err_desc": str(refusal)})
        except ControlError as exc:          # expired or paid meanwhile
            return _answer({"ok": False, "err_desc": exc.message})
        delivered = notify(sb, order["out_trade_no"])
        return _answer({"ok": True, "notified": delivered["delivered"]})
