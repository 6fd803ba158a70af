"""Broadcast benchmark: an announcement to N residents through the WeChat sandbox.

    .venv/bin/python bench/broadcast/run.py            # 10k and 100k at a 120,000/min cap, then
                                                       # 120k against the default 100,000/day quota
    .venv/bin/python bench/broadcast/run.py --quick    # 1k and 5k, then 2.4k against a 2,000 quota
    options: --small N --large N --quota-run N --quota N --cap PER_MINUTE --workers N

Everything runs on loopback in a throw-away folder: SQLite + embedded Redis (or
BENCH_DATABASE_URL / BENCH_REDIS_URL), the sandbox as its own process (``python -m
wechat.sandbox``, template-finish events off: nobody listens), and real worker processes
(``python -m jobs.worker``). The sandbox enforces the per-minute cap (45011 beyond it) and the
daily template quota (45009); our token bucket is set to the same cap.

Prints, per run: achieved sends per minute against a bare client in the same run
(``bench/broadcast/bare.py``: the same template payload to the same sandbox from ``--workers``
processes × ``WECHAT_SEND_CONCURRENCY`` threads, half before and half after the broadcast;
target achieved/bare ≥ 0.9), CPU per message of the workers, the bare client and the sandbox,
peak RSS of any worker process (the worker and its work horses, sampled), total time; for the
quota run: where it halted, the status reason staff see, the resume after a simulated reset
(sandbox clock past midnight + our quota flags cleared), and that nobody got two messages.
Everything it starts (sandbox, workers, bare clients, embedded Redis) is stopped at the end,
also on SIGTERM.
"""
from __future__ import annotations

import argparse
import os
import json
import secrets
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.lifecycle import stop_processes, stops_what_it_starts  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Bench:
    def __init__(self, args, tmp: Path):
        self.args = args
        self.tmp = tmp
        os.environ["INSTANCE_PATH"] = str(self.tmp)
        db_url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{self.tmp}/bench.db"
        redis_url = os.environ.get("BENCH_REDIS_URL")
        if not redis_url:
            from app.embedded_redis import ensure_embedded_redis

            redis_url = ensure_embedded_redis(str(self.tmp / "redis.sock"))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/sandbox"
        self.env = {**os.environ, "DATABASE_URL": db_url, "REDIS_URL": redis_url, "APP_ENV": "development",
                    "WECHAT_API_BASE": self.base + "/", "INSTANCE_PATH": str(self.tmp), "PYTHONUNBUFFERED": "1"}
        os.environ.update({k: self.env[k] for k in ("DATABASE_URL", "REDIS_URL", "WECHAT_API_BASE")})
        self.store = self.tmp / "sandbox.db"
        self.procs: list[subprocess.Popen] = []

        from app import create_app

        self.app = create_app()
        self.ctx = self.app.app_context()
        self.ctx.push()
        from flask_migrate import upgrade

        from app.extensions import db

        if db.engine.dialect.name == "postgresql":
            from sqlalchemy import text

            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        upgrade(directory=str(ROOT / "migrations"))
        self.app.extensions["redis"].flushdb()

    # --- processes ---------------------------------------------------------------------------
    def start_sandbox(self):
        log = open(self.tmp / "sandbox.log", "w")
        if self.args.sandbox_workers:
            # gunicorn (gthread): keep-alive connections and several processes sharing the store.
            env = {**self.env, "SANDBOX_STORE": str(self.store), "SANDBOX_PAY_PUBLIC_KEY_PATH": str(self.tmp / "pay.pem")}
            cmd = [sys.executable, "-m", "gunicorn", "-k", "gthread", "--workers", str(self.args.sandbox_workers),
                   "--threads", "8", "--keep-alive", "30", "--bind", f"127.0.0.1:{self.port}", "--preload",
                   "bench.broadcast.sandbox_wsgi:app"]
        else:  # werkzeug's development server, as `make run` starts it (a connection per request)
            env = self.env
            cmd = [sys.executable, "-m", "wechat.sandbox", "--port", str(self.port), "--store", str(self.store),
                   "--no-template-events", "--pay-public-key-path", str(self.tmp / "pay.pem")]
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(p)
        for _ in range(100):
            try:
                requests.get(f"{self.base}/faults", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            raise RuntimeError("sandbox did not start; see " + str(self.tmp / "sandbox.log"))
        # The account's templates, as `flask wechat register-demo` registers them: the sandbox
        # refuses template messages with templates it does not know (40037).
        from wechat.sandbox_link import sandbox_templates

        requests.post(f"{self.base}/templates", json={"templates": sandbox_templates(self.app.config)},
                      timeout=30).raise_for_status()

    def start_workers(self) -> list[subprocess.Popen]:
        workers = []
        for i in range(self.args.workers):
            log = open(self.tmp / f"worker{i}-{time.monotonic_ns()}.log", "w")
            p = subprocess.Popen([sys.executable, "-m", "jobs.worker", "notify", "default", "bulk"], cwd=ROOT,
                                 env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            workers.append(p)
            self.procs.append(p)
        return workers

    def stop(self, procs):
        stop_processes(procs)

    # --- data --------------------------------------------------------------------------------
    def followers(self, n: int) -> list[tuple[str, str]]:
        """n new followers of the account in the sandbox: [(oa_openid, mp_openid)]."""
        now = time.time()
        openids = [("o" + secrets.token_hex(13), "o" + secrets.token_hex(13)) for _ in range(n)]
        with sqlite3.connect(self.store, timeout=30) as conn:
            conn.executemany(
                "INSERT INTO users (oa_openid, mp_openid, unionid, nickname, subscribed, subscribe_time,"
                " subscribe_scene, created_at) VALUES (?, ?, ?, '住户', 1, ?, 'ADD_SCENE_SEARCH', ?)",
                [(oa, mp, "u" + oa[1:], int(now), now) for oa, mp in openids])
        return openids

    def seed(self, n: int) -> tuple[int, int]:
        """n followers in the sandbox and n bound residents here, in bulk; returns (first, last) user ids."""
        from sqlalchemy import func, insert, select

        from app.extensions import db
        from app.models import Community, District, Household, HouseholdBinding, Station, WechatUser

        openids = self.followers(n)
        tag = secrets.token_hex(3)
        d = District(name=f"压测区{tag}")
        st = Station(code=f"B{tag}", name=f"压测站{tag}")
        c = Community(district=d, name=f"压测小区{tag}", station=st)
        db.session.add_all([d, st, c])
        db.session.flush()
        first_user = (db.session.scalar(select(func.max(WechatUser.id))) or 0) + 1
        first_house = (db.session.scalar(select(func.max(Household.id))) or 0) + 1
        chunk = 5000
        for start in range(0, n, chunk):
            part = openids[start:start + chunk]
            db.session.execute(insert(Household), [
                {"id": first_house + start + i, "account_no": f"B{tag}{start + i:07d}", "district_id": d.id,
                 "community_id": c.id, "station_id": st.id, "building": str((start + i) % 40 + 1), "unit": "1",
                 "room": str(start + i), "area_m2": 80, "owner_name": "住户", "status": "active"}
                for i in range(len(part))])
            db.session.execute(insert(WechatUser), [
                {"id": first_user + start + i, "oa_openid": oa, "mp_openid": mp, "subscribed": True}
                for i, (oa, mp) in enumerate(part)])
            db.session.execute(insert(HouseholdBinding), [
                {"wechat_user_id": first_user + start + i, "household_id": first_house + start + i,
                 "proof": "owner_name"} for i in range(len(part))])
        db.session.commit()
        self.station_id = st.id
        return first_user, first_user + n - 1

    # --- one broadcast -----------------------------------------------------------------------
    def broadcast(self, station_id: int, title: str):
        from app.extensions import db
        from app.models import Audience
        from app.services import announcements as svc

        ann = svc.compose_announcement(title=title, body="压测公告：本周六管网检修，期间温度可能偏低。",
                                       audience=Audience.AREA, audience_filter={"station_ids": [station_id]})
        svc.start_announcement(ann.id)
        db.session.commit()  # the after-commit hook enqueues the start; the workers do the rest
        return ann.id

    def progress(self, ann_id):
        from app.extensions import db
        from app.services import announcements as svc

        db.session.expire_all()
        p = svc.progress(ann_id)
        db.session.rollback()
        return p

    def send_window(self, ann_id):
        from sqlalchemy import func, select

        from app.extensions import db
        from app.models import Delivery

        first, last, sent = db.session.execute(select(func.min(Delivery.sent_at), func.max(Delivery.sent_at),
                                                      func.count(Delivery.sent_at))
                                               .where(Delivery.announcement_id == ann_id)).one()
        db.session.rollback()
        return first, last, sent

    def run_until(self, ann_id, workers, *, stop_on=("done",), timeout=3600, on_tick=None):
        peak = 0
        started = time.monotonic()
        last_print = 0.0
        while True:
            for w in workers:
                try:
                    proc = psutil.Process(w.pid)
                    for p in [proc, *proc.children(recursive=True)]:
                        peak = max(peak, p.memory_info().rss)
                except psutil.Error:
                    pass
            p = self.progress(ann_id)
            if time.monotonic() - last_print > 10:
                print(f"    … {p['status']}: sent {p['sent']} pending {p['pending']} "
                      f"failed {p['failed']} skipped {p['skipped']}", flush=True)
                last_print = time.monotonic()
            if p["status"] in stop_on:
                return p, peak, time.monotonic() - started
            if on_tick:
                on_tick()
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"broadcast {ann_id} did not finish in {timeout}s: {p}")
            time.sleep(0.5)

    @staticmethod
    def cpu(popen) -> float:
        """CPU seconds of a process and its children (live and reaped)."""
        try:
            proc = psutil.Process(popen.pid)
            total = sum(proc.cpu_times()[:4])
            for child in proc.children(recursive=True):
                total += sum(child.cpu_times()[:2])
            return total
        except psutil.Error:
            return 0.0

    def sweep(self):
        from jobs import broadcast

        broadcast.sweep_broadcasts()

    def duplicates(self) -> tuple[int, int]:
        """(recipients with more than one message, total messages) in the sandbox."""
        with sqlite3.connect(self.store, timeout=30) as conn:
            dup = conn.execute("SELECT COUNT(*) FROM (SELECT user FROM messages WHERE direction = 'out' "
                               "GROUP BY user, body HAVING COUNT(*) > 1)").fetchone()[0]
            total = conn.execute("SELECT COUNT(*) FROM messages WHERE direction = 'out'").fetchone()[0]
        return dup, total

    # --- the baseline: a bare client, same payload, same sandbox, same concurrency -------------
    def template_body(self, ann_id) -> dict:
        """The template message the workers send for this announcement (without touser and
        client_msg_id), built by the same code."""
        from app.extensions import db
        from app.models import Announcement
        from jobs.broadcast import notice_for
        from wechat import templates
        from wechat.notify import template_message

        notice = notice_for(db.session.get(Announcement, ann_id), 0)
        template = templates.registry().template(notice.kind)
        data = template.render(templates.KINDS[notice.kind], notice.values)
        db.session.rollback()
        body = template_message("", notice, template.template_id, data, self.app.config["MINIAPP_APPID"])
        return {k: v for k, v in body.items() if k not in ("touser", "client_msg_id")}

    def bare(self, n: int, body: dict) -> tuple[int, float, float]:
        """n template messages to n new followers from a plain client: ``--workers``
        processes × WECHAT_SEND_CONCURRENCY threads, as the workers send. Returns (sent,
        seconds from the first request to the last answer, client CPU seconds)."""
        from wechat import client as wechat_client

        openids = [oa for oa, _ in self.followers(n)]
        token = wechat_client.official_account().access_token  # the workers' token (shared in Redis)
        url = f"{self.base}/cgi-bin/message/template/send?access_token={token}"
        threads = int(self.app.config.get("WECHAT_SEND_CONCURRENCY", 4))
        start_at = time.time() + 2.0  # every process imported and waiting
        procs = []
        for i in range(self.args.workers):
            job = {"url": url, "body": body, "openids": openids[i::self.args.workers], "threads": threads,
                   "start_at": start_at}
            p = subprocess.Popen([sys.executable, "-m", "bench.broadcast.bare"], cwd=ROOT, env=self.env,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True, text=True)
            self.procs.append(p)
            p.stdin.write(json.dumps(job))
            p.stdin.close()
            procs.append(p)
        results = [json.loads(p.stdout.read()) for p in procs]
        for p in procs:
            p.wait()
            self.procs.remove(p)
        errors = sum(r["errors"] for r in results)
        if errors:
            raise RuntimeError(f"bare client: {errors} errors, e.g. {next(r['error'] for r in results if r['error'])}")
        sent = sum(r["sent"] for r in results)
        window = max(r["last"] for r in results) - min(r["first"] for r in results)
        return sent, window, sum(r["cpu"] for r in results)


def profile(bench, args):
    """One broadcast of ``args.profile`` recipients sent by this process under cProfile."""
    import cProfile
    import pstats

    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import Delivery
    from jobs import broadcast

    requests.post(f"{bench.base}/faults", json={"rate_limit_per_minute": 10**9,
                                                "daily_quota": {"message/template/send": 10**9}}, timeout=10)
    broadcast.set_rate_per_minute(10**7)
    bench.app.config["WECHAT_SEND_CONCURRENCY"] = 1  # cProfile sees the main thread only
    bench.seed(args.profile)
    from app.services import announcements as svc
    from app.models import Audience

    ann = svc.compose_announcement(title="压测公告profile", body="压测公告：本周六管网检修，期间温度可能偏低。",
                                   audience=Audience.AREA, audience_filter={"station_ids": [bench.station_id]})
    svc.start_announcement(ann.id)
    svc.resolve_audience(db.session.get(type(ann), ann.id))
    db.session.commit()
    lo = db.session.scalar(select(func.min(Delivery.id)).where(Delivery.announcement_id == ann.id))
    broadcast.send_slice(ann.id, lo, lo + 1)  # warm up: token, connections
    cpu0, t0 = time.process_time(), time.monotonic()
    prof = cProfile.Profile()
    prof.enable()
    broadcast.send_slice(ann.id, lo, lo + args.profile + 1)
    prof.disable()
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    p = bench.progress(ann.id)
    print(f"profile: {p['sent']} sent in {wall:.1f}s, {cpu / max(p['sent'], 1) * 1000:.2f} ms CPU per message "
          f"(with the profiler's overhead)")
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    pstats.Stats(prof).sort_stats("cumulative").print_stats(40)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts, a minute or two")
    parser.add_argument("--small", type=int, default=None)
    parser.add_argument("--large", type=int, default=None)
    parser.add_argument("--quota-run", type=int, default=None, help="recipients of the quota run (0: skip)")
    parser.add_argument("--quota", type=int, default=None, help="daily template quota of the quota run")
    parser.add_argument("--cap", type=int, default=120_000, help="per-minute cap (sandbox and our bucket)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--bare", type=int, default=None,
                        help="messages of the bare client per run (default: the run's size, at most 20,000)")
    parser.add_argument("--sandbox-workers", type=int, default=2,
                        help="gunicorn processes for the sandbox (0: werkzeug's development server)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="instead: send N recipients in this process under cProfile and print where CPU goes")
    args = parser.parse_args()
    small = args.small or (1_000 if args.quick else 10_000)
    large = args.large or (5_000 if args.quick else 100_000)
    quota_run = args.quota_run if args.quota_run is not None else (2_400 if args.quick else 120_000)
    quota = args.quota or (2_000 if args.quick else 100_000)

    tmp = Path(tempfile.mkdtemp(prefix="bench-broadcast-"))
    with stops_what_it_starts(str(tmp / "redis.sock")):
        run(args, tmp, small, large, quota_run, quota)


def run(args, tmp: Path, small: int, large: int, quota_run: int, quota: int) -> None:
    bench = Bench(args, tmp)
    try:
        bench.start_sandbox()
        from jobs import broadcast

        if args.profile:
            return profile(bench, args)

        print(f"broadcast bench: {args.workers} worker process(es), cap {args.cap}/min, folder {bench.tmp}")
        print(f"database {bench.env['DATABASE_URL'].split('://')[0]}, Redis {bench.env['REDIS_URL'].split('://')[0]}")
        results = {}
        for label, n in (("small", small), ("large", large)):
            requests.delete(f"{bench.base}/faults", timeout=10)
            requests.post(f"{bench.base}/faults", json={"rate_limit_per_minute": args.cap,
                                                        "daily_quota": {"message/template/send": 10 * (small + large + quota_run)}},
                          timeout=10)
            broadcast.set_rate_per_minute(args.cap)
            t0 = time.monotonic()
            bench.seed(n)
            seeded = time.monotonic() - t0
            ann_id = bench.broadcast(bench.station_id, f"压测公告{label}")  # waits in the queue for the workers
            body = bench.template_body(ann_id)
            # The bare client's halves before and after the broadcast, so a change in the
            # machine's load hits both alike.
            half = (args.bare or min(n, 20_000)) // 2
            sb_cpu0 = bench.cpu(bench.procs[0])
            bare_a = bench.bare(half, body)
            sb_cpu_bare = bench.cpu(bench.procs[0]) - sb_cpu0
            workers = bench.start_workers()
            cpu0 = bench.cpu(bench.procs[0])
            p, peak, elapsed = bench.run_until(ann_id, workers)
            worker_cpu = sum(bench.cpu(w) for w in workers)
            sandbox_cpu = bench.cpu(bench.procs[0]) - cpu0
            bench.stop(workers)
            sb_cpu0 = bench.cpu(bench.procs[0])
            bare_b = bench.bare(half, body)
            sb_cpu_bare += bench.cpu(bench.procs[0]) - sb_cpu0
            first, last, sent = bench.send_window(ann_id)
            window = max((last - first).total_seconds(), 1e-6)
            per_minute = sent / window * 60
            bare_sent, bare_window, bare_cpu = (x + y for x, y in zip(bare_a, bare_b))
            bare_per_minute = bare_sent / bare_window * 60
            results[label] = (n, p, peak, elapsed, per_minute, bare_per_minute)
            print(f"{label:>6}: {n:>7} recipients  sent {p['sent']} failed {p['failed']} skipped {p['skipped']}  "
                  f"total {elapsed:7.1f}s (seeding {seeded:.1f}s)  achieved {per_minute:,.0f}/min  "
                  f"peak worker RSS {peak / 2**20:.1f} MiB")
            print(f"        bare client ({bare_sent} messages, {args.workers} processes × "
                  f"{bench.app.config.get('WECHAT_SEND_CONCURRENCY', 4)} threads): {bare_per_minute:,.0f}/min  "
                  f"achieved/bare {per_minute / bare_per_minute:.3f} (target ≥ 0.9)  "
                  f"(cap {args.cap:,}/min: achieved/cap {per_minute / args.cap:.3f})")
            print(f"        CPU per message: workers {worker_cpu / max(p['sent'], 1) * 1000:.2f} ms, "
                  f"sandbox {sandbox_cpu / max(p['sent'], 1) * 1000:.2f} ms; bare client "
                  f"{bare_cpu / max(bare_sent, 1) * 1000:.2f} ms, sandbox {sb_cpu_bare / max(bare_sent, 1) * 1000:.2f} ms "
                  f"({os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
        bare_total = sum(2 * ((args.bare or min(n, 20_000)) // 2) for n in (small, large))
        s, l_ = results["small"], results["large"]
        print(f"peak RSS large/small: {l_[2] / s[2]:.2f} ({s[0]} → {l_[0]} recipients; flat ≈ 1.0)")

        if quota_run:
            print(f"quota run: {quota_run} recipients against a daily template quota of {quota}")
            requests.delete(f"{bench.base}/faults", timeout=10)
            requests.post(f"{bench.base}/faults", json={"rate_limit_per_minute": args.cap,
                                                        "daily_quota": {"message/template/send": quota}}, timeout=10)
            # A fresh day at the sandbox, so the earlier runs do not count against this quota.
            requests.post(f"{bench.base}/clock", json={"advance": 86400}, timeout=10)
            broadcast.clear_quota_halt()
            bench.seed(quota_run)
            workers = bench.start_workers()
            ann_id = bench.broadcast(bench.station_id, "压测公告quota")
            p, peak, elapsed = bench.run_until(ann_id, workers, stop_on=("halted", "done"))
            print(f"  halted after {elapsed:.1f}s: status {p['status']}, sent {p['sent']}, pending {p['pending']}")
            print(f"  staff see: {p['status_reason']}")
            time.sleep(3)
            p2 = bench.progress(ann_id)
            print(f"  3 s later still {p2['status']} with sent {p2['sent']} (no retry loop against WeChat)")
            # Midnight in Beijing: WeChat's counters reset; our spent-quota flags expire (cleared here).
            requests.post(f"{bench.base}/clock", json={"advance": 86400}, timeout=10)
            broadcast.clear_quota_halt()
            p, peak2, elapsed2 = bench.run_until(ann_id, workers, on_tick=bench.sweep)
            bench.stop(workers)
            dup, total = bench.duplicates()
            print(f"  resumed and finished in {elapsed2:.1f}s: sent {p['sent']} failed {p['failed']} "
                  f"skipped {p['skipped']} pending {p['pending']}")
            print(f"  recipients with two messages: {dup} (sandbox holds {total} messages for "
                  f"{small + large + quota_run} recipients and {bare_total} bare-client messages)")
    finally:
        bench.stop(bench.procs)


if __name__ == "__main__":
    main()
