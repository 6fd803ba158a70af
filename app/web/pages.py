"""HTML error pages for the web blueprints (the API keeps its JSON errors)."""
from __future__ import annotations

from flask import Blueprint, render_template
from werkzeug.exceptions import HTTPException

from app.errors import DomainError
from app.extensions import db
from app.http_errors import http_message

def install_html_errors(bp: Blueprint) -> None:
    @bp.errorhandler(DomainError)
    def _domain(exc: DomainError):
        db.session.rollback()
        return render_template("common/error.html", status=exc.status, message=exc.message,
                               fields=exc.fields), exc.status

    @bp.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        status = exc.code or 500
        message = http_message(status)
        if status == 400 and exc.description == "csrf":
            message = "页面已过期或来源不明（CSRF 校验失败），请刷新页面后重试"
        return render_template("common/error.html", status=status, message=message, fields=None), status
