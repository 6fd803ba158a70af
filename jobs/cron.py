"""Periodic work, declared in one list with stable names (run by RQ's cron scheduler).

``python -m jobs.cron`` runs the scheduler. Several may run (one per worker host): only
the holder of a Redis leader lock enqueues, so each periodic job runs once per tick.
"""
from __future__ import annotations

import logging
import os
import threading
import time

from redis.exceptions import LockError
from redis.lock import Lock
from rq.cron import CronScheduler

log = logging.getLogger(__name__)

# (dotted path, queue, seconds between runs)
PERIODIC = [
    ("jobs.outbox.sweep_outbox", "default", 15),
    ("jobs.payments.close_stale_payments", "default", 300),
    ("jobs.refunds.check_refunds", "default", 600),
    # Daily, once the trade bill is ready (after 10:00 Beijing; the job checks the hour).
    ("jobs.reconcile.reconcile_due", "default", 1800),
    ("jobs.reminders.scan_deadlines", "default", 60),
    ("jobs.broadcast.sweep_broadcasts", "default", 30),
    ("jobs.notify.recover_notices", "default", 30),
    ("jobs.outage_notices.start_due_outages", "default", 60),
    ("jobs.outage_notices.close_unconfirmed_reports", "default", 300),
    ("jobs.arrears.run_arrears_campaign", "bulk", 3600),
    ("jobs.sessions.purge_sessions", "default", 86400),
    ("jobs.identity.link_daily", "bulk", 86400),
]

LEADER_KEY = "cron:leader:lock"
LEADER_TTL = 30


def build_scheduler(connection) -> CronScheduler:
    import importlib

    scheduler = CronScheduler(connection=connection)
    for path, queue, interval in PERIODIC:
        module, _, name = path.rpartition(".")
        func = getattr(importlib.import_module(module), name)
        scheduler.register(func, queue, interval=interval, name=path, job_timeout=300)
    return scheduler


def leader_lock(connection) -> Lock:
    """The leader lock: redis-py's Lock (a random token; renewal and release check it
    atomically), shared by this process's threads (the renewing thread included)."""
    return connection.lock(LEADER_KEY, timeout=LEADER_TTL, thread_local=False)


def try_lead(lock: Lock) -> bool:
    """Take the leader lock if it is free; if it is already ours, renew it."""
    if lock.owned():
        lock.reacquire()
        return True
    return lock.acquire(blocking=False)


def acquire_leadership(lock: Lock) -> None:
    """Block until this process holds the leader lock; keep it renewed in a thread."""
    while not try_lead(lock):
        time.sleep(LEADER_TTL / 3)

    def renew():
        while True:
            time.sleep(LEADER_TTL / 3)
            try:
                lock.reacquire()
            except LockError:
                log.error("cron: lost the leader lock; exiting so another scheduler takes over")
                os._exit(1)

    threading.Thread(target=renew, daemon=True, name="cron-leader").start()


def main() -> None:
    from app import create_app

    app = create_app()
    with app.app_context():
        connection = app.extensions["redis"]
        lock = leader_lock(connection)
        log.info("cron: waiting for the leader lock")
        acquire_leadership(lock)
        log.info("cron: leader; scheduling %d periodic job(s)", len(PERIODIC))
        try:
            build_scheduler(connection).start()
        finally:
            # Hand over at once rather than after the lock's TTL (if it is still ours).
            if lock.owned():
                lock.release()


if __name__ == "__main__":
    main()
