"""Fixtures of the jobs tests: residents known to the WeChat sandbox, and real worker processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.factories import bind_wechat_user

ROOT = Path(__file__).resolve().parents[2]


def template_titles(inbox: list[dict]) -> list[str]:
    """What each message a user received shows first: a template or subscribe message the
    title of its template (as the phone shows the card), any other message its first line."""
    titles = []
    for m in inbox:
        if m.get("kind") in ("template", "subscribe"):
            titles.append(m["title"])
        else:
            titles.append(str(m.get("content", "")).split("\n")[0])
    return titles


def card(m: dict) -> dict:
    """A template or subscribe message as the phone shows it: {label: value} in the
    template's order (the sandbox keeps the template's own labels)."""
    return dict(m.get("rows") or [])


def message_text(m: dict) -> str:
    """All a person reads in one message (a card's title and rows, or the text)."""
    if m.get("kind") in ("template", "subscribe"):
        return "\n".join([m["title"]] + [f"{k}:{v}" for k, v in m.get("rows") or []])
    return str(m.get("content", ""))


def mentions(inbox: list[dict], text: str) -> int:
    """How many of the messages say ``text`` (through whatever channel they came)."""
    return sum(text in message_text(m) for m in inbox)


@pytest.fixture()
def make_resident(db, wechat, make_household):
    """A WeChat user in the sandbox, known to us and bound to a household (made or given)."""

    def make(household=None, *, follow=True, **household_kw):
        household = household or make_household(**household_kw)
        person, user = bind_wechat_user(db, wechat, household=household, follow=follow, subscribed=True)
        return person["openid"], user, household

    return make


@pytest.fixture()
def bind_staff(db, wechat):
    """Give a staff member a WeChat account in the sandbox; returns the openid."""

    def bind(staff):
        return bind_wechat_user(db, wechat, staff=staff, mini_program=False)[0]["openid"]

    return bind


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc), children first found."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces and parentheses
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class WorkerProcess:
    """``python -m jobs.worker`` as a real process on the test database, Redis and sandbox."""

    def __init__(self, app, tmp_path: Path, *args: str):
        env = dict(os.environ)
        env.update({
            "APP_ENV": "development",
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": app.config["REDIS_URL"],
            "WECHAT_API_BASE": app.config["WECHAT_API_BASE"],
            "INSTANCE_PATH": str(tmp_path),
            "PYTHONUNBUFFERED": "1",
        })
        self.log = open(tmp_path / f"worker-{time.monotonic_ns()}.log", "w")
        # Its own session: the worker, its work horse and its cron child form one process
        # group, so "the machine died" is one SIGKILL to the group.
        self.proc = subprocess.Popen([sys.executable, "-m", "jobs.worker", *args], cwd=ROOT, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self, sig=signal.SIGKILL) -> None:
        """The machine died: the worker, its cron child and its work horse at once. RQ puts
        each work horse in a process group of its own (``os.setpgrp``), so the horse is found
        as a descendant of the worker, not through the worker's group."""
        if self.proc.poll() is None:
            victims = _descendants(self.proc.pid)
            os.killpg(self.proc.pid, sig)
            for pid in victims:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        self.proc.wait(timeout=20)
        self.log.close()

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()


@pytest.fixture()
def start_worker(app, tmp_path):
    started: list[WorkerProcess] = []

    def start(*args: str) -> WorkerProcess:
        w = WorkerProcess(app, tmp_path, *args)
        started.append(w)
        return w

    yield start
    for w in started:
        if w.proc.poll() is None:
            w.kill(signal.SIGKILL)


def wait_until(predicate, timeout: float = 60, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
