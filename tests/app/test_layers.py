"""The layers: the app (domain, web, demo) never imports the jobs; the jobs read what staff set
through the app's services. Only app/__init__.py registers the jobs' command-line groups."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLI_REGISTRATION = ROOT / "app" / "__init__.py"


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_the_app_never_imports_the_jobs():
    offenders = [f"{path.relative_to(ROOT)}:{line} imports {name}"
                 for path in sorted((ROOT / "app").rglob("*.py")) if path != CLI_REGISTRATION
                 for line, name in _imports(path) if name == "jobs" or name.startswith("jobs.")]
    assert offenders == []


def test_the_run_time_broadcast_rate_is_one_value_for_the_console_and_the_workers(app, db):
    from app.services import run_settings
    from jobs import broadcast

    try:
        run_settings.set_broadcast_rate(1234)
        assert broadcast.rate_per_minute() == run_settings.broadcast_rate() == 1234
        run_settings.set_broadcast_rate(None)
        assert broadcast.rate_per_minute() == app.config["BROADCAST_RATE_PER_MINUTE"]
    finally:
        run_settings.set_broadcast_rate(None)
