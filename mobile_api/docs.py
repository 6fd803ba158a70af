"""GET /api/v1/docs: a browsable page of the OpenAPI document (swagger-ui vendored, no CDN).

The files under ``mobile_api/static/swagger-ui/`` come from the npm package
swagger-ui-dist (see VERSION there); only the bundle and its stylesheet are kept.
"""
from __future__ import annotations

from flask import Blueprint, render_template_string, url_for

bp = Blueprint("mobile_docs", __name__, static_folder="static", static_url_path="/api/v1/docs/static")

PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>热力客服 API 文档</title>
<link rel="stylesheet" href="{{ css }}"></head><body><div id="swagger-ui"></div>
<script src="{{ js }}"></script>
<script>window.ui = SwaggerUIBundle({url: {{ spec|tojson }}, dom_id: "#swagger-ui", deepLinking: true,
  persistAuthorization: true});</script></body></html>"""


@bp.route("/api/v1/docs")
def docs():
    return render_template_string(
        PAGE, css=url_for("mobile_docs.static", filename="swagger-ui/swagger-ui.css"),
        js=url_for("mobile_docs.static", filename="swagger-ui/swagger-ui-bundle.js"),
        spec=url_for("api-docs.openapi_json"))
