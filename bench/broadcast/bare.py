"""The broadcast bench's baseline: a plain HTTP client sending template messages.

    python -m bench.broadcast.bare < job.json     # prints one JSON line: sent, errors, first, last, cpu

The job (JSON on stdin): ``url`` (message/template/send with its access_token), ``body`` (the
template message the workers send, without ``touser`` and ``client_msg_id``), ``openids``
(this process's recipients), ``threads`` and ``start_at`` (a ``time.time()`` every process
waits for, so they start together). Each thread posts with its own keep-alive
``requests.Session`` — what any Python client would do, with none of our bookkeeping.
"""
from __future__ import annotations

import json
import sys
import threading
import time
import uuid

import requests


def send(job: dict) -> dict:
    openids = job["openids"]
    cursor = iter(range(len(openids)))
    lock = threading.Lock()
    result = {"sent": 0, "errors": 0, "first": None, "last": None, "error": None}

    def run():
        session = requests.Session()
        while True:
            with lock:
                i = next(cursor, None)
            if i is None:
                return
            body = {**job["body"], "touser": openids[i], "client_msg_id": uuid.uuid4().hex}
            started = time.time()
            try:
                answer = session.post(job["url"], json=body, timeout=10).json()
                ok = answer.get("errcode", 0) == 0
            except (requests.RequestException, ValueError) as exc:
                ok, answer = False, {"exception": repr(exc)}
            ended = time.time()
            with lock:
                result["sent" if ok else "errors"] += 1
                if not ok and result["error"] is None:
                    result["error"] = answer
                result["first"] = started if result["first"] is None else min(result["first"], started)
                result["last"] = ended if result["last"] is None else max(result["last"], ended)

    threads = [threading.Thread(target=run) for _ in range(job["threads"])]
    time.sleep(max(0.0, job["start_at"] - time.time()))
    cpu = time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result["cpu"] = time.process_time() - cpu
    return result


if __name__ == "__main__":
    print(json.dumps(send(json.load(sys.stdin))))
