"""The OpenAPI document of the mobile API and the bridge, generated from their schemas.

Blueprints of ``mobile_api/`` and ``app/bridge/`` are ``flask_smorest.Blueprint`` objects
registered through :data:`api`, so every request/response schema appears in
``GET /api/v1/openapi.json``. Validation errors use our JSON error shape with status 400.
"""
from __future__ import annotations

from flask import Flask
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint
from webargs.flaskparser import FlaskParser

api = Api()


class _Parser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400  # DESIGN §4.2: bad input is a 400 with field messages


class Blueprint(SmorestBlueprint):
    """Use this for every API blueprint (mobile API, bridge) so it is documented and
    validates with our status code."""

    ARGUMENTS_PARSER = _Parser()
    PAGINATION_ARGUMENTS_PARSER = _Parser()


def init_api(app: Flask) -> None:
    app.config.setdefault("API_TITLE", "热力客服 API (heating service)")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/v1")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    api.init_app(app, spec_kwargs={"components": {"securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer"},
        "bridgeSignature": {"type": "apiKey", "in": "header", "name": "X-Bridge-Signature"},
    }}})
