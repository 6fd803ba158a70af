"""The phone call-center bridge (/bridge/v1/...): tickets and calls in, status back."""
from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """Register the bridge's blueprint with the OpenAPI-aware ``api``."""
    from app.openapi import api  # noqa: F401  (the blueprint is added here when built)
