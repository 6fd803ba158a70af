"""Errors the way each side of WeChat sends them."""
from __future__ import annotations

import secrets

# errmsg texts as WeChat words them (WECHAT.md §2-§7)
ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40003: "invalid openid",
    40004: "invalid media type",
    40007: "invalid media_id",
    40013: "invalid appid",
    40014: "invalid access_token",
    40016: "invalid button size",
    40017: "invalid button type",
    40018: "invalid button name size",
    40019: "invalid button key size",
    40020: "invalid button url size",
    40023: "invalid sub button size",
    40024: "invalid sub button type",
    40025: "invalid sub button name size",
    40026: "invalid sub button key size",
    40027: "invalid sub button url size",
    40029: "invalid code",
    40032: "invalid openid list size",
    40037: "invalid template_id",
    40125: "invalid appsecret",
    40130: "invalid openid list size, at least two openid",
    40163: "code been used",
    40164: "invalid ip, not in whitelist",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41008: "missing code",
    42001: "access_token expired",
    43002: "require POST method",
    43004: "require subscribe",
    43101: "user refuse to accept the msg",
    44002: "empty post data",
    45008: "article size out of limit",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    45065: "clientmsgid exist",
    45157: "invalid tag name",
    45158: "tag name too long",
    45159: "invalid tag id",
    46003: "menu no exist",
    47001: "data format error",
    47003: "argument invalid!",
    48001: "api unauthorized",
}


def rid() -> str:
    """A request id like the ones WeChat appends to every errmsg."""
    return "-".join(secrets.token_hex(4) for _ in range(3))


class WeChatError(Exception):
    """An official-account / mini-program API error: HTTP 200 with errcode and errmsg."""

    def __init__(self, errcode: int, errmsg: str | None = None):
        super().__init__(errcode)
        self.errcode = errcode
        self.errmsg = errmsg or ERRMSG.get(errcode, "error")

    def body(self) -> dict:
        return {"errcode": self.errcode, "errmsg": f"{self.errmsg} rid: {rid()}"}


class PayError(Exception):
    """A WeChat Pay v3 error: HTTP 4xx/5xx with {"code", "message"}."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(code)
        self.status, self.code, self.message = status, code, message


class ControlError(Exception):
    """A bad request to the sandbox's own /sandbox/... endpoints."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message
