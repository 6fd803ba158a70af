"""The JSON API the mini-program calls (/api/v1/...): schemas in, schemas out, thin views."""
from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """Register the mobile API's blueprints with the OpenAPI-aware ``api``, plus the pages
    around it (docs, receipt verification) and WeChat Pay's notify URL."""
    from app.openapi import api
    from mobile_api import auth, crews, docs, receipts, residents
    from wechat import pay_notify

    for module in (auth, residents, crews):
        api.register_blueprint(module.bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(receipts.bp)
    app.register_blueprint(pay_notify.bp)
