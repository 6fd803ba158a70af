"""The RQ worker entry: ``python -m jobs.worker [--with-cron] [queues...]``.

Builds the app once, pushes an app context and passes ``connection=`` explicitly. Jobs run
in forked work horses; the database pool is reset in each child so no connection is
shared across processes. ``--with-cron`` also runs the cron scheduler in a child process.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os

from rq import Worker

from app.queue import QUEUES


def main() -> None:
    parser = argparse.ArgumentParser(description="热力客服后台任务进程 (RQ worker)")
    parser.add_argument("queues", nargs="*", default=list(QUEUES))
    parser.add_argument("--with-cron", action="store_true", help="also run the cron scheduler")
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    args = parser.parse_args()

    from app import create_app
    from app.extensions import db

    app = create_app()
    with app.app_context():
        os.register_at_fork(after_in_child=lambda: db.engine.dispose(close=False))
        cron = None
        if args.with_cron:
            from jobs import cron as cron_module

            cron = multiprocessing.get_context("spawn").Process(target=cron_module.main, name="rq-cron", daemon=True)
            cron.start()
        worker = Worker(args.queues, connection=app.extensions["redis"])
        try:
            worker.work(burst=args.burst, with_scheduler=True)
        finally:
            if cron is not None:
                cron.terminate()


if __name__ == "__main__":
    main()
