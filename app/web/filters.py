"""Jinja filters for the web pages: local (Beijing) times, money in yuan, durations."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask import Flask


def install(app: Flask) -> None:
    tz = ZoneInfo(app.config["TIMEZONE"])

    @app.template_filter("local")
    def local(value: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        if value is None or value == "":
            return "—"
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:  # naive values (e.g. from RQ) are UTC
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(tz).strftime(fmt)

    @app.template_filter("yuan")
    def yuan(fen: int | None) -> str:
        if fen is None:
            return "—"
        return f"{fen / 100:,.2f}"

    @app.template_filter("pct")
    def pct(value: float | None) -> str:
        return "—" if value is None else f"{value * 100:.1f}%"
