"""JSON error answers for every blueprint: {"error": {"code", "message"}} (DESIGN §4.2)."""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from marshmallow import ValidationError as SchemaValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from app.errors import DomainError
from app.extensions import db
from app.http_limits import too_large_message

log = logging.getLogger(__name__)

HTTP_MESSAGES = {
    400: "请求格式不正确",
    401: "请先登录",
    403: "没有权限执行此操作",
    404: "请求的内容不存在",
    405: "不支持该请求方法",
    409: "当前状态不允许此操作",
    413: "上传内容过大",
    415: "不支持的内容类型",
    429: "请求过于频繁，请稍后再试",
}


def error_response(status: int, code: str, message: str, fields: dict | None = None):
    body = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return jsonify(error=body), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain(exc: DomainError):
        db.session.rollback()
        return error_response(exc.status, exc.code, exc.message, exc.fields)

    @app.errorhandler(SchemaValidationError)
    def _schema(exc: SchemaValidationError):
        fields = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        return error_response(400, "invalid_input", "提交的内容有误，请检查后重试", fields)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge):
        return error_response(413, "payload_too_large", too_large_message(exc))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        status = exc.code or 500
        messages = (getattr(exc, "data", None) or {}).get("messages")
        if messages:  # webargs/flask-smorest validation: {location: {field: [...]}}
            fields = {}
            for location_fields in messages.values():
                fields.update(location_fields if isinstance(location_fields, dict) else {"_": location_fields})
            return error_response(400, "invalid_input", "提交的内容有误，请检查后重试", fields)
        code = (exc.name or "error").lower().replace(" ", "_")
        return error_response(status, code, HTTP_MESSAGES.get(status, exc.description or "请求失败"))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        db.session.rollback()
        log.exception("unhandled error")
        return error_response(500, "internal_error", "服务器内部错误，请稍后再试")
