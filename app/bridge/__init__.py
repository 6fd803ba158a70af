"""The phone call-center bridge (/bridge/v1/...): tickets and calls in, status back."""
from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """Register the bridge's blueprint with the OpenAPI-aware ``api`` and its CLI group."""
    from app.bridge.cli import bridge_cli
    from app.bridge.views import bp
    from app.openapi import api

    api.register_blueprint(bp)
    app.cli.add_command(bridge_cli)
