"""The app's one clock: every "now" and "today" of the domain is read here.

Production reads the real time. Tests move the calendar with ``travel_to`` (time keeps
running from the chosen instant, so order and durations stay real), which is how a test
that is about dates stops depending on the day it runs — nothing is patched.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

_offset = timedelta(0)


def utcnow() -> datetime:
    return datetime.now(timezone.utc) + _offset


def local_today(tz: str) -> date:
    """Today's calendar date in the time zone ``tz`` (due dates are local dates)."""
    return utcnow().astimezone(ZoneInfo(tz)).date()


def travel_to(instant: datetime) -> None:
    """Let ``utcnow()`` read ``instant`` now and run on from there (tests and demos)."""
    global _offset
    if instant.tzinfo is None:
        raise ValueError("travel_to needs a timezone-aware instant")
    _offset = instant - datetime.now(timezone.utc)


def back_to_real_time() -> None:
    global _offset
    _offset = timedelta(0)
