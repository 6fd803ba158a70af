"""The benchmark's WSGI app: the real backend plus a bare wechatpy echo endpoint.

Both endpoints run in the same gunicorn, so the ratio between them measures what our
callback adds (dedupe row, user row, FAQ ranking, reply cache) over the unavoidable work
(signature check, AES decrypt, XML parse, AES encrypt of the reply).
"""
from flask import Response, current_app, request
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

from app import create_app

app = create_app()


@app.post("/bench/echo")
def echo():
    cfg = current_app.config
    args = request.args
    check_signature(cfg["WECHAT_TOKEN"], args["signature"], args["timestamp"], args["nonce"])
    crypto = WeChatCrypto(cfg["WECHAT_TOKEN"], cfg["WECHAT_AES_KEY"], cfg["WECHAT_APPID"])
    xml = crypto.decrypt_message(request.get_data(), args["msg_signature"], args["timestamp"], args["nonce"])
    msg = parse_message(xml)
    reply = TextReply(content=msg.content, message=msg).render()
    return Response(crypto.encrypt_message(reply, args["nonce"], args["timestamp"]), mimetype="application/xml")
