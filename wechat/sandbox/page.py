"""GET /sandbox: every simulated user's chat, as a phone shows it (for the demo)."""
from __future__ import annotations

from flask import Blueprint, Response


def register(bp: Blueprint, sb) -> None:
    @bp.route("/")
    def page():
        return Response("<!doctype html><title>微信沙箱</title>", content_type="text/html; charset=utf-8")
