"""GET /healthz: liveness and dependency status (database, Redis, queue depth)."""
from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from app.extensions import db
from app.queue import QUEUES, get_queue, get_redis

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    checks: dict = {}
    ok = True

    started = time.perf_counter()
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = {"ok": True, "backend": db.engine.dialect.name,
                              "ms": round((time.perf_counter() - started) * 1000, 1)}
    except Exception as exc:  # report, never raise: this page must answer
        db.session.rollback()
        ok = False
        checks["database"] = {"ok": False, "error": type(exc).__name__}

    started = time.perf_counter()
    try:
        get_redis().ping()
        checks["redis"] = {"ok": True, "embedded": current_app.config.get("REDIS_EMBEDDED", False),
                           "ms": round((time.perf_counter() - started) * 1000, 1)}
        checks["queues"] = {name: get_queue(name).count for name in QUEUES}
    except Exception as exc:
        ok = False
        checks["redis"] = {"ok": False, "error": type(exc).__name__}

    return jsonify(status="ok" if ok else "degraded", checks=checks), 200 if ok else 503
