"""The small enqueue interface services and blueprints use; nothing here imports jobs/.

Jobs are enqueued by dotted path (``"jobs.outbox.deliver_outbox_message"``), always after
the database commit, so a worker never runs before the row it needs exists.
"""
from __future__ import annotations

import logging

import redis
from flask import current_app
from rq import Queue, Retry

log = logging.getLogger(__name__)

# Queues by urgency: workers listen in this order.
QUEUES = ("notify", "default", "bulk")


def get_redis() -> redis.Redis:
    return current_app.extensions["redis"]


def get_queue(name: str = "default") -> Queue:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=get_redis())


def enqueue(func_path: str, *args, queue: str = "default", job_id: str | None = None,
            retry: Retry | None = None, timeout: int = 300, **kwargs):
    """Enqueue a job by dotted path with a default retry policy."""
    return get_queue(queue).enqueue(
        func_path,
        *args,
        job_id=job_id,
        retry=retry if retry is not None else Retry(max=3, interval=[10, 60, 300]),
        job_timeout=timeout,
        **kwargs,
    )


def enqueue_each(func_path: str, args_list: list[tuple], *, queue: str = "default",
                 job_ids: list[str | None] | None = None, retry: Retry | None = None, timeout: int = 300) -> list:
    """Enqueue one job per argument tuple in a single Redis round trip (RQ's enqueue_many)."""
    q = get_queue(queue)
    job_ids = job_ids or [None] * len(args_list)
    retry = retry if retry is not None else Retry(max=3, interval=[10, 60, 300])
    return q.enqueue_many([q.prepare_data(func_path, args=args, job_id=job_id, retry=retry, timeout=timeout)
                           for args, job_id in zip(args_list, job_ids)])


def enqueue_for_ids(func_path: str, ids, *, job_prefix: str, queue: str = "default") -> int:
    """A sweeper's work: ``func_path(id)`` for each id (job ids ``<job_prefix>-<id>``), in one
    round trip; returns how many."""
    ids = list(ids)
    if ids:
        enqueue_each(func_path, [(i,) for i in ids], queue=queue, job_ids=[f"{job_prefix}-{i}" for i in ids])
    return len(ids)


class Deferred(Exception):
    """Raised by a job's work to say "not now, try again at ``until``" — e.g. WeChat's
    per-minute limit (45011) or its spent daily quota (45009). The caller keeps the work
    durable (an outbox row, a delivery row) with that time instead of hot-retrying."""

    def __init__(self, until, reason: str):
        super().__init__(reason)
        self.until = until
        self.reason = reason
