"""The two web faces of the product: the leader dashboard (/dashboard) and the staff console
(/console). Server-rendered Jinja pages, plain CSS and small vanilla JS; ECharts is vendored
under static/vendor (no CDN at run time)."""
from __future__ import annotations

from flask import Blueprint, Flask

# Shared static files and templates of both faces.
assets = Blueprint("web", __name__, static_folder="static", static_url_path="/web/static",
                   template_folder="templates")


WEB_BODY_BYTES = 1024 * 1024   # forms and small JSON: no page takes an upload (app/http_limits.py)


def register(app: Flask) -> None:
    from app.http_limits import limit_blueprint
    from app.web import filters
    from app.web.console import bp as console_bp
    from app.web.dashboard import bp as dashboard_bp

    for bp in (assets, dashboard_bp, console_bp):
        limit_blueprint(bp, WEB_BODY_BYTES)

    # The session cookie's flags and DASHBOARD_* come from app/config.py.
    app.register_blueprint(assets)
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(console_bp)
    filters.install(app)
