"""Electronic receipts: the signed token in a receipt's QR code and the link to its page.

The token is the order number signed with SECRET_KEY, so a receipt cannot be forged or
another one guessed. The page itself is ``GET /r/<token>`` (mobile_api.receipts); the
payment confirmation push and the mini-program's receipt both link there.
"""
from __future__ import annotations

from flask import current_app
from itsdangerous import URLSafeSerializer

RECEIPT_SALT = "receipt-v1"
RECEIPT_PATH = "/r/"          # the verification page's route (mobile_api.receipts.verify)


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=RECEIPT_SALT)


def receipt_token(out_trade_no: str) -> str:
    return _serializer().dumps(out_trade_no)


def receipt_number(token: str) -> str | None:
    """The order number a token names, or None for anything we did not sign."""
    try:
        value = _serializer().loads(token)
    except Exception:
        return None
    return value if isinstance(value, str) else None


def receipt_url(out_trade_no: str) -> str:
    """The public receipt page of an order (works outside a request: jobs build it too)."""
    return current_app.config["PUBLIC_BASE_URL"] + RECEIPT_PATH + receipt_token(out_trade_no)
