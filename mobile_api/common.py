"""Shared pieces of the mobile API: the blueprint class (with multipart input), the error
answers documented (app/http_errors.py's schema), pagination and the 401/503 errors."""
from __future__ import annotations

from marshmallow import Schema, fields, validate
from sqlalchemy import func, select
from webargs.multidictproxy import MultiDictProxy
from werkzeug.datastructures import CombinedMultiDict

from app.errors import ServiceUnavailableError, UnauthorizedError  # noqa: F401 (re-exported)
from app.extensions import db
from app.http_errors import ApiErrorSchema, http_message
from app.http_limits import limit_blueprint
from app.openapi import Blueprint, _Parser


class _MobileParser(_Parser):
    __location_map__ = {**_Parser.__location_map__, "multipart": "load_multipart"}

    def load_multipart(self, req, schema):
        """Form fields and files of one multipart/form-data body, as one set of arguments."""
        return MultiDictProxy(CombinedMultiDict([req.files, req.form]), schema)


JSON_BODY_BYTES = 64 * 1024   # a JSON request of the mini-program; uploads say their own (@body_limit)


class ApiBlueprint(Blueprint):
    """``app.openapi.Blueprint`` plus a ``multipart`` location (fields and files in one body),
    and a body limit for JSON requests (app/http_limits.py)."""

    ARGUMENTS_PARSER = _MobileParser()
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {
        **Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING, "multipart": "multipart/form-data",
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        limit_blueprint(self, JSON_BODY_BYTES)


BEARER = [{"bearer": []}]


def documented(bp: Blueprint, *statuses: int, auth: bool = True):
    """Document our error answers (and the bearer token) on an endpoint."""

    def decorator(func):
        for status in sorted({401, *statuses} if auth else set(statuses)):
            func = bp.alt_response(status, schema=ApiErrorSchema, description=http_message(status))(func)
        if auth:
            func = bp.doc(security=BEARER)(func)
        return func

    return decorator


class PageArgs(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


def page_schema(item_schema: type[Schema], name: str, **extra) -> type[Schema]:
    """A list answer: {"items": [...], "total", "page", "per_page", ...extra}."""
    attrs = {
        "items": fields.List(fields.Nested(item_schema), required=True),
        "total": fields.Integer(required=True),
        "page": fields.Integer(required=True),
        "per_page": fields.Integer(required=True),
        **extra,
    }
    return Schema.from_dict(attrs, name=name)


def paginate(query, page: int, per_page: int) -> dict:
    """Run a SELECT of ORM rows one page at a time, with the total count."""
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    items = list(db.session.scalars(query.limit(per_page).offset((page - 1) * per_page)))
    return {"items": items, "total": total, "page": page, "per_page": per_page}


def paginate_list(rows: list, page: int, per_page: int) -> dict:
    start = (page - 1) * per_page
    return {"items": rows[start:start + per_page], "total": len(rows), "page": page, "per_page": per_page}
