"""HTML error pages for the web blueprints (the API keeps its JSON errors)."""
from __future__ import annotations

import logging

from flask import Blueprint, render_template
from werkzeug.exceptions import HTTPException

from app.errors import DomainError
from app.extensions import db
from app.http_errors import http_message

log = logging.getLogger(__name__)


def page_message(exc: HTTPException) -> tuple[int, str]:
    """(status, Chinese message) of an HTTP error shown as a page."""
    status = exc.code or 500
    if status == 400 and exc.description == "csrf":
        return status, "页面已过期或来源不明（CSRF 校验失败），请刷新页面后重试"
    return status, http_message(status)


def unexpected(exc: Exception) -> tuple[int, str]:
    """A fault of ours behind a page: rolled back, logged, and told as a page (never JSON)."""
    db.session.rollback()
    log.exception("web page failed")
    return 500, http_message(500)


def install_html_errors(bp: Blueprint) -> None:
    @bp.errorhandler(DomainError)
    def _domain(exc: DomainError):
        db.session.rollback()
        return render_template("common/error.html", status=exc.status, message=exc.message,
                               fields=exc.fields), exc.status

    @bp.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        status, message = page_message(exc)
        return render_template("common/error.html", status=status, message=message, fields=None), status

    @bp.errorhandler(Exception)
    def _unexpected(exc: Exception):
        status, message = unexpected(exc)
        return render_template("common/error.html", status=status, message=message, fields=None), status
