"""The JSON API the mini-program calls (/api/v1/...): schemas in, schemas out, thin views."""
from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """Register the mobile API's blueprints with the OpenAPI-aware ``api``."""
    from app.openapi import api  # noqa: F401  (blueprints are added here as they are built)
