"""Error answers, built in one place: {"error": {"code", "message", "fields"?}} (DESIGN §4.2).

``error_body`` builds the shape (the bridge adds ``dead_letter_id``), ``ApiErrorSchema`` documents
it in the OpenAPI document (mobile API and bridge alike), and ``HTTP_MESSAGES`` is the one table
of Chinese messages per status — for JSON answers, the HTML error pages (app/web/error_pages.py) and
the OpenAPI descriptions.
"""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from marshmallow import Schema, fields as ma_fields
from marshmallow import ValidationError as SchemaValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from app.errors import DomainError
from app.extensions import db
from app.http_limits import too_large_message

log = logging.getLogger(__name__)

HTTP_MESSAGES = {
    400: "请求有误，请检查后重试",
    401: "请先登录",
    403: "没有权限执行此操作",
    404: "请求的内容不存在",
    405: "不支持该请求方法",
    409: "当前状态不允许此操作",
    413: "上传内容过大",
    415: "不支持的内容类型",
    422: "内容无法处理",
    429: "操作过于频繁，请稍后再试",
    500: "服务器内部错误，请稍后再试",
    503: "服务暂时不可用，请稍后再试",
}


def http_message(status: int) -> str:
    return HTTP_MESSAGES.get(status, "请求失败")


def error_body(code: str, message: str, fields: dict | None = None, **extra) -> dict:
    """The error shape: ``fields`` only when there are some; ``extra`` keys (``dead_letter_id``)
    only when not None."""
    error = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    error.update({key: value for key, value in extra.items() if value is not None})
    return {"error": error}


def error_response(status: int, code: str, message: str, fields: dict | None = None, **extra):
    return jsonify(error_body(code, message, fields, **extra)), status


class ApiErrorBodySchema(Schema):
    code = ma_fields.String(required=True, metadata={"description": "stable English identifier"})
    message = ma_fields.String(required=True, metadata={"description": "for people, in Chinese"})
    fields = ma_fields.Dict(keys=ma_fields.String(), metadata={"description": "messages per input field"})
    dead_letter_id = ma_fields.Integer(metadata={"description": "bridge only: the stored payload, for staff to "
                                                                "fix and replay"})


class ApiErrorSchema(Schema):
    """DESIGN §4.2: {"error": {"code", "message", "fields"?}}."""

    error = ma_fields.Nested(ApiErrorBodySchema, required=True)


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
        return error_response(status, code, HTTP_MESSAGES.get(status) or exc.description or "请求失败")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        db.session.rollback()
        log.exception("unhandled error")
        return error_response(500, "internal_error", http_message(500))
