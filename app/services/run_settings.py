"""Settings staff may change while the service runs (console 管理 → 运行设置, `flask jobs rate`).

Kept in Redis, so every web process and every worker reads the same value and a change takes
effect at once, without a restart; cleared, the start-time setting from app.config applies
again. The web and the CLI write here, the jobs read here — neither imports the other.

- the broadcast rate: messages a minute for all broadcast workers together (the token bucket
  in ``jobs.broadcast`` reads it every few seconds); default ``BROADCAST_RATE_PER_MINUTE``.
"""
from __future__ import annotations

from flask import current_app

BROADCAST_RATE_KEY = "broadcast:rate-per-minute"
DEFAULT_BROADCAST_RATE = 6000   # WeChat publishes no per-second cap; 100k/day template quota
MAX_BROADCAST_RATE = 100000     # messages a minute: WeChat's template quota is 100k a day by default


def default_broadcast_rate() -> int:
    """The start-time broadcast rate (messages a minute)."""
    return int(current_app.config.get("BROADCAST_RATE_PER_MINUTE", DEFAULT_BROADCAST_RATE))


def broadcast_rate() -> int:
    """The broadcast rate in force (messages a minute): the run-time value, else the default."""
    override = current_app.extensions["redis"].get(BROADCAST_RATE_KEY)
    if override:
        return max(int(override), 1)
    return default_broadcast_rate()


def set_broadcast_rate(value: int | None) -> None:
    """Set the run-time broadcast rate for every process; None goes back to the default."""
    redis = current_app.extensions["redis"]
    if value:
        redis.set(BROADCAST_RATE_KEY, int(value))
    else:
        redis.delete(BROADCAST_RATE_KEY)
