"""What the web sign-ins (dashboard, official-account pages) need around WeChat's web
authorisation, whose calls live in ``wechat.web_oauth``: our own page's public address for the
``redirect_uri`` and a state WeChat accepts.

The redirect_uri is built from PUBLIC_BASE_URL — never from the host and scheme this request
arrived with, which behind a TLS-terminating proxy are the proxy's ``http://internal:8000`` —
and the state is hex (WeChat takes only a-zA-Z0-9, at most 128 bytes).
"""
from __future__ import annotations

import secrets

from flask import current_app, url_for


def public_url(endpoint: str, **values) -> str:
    """The absolute URL of one of our pages as WeChat and people reach it (PUBLIC_BASE_URL)."""
    return current_app.config["PUBLIC_BASE_URL"] + url_for(endpoint, **values)


def new_state() -> str:
    """A fresh OAuth state: 32 hex characters, inside WeChat's a-zA-Z0-9 / 128-byte rule."""
    return secrets.token_hex(16)
