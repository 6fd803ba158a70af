"""HTML error pages for the web blueprints (the API keeps its JSON errors)."""
from __future__ import annotations

from flask import Blueprint, render_template
from werkzeug.exceptions import HTTPException

from app.errors import DomainError
from app.extensions import db

MESSAGES = {
    400: "请求有误，请返回重试",
    401: "请先登录",
    403: "您没有权限访问此页面",
    404: "页面不存在",
    405: "不支持该操作",
    409: "当前状态不允许此操作",
    429: "操作过于频繁，请稍后再试",
}


def install_html_errors(bp: Blueprint) -> None:
    @bp.errorhandler(DomainError)
    def _domain(exc: DomainError):
        db.session.rollback()
        return render_template("common/error.html", status=exc.status, message=exc.message,
                               fields=exc.fields), exc.status

    @bp.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        status = exc.code or 500
        message = MESSAGES.get(status, "请求失败")
        if status == 400 and exc.description == "csrf":
            message = "页面已过期或来源不明（CSRF 校验失败），请刷新页面后重试"
        return render_template("common/error.html", status=status, message=message, fields=None), status
