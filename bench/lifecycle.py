"""Every bench stops what it starts: its embedded Redis, servers and worker processes.

``stops_what_it_starts(socket)`` wraps a bench's run: SIGTERM ends the run the way an
exception does (``finally`` blocks run), and an embedded Redis on ``socket`` that was not
running when the bench began is shut down at the end — one a developer's ``make run``
already had running is left alone. Processes a bench starts with ``start_new_session`` are
stopped with ``stop_processes`` (the whole group: gunicorn's workers, RQ's work horses).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from typing import Iterator

from app.embedded_redis import embedded_redis_running, stop_embedded_redis


def exit_on_sigterm() -> None:
    """SIGTERM (``kill``) raises SystemExit, so ``finally`` blocks stop what the run started."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


@contextmanager
def stops_what_it_starts(redis_socket: str | None) -> Iterator[None]:
    exit_on_sigterm()
    ours = bool(redis_socket) and not os.environ.get("BENCH_REDIS_URL") and not embedded_redis_running(redis_socket)
    try:
        yield
    finally:
        if ours and embedded_redis_running(redis_socket):
            stop_embedded_redis(redis_socket)


def stop_processes(procs: list[subprocess.Popen], timeout: float = 15) -> None:
    """SIGTERM to each process group, SIGKILL after ``timeout`` seconds."""
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)  # the group, even if its leader is gone
        except ProcessLookupError:
            pass
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
