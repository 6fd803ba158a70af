"""Pushing messages and events to the backend's callback URL, as WeChat's servers do.

Signed query (signature, timestamp, nonce, openid; plus encrypt_type=aes and msg_signature in
safe mode), 5-second timeout, three attempts with the same body, then the passive reply is
checked (and decrypted in safe mode) like WeChat would before showing it to the user:
ToUserName must be the sender, FromUserName the account's original id (gh_…), and a news
reply carries at most 1 article when it answers a user message (8 for an event; WeChat's rule
since 2018-10-12). A reply that breaks these is not shown: the user sees
"该公众号暂时无法提供服务，请稍后再试". A text reply whose mini-program link lacks its appid
is shown, but flagged (see links.py).
"""
from __future__ import annotations

import time

import requests
from defusedxml import ElementTree

from .crypto import CryptoError, nonce_str, sha1_signature
from .links import text_link_flags

FAILURE_TEXT = "该公众号暂时无法提供服务，请稍后再试"
REPLY_TYPES = {"text", "image", "voice", "video", "music", "news", "transfer_customer_service"}
NEWS_TO_MESSAGE = 1  # articles in a news reply to a user message (text, image, voice, video, location, link)
NEWS_TO_EVENT = 8    # ... and in other cases


def to_xml(fields: dict) -> str:
    """WeChat's flat message XML: numbers bare, strings in CDATA, dicts nested."""
    return "<xml>" + _fields(fields) + "</xml>"


def _fields(fields: dict) -> str:
    parts = []
    for key, value in fields.items():
        if value is None:
            continue
        if isinstance(value, dict):
            parts.append(f"<{key}>{_fields(value)}</{key}>")
        elif isinstance(value, list):
            parts.extend(f"<{key}>{_fields(item)}</{key}>" for item in value)
        elif isinstance(value, (int, float)):
            parts.append(f"<{key}>{value}</{key}>")
        else:
            text = str(value).replace("]]>", "]]]]><![CDATA[>")
            parts.append(f"<{key}><![CDATA[{text}]]></{key}>")
    return "".join(parts)


def parse_xml(text: str) -> dict:
    """XML into nested dicts (repeated children become lists); safe against entity bombs."""
    return _element(ElementTree.fromstring(text.encode()))


def _element(element) -> dict | str:
    children = list(element)
    if not children:
        return element.text or ""
    result: dict = {}
    for child in children:
        value = _element(child)
        if child.tag in result:
            if not isinstance(result[child.tag], list):
                result[child.tag] = [result[child.tag]]
            result[child.tag].append(value)
        else:
            result[child.tag] = value
    return result


def push(sb, fields: dict, openid: str) -> dict:
    """POST one message or event to the callback; return what happened and the reply."""
    config = sb.config
    xml = to_xml(fields)
    timestamp, nonce = str(int(sb.now())), nonce_str()
    params = {
        "signature": sha1_signature(config["token"], timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "openid": openid,
    }
    body = xml
    if sb.crypto:
        encrypted = sb.crypto.encrypt(xml)
        params.update(encrypt_type="aes", msg_signature=sb.crypto.signature(timestamp, nonce, encrypted))
        body = to_xml({"ToUserName": config["oa_original_id"], "Encrypt": encrypted})
    result: dict = {"sent": fields, "attempts": 0, "status": None, "ok": False, "reply": None}
    for _ in range(int(config["callback_attempts"])):
        result["attempts"] += 1
        started = time.monotonic()
        try:
            response = requests.post(
                config["callback_url"], params=params, data=body.encode(),
                headers={"Content-Type": "text/xml"}, timeout=float(config["callback_timeout"]),
            )
        except requests.RequestException as exc:  # timeout or refused: WeChat tries again
            result["error"] = f"{type(exc).__name__}: {exc}"
            continue
        result["status"] = response.status_code
        result["elapsed"] = round(time.monotonic() - started, 3)
        result.pop("error", None)
        if response.status_code != 200:
            result["error"] = f"HTTP {response.status_code}"
            break
        result.update(_read_reply(sb, response.text, openid, fields))
        break
    if not result["ok"]:
        result["user_sees"] = FAILURE_TEXT
    return result


def _read_reply(sb, text: str, openid: str, pushed: dict) -> dict:
    raw = text.strip()
    if raw in ("", "success"):
        return {"ok": True, "reply": None, "raw_reply": raw}
    try:
        outer = parse_xml(raw)
    except Exception:
        return {"ok": False, "error": "reply is neither 'success', empty, nor XML", "raw_reply": raw[:500]}
    if not isinstance(outer, dict):
        return {"ok": False, "error": "reply XML has no fields", "raw_reply": raw[:500]}
    if sb.crypto:
        if "Encrypt" not in outer:
            return {"ok": False, "error": "safe mode: reply is not encrypted", "raw_reply": raw[:500]}
        expected = sb.crypto.signature(str(outer.get("TimeStamp", "")), str(outer.get("Nonce", "")), outer["Encrypt"])
        if outer.get("MsgSignature") != expected:
            return {"ok": False, "error": "reply MsgSignature does not match", "raw_reply": raw[:500]}
        try:
            plain = sb.crypto.decrypt(outer["Encrypt"])
            reply = parse_xml(plain)
        except (CryptoError, Exception) as exc:
            return {"ok": False, "error": f"cannot decrypt reply: {exc}", "raw_reply": raw[:500]}
    else:
        reply = outer
    problem = _check_reply(sb, reply, openid, pushed)
    if problem:
        return {"ok": False, "error": problem, "reply": reply}
    answer = {"ok": True, "reply": reply}
    if reply.get("MsgType") == "text":
        flags = text_link_flags(sb, str(reply.get("Content", "")))
        if flags:
            answer["flags"] = flags
    return answer


def _check_reply(sb, reply, openid: str, pushed: dict) -> str | None:
    if not isinstance(reply, dict):
        return "reply XML has no fields"
    if reply.get("ToUserName") != openid:
        return f"reply ToUserName {reply.get('ToUserName')!r} is not the sender {openid}"
    account = sb.config["oa_original_id"]
    if reply.get("FromUserName") != account:
        return f"reply FromUserName {reply.get('FromUserName')!r} is not the account's original id {account}"
    if reply.get("MsgType") not in REPLY_TYPES:
        return f"reply MsgType {reply.get('MsgType')!r} is not allowed"
    if reply["MsgType"] == "news":
        items = (reply.get("Articles") or {}).get("item", [])
        count = len(items) if isinstance(items, list) else 1
        limit = NEWS_TO_EVENT if pushed.get("MsgType") == "event" else NEWS_TO_MESSAGE
        if count > limit:
            answered = "an event" if limit == NEWS_TO_EVENT else "a user message"
            return f"news reply to {answered} has {count} articles; WeChat allows {limit}"
    return None

