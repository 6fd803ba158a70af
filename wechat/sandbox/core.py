"""The sandbox's shared context: settings, store, clock, the people and their conversations."""
from __future__ import annotations

import json
import secrets
import string
import time
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any, Iterator

from .config import BEIJING, build_config
from .crypto import MessageCrypto
from .errors import ControlError
from .pay import load_pay_keys
from .store import Store

_OPENID_CHARS = string.ascii_letters + string.digits + "-_"
# Settings read once per WeChat API call (see Sandbox.snapshot); None outside a call.
_SNAPSHOT: ContextVar[dict | None] = ContextVar("sandbox_snapshot", default=None)


def make_openid(prefix: str = "o") -> str:
    """28 characters like WeChat's openids and unionids."""
    return prefix + "".join(secrets.choice(_OPENID_CHARS) for _ in range(28 - len(prefix)))


class Sandbox:
    """One per process; every piece of state lives in the store, never in this object."""

    def __init__(self, config: dict | None = None):
        self.config = build_config(config)
        self.store = Store(self.config["store_path"])
        aes_key = self.config["aes_key"]
        self.crypto = (
            MessageCrypto(self.config["token"], aes_key, self.config["oa_appid"]) if aes_key else None
        )
        self.pay_keys = load_pay_keys(self)  # keys live in the store: every process signs alike

    # --- settings of the store, read once per API call ---
    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One WeChat API call: the clock offset and the fault settings are read from the
        store once, not at every use (they change only through the /sandbox/... control
        endpoints, never during an API call). Threads the call starts read afresh."""
        token = _SNAPSHOT.set({})
        try:
            yield
        finally:
            _SNAPSHOT.reset(token)

    def setting(self, key: str, default: Any = None) -> Any:
        """A JSON value of the store's kv table (memoised inside ``snapshot``)."""
        memo = _SNAPSHOT.get()
        if memo is None:
            return self.store.get_json(key, default)
        if key not in memo:
            memo[key] = self.store.get_json(key, default)
        return memo[key]

    # --- clock: real time plus an offset tests can move forward (POST /sandbox/clock) ---
    def now(self) -> float:
        return time.time() + self.setting("clock_offset", 0)

    def beijing_now(self) -> datetime:
        return datetime.fromtimestamp(self.now(), BEIJING)

    # --- people ---
    def find_user(self, openid: str):
        """The user whose official-account or mini-program openid this is, or None."""
        return self.store.one(
            "SELECT * FROM users WHERE oa_openid = ? OR mp_openid = ?", openid, openid
        )

    def user_or_404(self, openid: str):
        user = self.find_user(openid)
        if user is None:
            raise ControlError(404, f"no sandbox user with openid {openid}")
        return user

    def record(self, user: str, direction: str, kind: str, body: dict, msgid=None, conn=None) -> int:
        """Add a line to a user's conversation (keyed by the user's OA openid)."""
        args = (user, direction, kind, None if msgid is None else str(msgid), json.dumps(body, ensure_ascii=False), self.now())
        sql = "INSERT INTO messages (user, direction, kind, msgid, body, created_at) VALUES (?, ?, ?, ?, ?, ?)"
        if conn is not None:
            return conn.execute(sql, args).lastrowid
        with self.store.tx() as c:
            return c.execute(sql, args).lastrowid

    def conversation(self, user: str, outbound_only: bool = False, after: int = 0) -> list[dict]:
        sql = "SELECT * FROM messages WHERE user = ? AND id > ?"
        if outbound_only:
            sql += " AND direction = 'out'"
        rows = self.store.all(sql + " ORDER BY id", user, after)
        return [
            {
                "id": row["id"],
                "direction": row["direction"],
                "kind": row["kind"],
                "msgid": row["msgid"],
                "created_at": int(row["created_at"]),
                **json.loads(row["body"]),
            }
            for row in rows
        ]


def user_json(row) -> dict:
    return {
        "openid": row["oa_openid"],
        "oa_openid": row["oa_openid"],
        "mp_openid": row["mp_openid"],
        "unionid": row["unionid"],
        "nickname": row["nickname"],
        "subscribed": bool(row["subscribed"]),
        "subscribe_time": row["subscribe_time"],
        "tagid_list": json.loads(row["tagids"]),
    }
