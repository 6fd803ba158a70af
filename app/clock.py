"""The app's one clock: every "now" and "today" of the domain is read here.

Production reads the real time. Tests move the calendar with ``travel_to`` (time keeps
running from the chosen instant, so order and durations stay real), which is how a test
that is about dates stops depending on the day it runs — nothing is patched.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context

# The one time zone. Beijing time is what WeChat Pay's and the bridge's zone-less times mean
# (a wire fact), and the default of the app's calendar (``TIMEZONE``, app/config.py): due
# dates, "today", quiet hours and every time shown to people are read through ``local_tz``.
DEFAULT_TIMEZONE = "Asia/Shanghai"
BEIJING = ZoneInfo(DEFAULT_TIMEZONE)

_offset = timedelta(0)


def utcnow() -> datetime:
    return datetime.now(timezone.utc) + _offset


def local_tz() -> ZoneInfo:
    """The app's time zone (``TIMEZONE``); Beijing outside an app context."""
    if has_app_context():
        return ZoneInfo(current_app.config["TIMEZONE"])
    return BEIJING


def local_now(now: datetime | None = None) -> datetime:
    """``now`` (default: the clock's now) in the app's time zone."""
    return (now or utcnow()).astimezone(local_tz())


def local_day(now: datetime | None = None) -> date:
    """The local calendar date of ``now`` (default: today; due dates are local dates)."""
    return local_now(now).date()


def travel_to(instant: datetime) -> None:
    """Let ``utcnow()`` read ``instant`` now and run on from there (tests and demos)."""
    global _offset
    if instant.tzinfo is None:
        raise ValueError("travel_to needs a timezone-aware instant")
    _offset = instant - datetime.now(timezone.utc)


def back_to_real_time() -> None:
    global _offset
    _offset = timedelta(0)
