"""Benchmark: safe-mode text → FAQ answer through /wechat/callback, against a bare wechatpy
echo endpoint on the same gunicorn in the same run. Prints throughput, p50/p99 latency and
the ratio callback/echo (target ≥ 0.7, median of rounds) and the
p99 ratio (target < 2). The messages are QUESTIONS in turn: four of the six are answered from
the FAQ (the fast path: one Redis round trip, one autocommitted row); 家里暖气片漏水了 and 缴费
take the full path (one transaction: the dedupe row and one query for what is known of the sender).

    .venv/bin/python bench/callback/run.py [--requests 3000] [--rounds 5] [--concurrency 4] [--workers 2] [--threads 2]

Uses a throw-away instance directory (SQLite + embedded Redis) unless BENCH_DATABASE_URL /
BENCH_REDIS_URL are set. Only loopback addresses are used; the run is bounded by --requests.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import requests
from wechatpy.crypto import WeChatCrypto

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from app.embedded_redis import ensure_embedded_redis  # noqa: E402
from bench.lifecycle import stop_processes, stops_what_it_starts  # noqa: E402

TOKEN, APPID = "bench-token", "wx_bench_official"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
QUESTIONS = ["暖气不热怎么办", "家里暖气片漏水了", "滞纳金怎么算", "我想办理报停", "发票怎么开", "缴费"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(env: dict) -> None:
    """Migrate and load the FAQ into the bench database."""
    code = (
        "from app import create_app\n"
        "from app.extensions import db\n"
        "from flask_migrate import upgrade\n"
        "app = create_app()\n"
        "with app.app_context():\n"
        "    upgrade()\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def signed_push(crypto: WeChatCrypto, n: int, openid: str) -> tuple[dict, bytes]:
    timestamp, nonce = str(int(time.time())), str(100000 + n)
    xml = (f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
           f"<CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
           f"<Content><![CDATA[{QUESTIONS[n % len(QUESTIONS)]}]]></Content><MsgId>{10**12 + n}</MsgId></xml>")
    envelope = crypto.encrypt_message(xml, nonce, timestamp)
    # encrypt_message makes a reply envelope; a push carries the same Encrypt and signature.
    from xml.etree import ElementTree
    root = ElementTree.fromstring(envelope)
    encrypted = root.findtext("Encrypt")
    signature = hashlib.sha1("".join(sorted([TOKEN, timestamp, nonce])).encode()).hexdigest()
    params = {"signature": signature, "timestamp": timestamp, "nonce": nonce, "openid": openid,
              "encrypt_type": "aes", "msg_signature": root.findtext("MsgSignature")}
    body = f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    return params, body.encode()


def load(url: str, pushes: list, concurrency: int) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    cursor = iter(range(len(pushes)))

    def worker():
        session = requests.Session()
        while True:
            with lock:
                i = next(cursor, None)
            if i is None:
                return
            params, body = pushes[i]
            started = time.perf_counter()
            res = session.post(url, params=params, data=body, timeout=10)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if res.status_code != 200 or b"<Encrypt>" not in res.content:
                    errors[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, latencies, errors[0]


def server_cpu(proc: subprocess.Popen) -> float:
    """CPU seconds used so far by gunicorn's master and workers."""
    import psutil

    parent = psutil.Process(proc.pid)
    total = 0.0
    for p in [parent, *parent.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) >= 100 else max(values) * 1000


def measure(args, instance: str):
    """Start gunicorn on the bench database and run the interleaved rounds."""
    port = free_port()
    env = {**os.environ, "INSTANCE_PATH": instance, "WECHAT_TOKEN": TOKEN, "WECHAT_APPID": APPID,
           "WECHAT_AES_KEY": AES_KEY, "PYTHONPATH": str(ROOT)}
    env["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{instance}/bench.db")
    if os.environ.get("BENCH_REDIS_URL"):
        env["REDIS_URL"] = os.environ["BENCH_REDIS_URL"]
    else:
        env["REDIS_URL"] = ensure_embedded_redis(f"{instance}/redis.sock")
    prepare(env)

    gunicorn = [str(Path(sys.executable).with_name("gunicorn")), "--bind", f"127.0.0.1:{port}",
                "--workers", str(args.workers), "--threads", str(args.threads), "--log-level", "warning", *os.environ.get("BENCH_GUNICORN_EXTRA", "").split(), "bench.callback.app:app"]
    server = subprocess.Popen(gunicorn, env=env, cwd=ROOT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                requests.get(base + "/healthz", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)
        openids = [f"oBENCH{i:022d}" for i in range(200)]
        run = int(time.time()) * 10**6  # MsgIds unique across runs on a kept database
        make = lambda offset: [signed_push(crypto, run + offset + n, openids[n % len(openids)])
                               for n in range(args.requests)]
        load(base + "/bench/echo", make(0)[:100], args.concurrency)  # warm up both paths
        load(base + "/wechat/callback", make(200_000)[:100], args.concurrency)
        # Interleaved rounds, so a noisy neighbour on the machine hits both sides alike.
        echo = {"time": 0.0, "lat": [], "err": 0, "cpu": 0.0}
        cb = {"time": 0.0, "lat": [], "err": 0, "cpu": 0.0}
        ratios = []
        per_round = max(args.requests // args.rounds, 100)
        for r in range(args.rounds):
            rates = []
            for side, path, offset in ((echo, "/bench/echo", 400_000), (cb, "/wechat/callback", 600_000)):
                cpu_before = server_cpu(server)
                elapsed, lat, err = load(base + path, make(offset + r * per_round)[:per_round], args.concurrency)
                side["cpu"] += server_cpu(server) - cpu_before
                side["time"] += elapsed
                side["lat"] += lat
                side["err"] += err
                rates.append(per_round / elapsed)
            ratios.append(rates[1] / rates[0])
    finally:
        stop_processes([server])  # gunicorn's master and its workers
    return env, echo, cb, ratios, per_round



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="per side, over all rounds")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    instance = tempfile.mkdtemp(prefix="bench-callback-")
    with stops_what_it_starts(f"{instance}/redis.sock"):
        env, echo, cb, ratios, per_round = measure(args, instance)

    n = per_round * args.rounds
    print(f"callback bench, {datetime.now().astimezone():%Y-%m-%d %H:%M}: {args.rounds} interleaved rounds × "
          f"{per_round} requests each side, concurrency {args.concurrency}, gunicorn {args.workers} workers × "
          f"{args.threads} threads, database {env['DATABASE_URL'].split(':')[0]}; {os.cpu_count()} cores, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for label, side in (("bare wechatpy echo ", echo), ("callback           ", cb)):
        print(f"  {label}: {n / side['time']:8.1f} req/s  p50 {pct(side['lat'], 50):6.1f} ms  "
              f"p99 {pct(side['lat'], 99):6.1f} ms  server CPU {side['cpu'] / n * 1000:.2f} ms/req  errors {side['err']}")
    ratio = statistics.median(ratios)
    p99 = pct(cb["lat"], 99) / pct(echo["lat"], 99)
    print(f"  ratio callback/echo: {ratio:.2f} median of rounds ({min(ratios):.2f}–{max(ratios):.2f})  "
          f"(target ≥ 0.7) {'OK' if ratio >= 0.7 else 'BELOW TARGET'}")
    print(f"  p99 callback/echo: {p99:.2f}  (target < 2) {'OK' if p99 < 2 else 'ABOVE TARGET'}")


if __name__ == "__main__":
    main()
