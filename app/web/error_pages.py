"""Error pages of the web areas — dashboard, console, official-account pages — made one way.

``install_error_pages(bp, render, ...)`` gives a blueprint its handlers: a refusal of the domain
(``DomainError``, its status and fields), an HTTP error (4xx/5xx, a 413 too: a page never
answers the API's JSON) and a fault of ours (rolled back, logged, 500). Each area passes how it
shows a page (``render``: its template and layout) and, where its words differ, its ``PageWords``;
the console also passes ``refused``, which shows a refused form again. The messages per status
are the one table of app/http_errors.py.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from app.errors import DomainError
from app.extensions import db
from app.http_errors import http_message
from app.http_limits import BodyTooLarge, too_large_message

log = logging.getLogger(__name__)

# render(status, message, fields) -> the area's page, answered with ``status``
Render = Callable[[int, str, dict | None], ResponseReturnValue]


@dataclass(frozen=True)
class PageWords:
    """What an area says where the status alone does not say it."""

    csrf: str = "页面已过期或来源不明（CSRF 校验失败），请刷新页面后重试"
    too_large: str | None = None           # a 413 not raised by our limits (None: the limit, named)
    unexpected: str = http_message(500)    # a fault of ours


def page_message(exc: HTTPException, words: PageWords = PageWords()) -> tuple[int, str]:
    """(status, Chinese message) of an HTTP error shown as a page."""
    status = exc.code or 500
    if isinstance(exc, BodyTooLarge):
        return status, exc.message
    if status == 413:
        return status, words.too_large or too_large_message(exc)
    if status == 400 and exc.description == "csrf":
        return status, words.csrf
    return status, http_message(status)


def common_page(status: int, message: str, fields: dict | None = None) -> ResponseReturnValue:
    """The plain error page (no menu): the dashboard's, and the console's before sign-in."""
    return render_template("common/error.html", status=status, message=message, fields=fields), status


def install_error_pages(bp: Blueprint, render: Render, *, words: PageWords = PageWords(),
                        refused: Callable[[DomainError], ResponseReturnValue | None] | None = None) -> None:
    """Error handlers of ``bp``: every error answered with ``render``'s page. ``refused`` may
    answer a domain refusal its own way (None: the error page); an HTTP error it raises is
    shown as such."""

    def http_error(exc: HTTPException):
        db.session.rollback()
        status, message = page_message(exc, words)
        return render(status, message, None)

    @bp.errorhandler(DomainError)
    def _refused(exc: DomainError):
        db.session.rollback()
        if refused is not None:
            try:
                answer = refused(exc)
            except HTTPException as inner:
                return http_error(inner)
            if answer is not None:
                return answer
        return render(exc.status, exc.message, exc.fields)

    # 413 by its code too: the app's JSON handler for it would otherwise win over this page.
    bp.register_error_handler(RequestEntityTooLarge, http_error)
    bp.register_error_handler(HTTPException, http_error)

    @bp.errorhandler(Exception)
    def _unexpected(exc: Exception):
        db.session.rollback()
        log.exception("%s page failed", bp.name)
        return render(500, words.unexpected, None)
