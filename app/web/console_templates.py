"""Console page 消息模板: each kind of message the product sends, the WeChat template that
carries it (official-account template message, mini-program subscribe message) with its keys,
and the latest refusal WeChat gave for it. Admins only (管理 menu). Read-only: templates are configured in the
settings (``WECHAT_TEMPLATES``, ``MINIAPP_TEMPLATES``; README "Message templates")."""
from __future__ import annotations

from datetime import datetime

from flask import current_app, render_template

from app.web.console_base import bp
from app.web.console_staff import admin_only
from wechat import templates


@bp.route("/templates")
@admin_only
def message_templates():
    problems = {}
    for key, problem in templates.problems(current_app.extensions["redis"]).items():
        problems[key] = {**problem, "at": datetime.fromisoformat(problem["at"])}
    return render_template("console/message_templates.html", rows=templates.registry().listing(),
                           problems=problems)
