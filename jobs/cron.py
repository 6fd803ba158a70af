"""Periodic work, declared in one list with stable names (run by RQ's cron scheduler).

``python -m jobs.cron`` runs the scheduler. Several may run (one per worker host): only
the holder of a Redis leader lock enqueues, so each periodic job runs once per tick.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import uuid

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


def try_lead(connection, token: str) -> bool:
    """Take the leader lock if it is free (or already ours)."""
    if connection.set(LEADER_KEY, token, nx=True, ex=LEADER_TTL):
        return True
    return connection.get(LEADER_KEY) == token.encode()


def acquire_leadership(connection, token: str) -> None:
    """Block until this process holds the leader lock; keep it renewed in a thread."""
    while not try_lead(connection, token):
        time.sleep(LEADER_TTL / 3)

    def renew():
        while True:
            time.sleep(LEADER_TTL / 3)
            if connection.get(LEADER_KEY) != token.encode():
                log.error("cron: lost the leader lock; exiting so another scheduler takes over")
                os._exit(1)
            connection.expire(LEADER_KEY, LEADER_TTL)

    threading.Thread(target=renew, daemon=True, name="cron-leader").start()


def main() -> None:
    from app import create_app

    app = create_app()
    with app.app_context():
        connection = app.extensions["redis"]
        token = uuid.uuid4().hex
        log.info("cron: waiting for the leader lock")
        acquire_leadership(connection, token)
        log.info("cron: leader; scheduling %d periodic job(s)", len(PERIODIC))
        try:
            build_scheduler(connection).start()
        finally:
            # Hand over at once rather than after the lock's TTL.
            if connection.get(LEADER_KEY) == token.encode():
                connection.delete(LEADER_KEY)


if __name__ == "__main__":
    main()
