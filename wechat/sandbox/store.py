"""The sandbox's own state in one SQLite file (WAL), shared by every process that mounts it.

Connections are pooled per process. Writes that read-then-modify run in `BEGIN IMMEDIATE`
transactions so that several gunicorn workers never double-spend a code, a quota or a fault.
Nothing slow (HTTP calls) ever runs inside a transaction.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
from contextlib import contextmanager
from typing import Any, Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    oa_openid TEXT PRIMARY KEY,
    mp_openid TEXT NOT NULL UNIQUE,
    unionid TEXT NOT NULL UNIQUE,
    nickname TEXT NOT NULL,
    subscribed INTEGER NOT NULL,
    subscribe_time INTEGER,
    subscribe_scene TEXT,
    qr_scene TEXT,
    last_message_at REAL,
    last_event_at REAL,
    tagids TEXT NOT NULL DEFAULT '[]',
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY,
    appid TEXT NOT NULL,
    issued_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    retired_at REAL
);
CREATE INDEX IF NOT EXISTS tokens_appid ON tokens (appid, retired_at);
CREATE TABLE IF NOT EXISTS codes (
    code TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    openid TEXT NOT NULL,
    scope TEXT,
    created_at REAL NOT NULL,
    used_at REAL
);
CREATE TABLE IF NOT EXISTS web_tokens (
    token TEXT PRIMARY KEY,
    openid TEXT NOT NULL,
    scope TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT NOT NULL,
    direction TEXT NOT NULL,
    kind TEXT NOT NULL,
    msgid TEXT,
    body TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_user ON messages (user, id);
CREATE TABLE IF NOT EXISTS consents (
    user TEXT NOT NULL,
    template_id TEXT NOT NULL,
    remaining INTEGER NOT NULL,
    PRIMARY KEY (user, template_id)
);
CREATE TABLE IF NOT EXISTS counters (
    key TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS faults (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    api TEXT,
    value TEXT NOT NULL,
    remaining INTEGER
);
CREATE TABLE IF NOT EXISTS media (
    media_id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    content_type TEXT NOT NULL,
    filename TEXT NOT NULL,
    data BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS qrcodes (
    ticket TEXT PRIMARY KEY,
    action_name TEXT NOT NULL,
    scene TEXT NOT NULL,
    expires_at REAL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tags (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS client_msgids (
    key TEXT PRIMARY KEY,
    msgid TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    out_trade_no TEXT PRIMARY KEY,
    mchid TEXT NOT NULL,
    appid TEXT NOT NULL,
    params TEXT NOT NULL,
    payer_openid TEXT NOT NULL,
    total INTEGER NOT NULL,
    notify_url TEXT NOT NULL,
    trade_state TEXT NOT NULL,
    transaction_id TEXT UNIQUE,
    success_time TEXT,
    notification TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS prepays (
    prepay_id TEXT PRIMARY KEY,
    out_trade_no TEXT NOT NULL,
    appid TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    out_trade_no TEXT NOT NULL,
    status INTEGER,
    answer TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS refunds (
    out_refund_no TEXT PRIMARY KEY,
    refund_id TEXT NOT NULL UNIQUE,
    out_trade_no TEXT NOT NULL,
    mchid TEXT NOT NULL,
    params TEXT NOT NULL,
    refund INTEGER NOT NULL,
    total INTEGER NOT NULL,
    reason TEXT,
    notify_url TEXT,
    status TEXT NOT NULL,
    user_received_account TEXT,
    create_time TEXT NOT NULL,
    success_time TEXT,
    notification TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS refunds_trade ON refunds (out_trade_no);
CREATE TABLE IF NOT EXISTS refund_notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    out_refund_no TEXT NOT NULL,
    status INTEGER,
    answer TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS templates (
    app TEXT NOT NULL,
    template_id TEXT NOT NULL,
    type TEXT NOT NULL,
    title TEXT NOT NULL,
    content TEXT NOT NULL,
    example TEXT NOT NULL,
    enums TEXT NOT NULL,
    primary_industry TEXT NOT NULL,
    deputy_industry TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (app, template_id)
);
CREATE TABLE IF NOT EXISTS bills (
    key TEXT PRIMARY KEY,
    content BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS bill_downloads (
    token TEXT PRIMARY KEY,
    bill_key TEXT NOT NULL,
    mchid TEXT NOT NULL,
    tar_type TEXT,
    expires_at REAL NOT NULL
);
"""


class Store:
    """A small pool of SQLite connections to one file."""

    def __init__(self, path: str):
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        self._pool: list[sqlite3.Connection] = []
        self._pool_lock = threading.Lock()  # guards the list only, never a query
        self._pid = os.getpid()
        with self._connection() as conn:
            conn.executescript(SCHEMA)

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        if os.getpid() != self._pid:  # forked (gunicorn --preload): never share a connection
            self._pool, self._pid = [], os.getpid()
        with self._pool_lock:
            conn = self._pool.pop() if self._pool else None
        conn = conn or self._open()
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.rollback()
            with self._pool_lock:
                if len(self._pool) < 16:
                    self._pool.append(conn)
                    conn = None
            if conn is not None:
                conn.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, taken before the first read (BEGIN IMMEDIATE)."""
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as conn:
            yield conn

    # Small conveniences used everywhere.
    def one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        with self.read() as conn:
            return conn.execute(sql, args).fetchone()

    def all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        with self.read() as conn:
            return conn.execute(sql, args).fetchall()

    def run(self, sql: str, *args: Any) -> int:
        with self.tx() as conn:
            return conn.execute(sql, args).rowcount

    def get_json(self, key: str, default: Any = None) -> Any:
        row = self.one("SELECT value FROM kv WHERE key = ?", key)
        return json.loads(row["value"]) if row else default

    def set_json(self, key: str, value: Any) -> None:
        self.run("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", key, json.dumps(value))

    def set_json_once(self, key: str, value: Any) -> Any:
        """Store value unless a value is there; return what is stored (first writer wins)."""
        with self.tx() as conn:
            conn.execute("INSERT OR IGNORE INTO kv (key, value) VALUES (?, ?)", (key, json.dumps(value)))
            row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return json.loads(row["value"])
