"""bench/dashboard: the leader dashboard's summary at 10,000 tickets vs 1,000,000 tickets.

The company keeps the same daily volume (``--per-day`` tickets a day); what grows is the
history. So the run builds the recent 10,000 tickets (the last days: open backlog, today's
work, recent ratings), measures the summary, then bulk-inserts older, finished history up to
1,000,000 tickets (Core ``INSERT`` in batches, no ORM) and measures again. Every ticket comes
with a phone call (the bridge's call log grows with the tickets: answered, missed, a few
ringing now), and the city has two seasons of bills with payments (arrears by district,
today's collection), so every tile of the dashboard is measured. Printed: the
median cost of ``metrics.dashboard_summary`` (not the Redis-cached whole; its bill totals come
from their own cache, as in service) and of ``metrics.summary_stamp`` (what each live dashboard
polls), the cost of the bill totals read afresh (after a payment; households × seasons, not
the ticket history), and the ratio big/small (target ≤ 3).

    .venv/bin/python bench/dashboard/run.py                       # SQLite in a temp dir
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1/bench_dash .venv/bin/python bench/dashboard/run.py
    .venv/bin/python bench/dashboard/run.py --big 200000          # a quicker run

Bounded: a fixed number of rows and rounds; loopback only (embedded Redis, local database).
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

TYPES = ["repair"] * 6 + ["complaint", "inquiry", "inquiry", "suggestion", "report", "help"]
CATEGORIES = ["no_heat", "low_temperature", "leak", "noise", "valve", "radiator", "billing", "other"]
BATCH = 10_000
CALL_STATUSES = ["hangup"] * 8 + ["missed"]      # most calls end answered and hung up


def build_app(tmp: str):
    from app import create_app
    from app.config import TestConfig
    from app.embedded_redis import ensure_embedded_redis

    cfg = TestConfig()
    url = os.environ.get("BENCH_DATABASE_URL")
    if url:
        from app.config import _normalise_db_url

        cfg.SQLALCHEMY_DATABASE_URI = _normalise_db_url(url)
    else:
        cfg.SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp}/bench.db"
    cfg.REDIS_URL = os.environ.get("BENCH_REDIS_URL") or ensure_embedded_redis(f"{tmp}/redis.sock")
    cfg.OUTBOX_DISPATCH_ON_COMMIT = False
    return create_app(cfg)


def stop_redis(tmp: str) -> None:
    """Stop the embedded Redis this run started (none when BENCH_REDIS_URL was given)."""
    from app.embedded_redis import stop_embedded_redis

    if not os.environ.get("BENCH_REDIS_URL"):
        stop_embedded_redis(f"{tmp}/redis.sock")


def reset_schema() -> None:
    from flask_migrate import upgrade
    from sqlalchemy import text

    from app.extensions import db

    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade()


def seed_city(rng: random.Random, households: int) -> dict:
    """Districts, communities, stations, households, crews and staff, a season with bills."""
    from app.extensions import db
    from app.models import (
        Bill, Community, Crew, CrewArea, District, HeatingSeason, Household, Role, Staff, Station, utcnow,
    )

    now = utcnow()
    districts = [District(name=n) for n in ("和平区", "南开区", "河西区")]
    stations = [Station(code=f"S{i}", name=f"第{i}换热站") for i in range(1, 7)]
    db.session.add_all(districts + stations)
    db.session.flush()
    communities = [Community(district_id=districts[i % 3].id, name=f"小区{i}", station_id=stations[i % 6].id)
                   for i in range(20)]
    db.session.add_all(communities)
    db.session.flush()
    crews = []
    for i, st in enumerate(stations):
        crew = Crew(name=f"维修{i + 1}班")
        crew.areas.append(CrewArea(station_id=st.id))
        crews.append(crew)
    db.session.add_all(crews)
    db.session.flush()
    staff = []
    for crew in crews:
        for m in range(4):
            staff.append(Staff(username=f"{crew.name}-{m}", name=f"师傅{crew.id}{m}", crew_id=crew.id,
                               role=Role.CREW_LEAD if m == 0 else Role.CREW_MEMBER,
                               last_latitude=39.1, last_longitude=117.2, last_location_label="站前路",
                               last_located_at=now - timedelta(minutes=rng.randint(1, 300))))
    db.session.add_all(staff)
    season = HeatingSeason(code="2026-2027", starts_on=(now - timedelta(days=9)).date(),
                           ends_on=(now + timedelta(days=110)).date(), due_on=(now + timedelta(days=7)).date(),
                           unit_price_fen=2400)
    past = HeatingSeason(code="2025-2026", starts_on=(now - timedelta(days=374)).date(),
                         ends_on=(now - timedelta(days=255)).date(), due_on=(now - timedelta(days=358)).date(),
                         unit_price_fen=2300)
    db.session.add_all([season, past])
    db.session.flush()
    rows = []
    for i in range(households):
        c = communities[i % 20]
        rows.append({"account_no": f"H{i:08d}", "district_id": c.district_id, "community_id": c.id,
                     "building": str(i % 12 + 1), "unit": "1", "room": str(100 + i % 30),
                     "station_id": c.station_id, "area_m2": Decimal("88.00"), "owner_name": "张三",
                     "owner_phone": None, "status": "active", "created_at": now})
    db.session.execute(Household.__table__.insert(), rows)
    ids = [r[0] for r in db.session.execute(db.select(Household.id))]
    bills = []
    for h in ids:
        for s, paid_share in ((season, 0.8), (past, 0.9)):
            paid = rng.random() < paid_share
            bills.append({"household_id": h, "season_id": s.id, "area_m2": Decimal("88.00"),
                          "unit_price_fen": s.unit_price_fen, "discount_fen": 0, "amount_fen": 88 * s.unit_price_fen,
                          "paid_fen": 88 * s.unit_price_fen if paid else 0, "late_fee_paid_fen": 0,
                          "status": "paid" if paid else "unpaid", "created_at": now})
    db.session.execute(Bill.__table__.insert(), bills)
    seed_payments(rng, now, past, season)
    db.session.commit()
    return {"households": ids, "crews": [c.id for c in crews],
            "staff": {c.id: [s.id for s in staff if s.crew_id == c.id] for c in crews}}


def seed_payments(rng: random.Random, now, past, season) -> None:
    """One WeChat Pay payment per paid bill: last season's spread over its sales period, this
    season's over the last 60 days (a few hundred of them today)."""
    from app.extensions import db
    from app.models import Bill, Payment, PaymentItem

    paid = db.session.execute(db.select(Bill.id, Bill.season_id, Bill.amount_fen).where(Bill.status == "paid")).all()
    payments, items = [], []
    for n, (bill_id, season_id, amount) in enumerate(paid, start=1):
        back = timedelta(days=rng.uniform(358, 420)) if season_id == past.id else timedelta(hours=rng.uniform(0.1, 60 * 24))
        payments.append({"id": n, "out_trade_no": f"BP{n:012d}", "amount_fen": amount, "state": "paid",
                         "paid_at": now - back, "created_at": now - back - timedelta(minutes=1)})
        items.append({"payment_id": n, "bill_id": bill_id, "principal_fen": amount, "late_fee_fen": 0})
    for lo in range(0, len(payments), BATCH):
        db.session.execute(Payment.__table__.insert(), payments[lo:lo + BATCH])
        db.session.execute(PaymentItem.__table__.insert(), items[lo:lo + BATCH])


def call_rows(tickets: list[dict], rng: random.Random, now, ringing: int = 0) -> list[dict]:
    """The phone call behind each ticket (the call log grows with the tickets), plus ``ringing``
    calls waiting in the queue now."""
    rows = []
    for t in tickets:
        status = rng.choice(CALL_STATUSES)
        started = t["created_at"] - timedelta(seconds=rng.randint(60, 400))
        answered = started + timedelta(seconds=rng.randint(3, 60)) if status == "hangup" else None
        ended = (answered or started) + timedelta(seconds=rng.randint(20, 400))
        rows.append({"call_id": f"C{t['number']}", "caller_phone": f"+86139{rng.randrange(10 ** 8):08d}",
                     "agent": "王芳" if answered else None, "status": status, "started_at": started,
                     "answered_at": answered, "ended_at": ended, "last_event_at": ended,
                     "duration_s": int((ended - answered).total_seconds()) if answered else None, "created_at": started})
    for k in range(ringing):
        started = now - timedelta(seconds=rng.randint(5, 240))
        rows.append({"call_id": f"RING{k}", "caller_phone": f"+86138{k:08d}", "agent": None, "status": "ringing",
                     "started_at": started, "answered_at": None, "ended_at": None, "last_event_at": started,
                     "duration_s": None, "created_at": started})
    return rows


def ticket_rows(rng: random.Random, city: dict, start: int, count: int, newest_age: timedelta,
                per_day: int, recent: bool, now) -> list[dict]:
    """``count`` tickets, the newest ``newest_age`` old, going back at ``per_day`` a day."""
    rows = []
    step = timedelta(days=1) / per_day
    for k in range(count):
        i = start + k
        created = now - newest_age - step * k
        age = now - created
        crew = rng.choice(city["crews"])
        t = {"number": f"B{i:09d}", "source": "phone", "type": rng.choice(TYPES),
             "category": rng.choice(CATEGORIES), "priority": "emergency" if rng.random() < 0.03 else "normal",
             "household_id": rng.choice(city["households"]) if rng.random() < 0.9 else None,
             "description": "暖气不热", "crew_id": crew, "assignee_id": rng.choice(city["staff"][crew]),
             "created_at": created, "finish_by": created + timedelta(hours=24),
             "respond_by": created + timedelta(hours=2), "accepted_at": None, "replied_at": None,
             "closed_at": None, "rating": None, "rated_at": None}
        if recent and age < timedelta(days=3) and rng.random() < 0.5:
            t["state"] = rng.choice(["new", "assigned", "accepted", "in_progress", "replied"])
            if t["state"] not in ("new", "assigned"):
                t["accepted_at"] = created + timedelta(minutes=rng.randint(5, 90))
        else:
            t["state"] = "closed" if rng.random() < 0.97 else "cancelled"
            t["accepted_at"] = created + timedelta(minutes=rng.randint(5, 90))
            t["replied_at"] = created + timedelta(hours=rng.uniform(1, 20))
            t["closed_at"] = t["replied_at"] + timedelta(hours=rng.uniform(0.2, 4))
            if rng.random() < 0.3:
                t["rating"] = rng.choice([5, 5, 5, 4, 4, 3, 2, 1])
                t["rated_at"] = t["closed_at"] + timedelta(hours=rng.uniform(0.5, 30))
        for key in ("accepted_at", "replied_at", "closed_at", "rated_at"):
            if t[key] is not None and t[key] > now:
                t[key] = None if key != "accepted_at" else now
        if t["state"] in ("closed", "cancelled") and t["closed_at"] is None:
            t["closed_at"] = now
        t["updated_at"] = max(v for v in (created, t["accepted_at"], t["replied_at"], t["closed_at"], t["rated_at"])
                              if v is not None)
        rows.append(t)
    return rows


def insert_tickets(rows: list[dict], rng: random.Random, now, ringing: int = 0) -> None:
    """The tickets and their calls (Core INSERTs in batches)."""
    from app.extensions import db
    from app.models import CallLog, Ticket

    for lo in range(0, len(rows), BATCH):
        db.session.execute(Ticket.__table__.insert(), rows[lo:lo + BATCH])
        db.session.execute(CallLog.__table__.insert(), call_rows(rows[lo:lo + BATCH], rng, now))
        db.session.commit()
    if ringing:
        db.session.execute(CallLog.__table__.insert(), call_rows([], rng, now, ringing))
        db.session.commit()


def analyze() -> None:
    from sqlalchemy import text

    from app.extensions import db

    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def measure(rounds: int, now) -> dict:
    from app.extensions import db
    from app.services import metrics

    summary_times, stamp_times, bill_times = [], [], []
    today = metrics.local_day_start(now).date()
    for _ in range(rounds):
        db.session.remove()
        started = time.perf_counter()
        summary = metrics.dashboard_summary(now)
        summary_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        metrics.summary_stamp(now)
        stamp_times.append(time.perf_counter() - started)
        # The bill totals the summary takes from Redis until a bill or payment changes: their
        # own cost when they are read again (after a payment), not part of the summary's.
        started = time.perf_counter()
        metrics.bill_totals(today, 0, cached=False)
        bill_times.append(time.perf_counter() - started)
    return {"summary": statistics.median(summary_times), "stamp": statistics.median(stamp_times),
            "bills": statistics.median(bill_times),
            "open": summary["tickets"]["open"], "today": summary["tickets"]["today"],
            "calls": summary["calls_today"]["total"], "queue": summary["calls_today"]["queue"],
            "collected": summary["fees"]["payments_today_fen"],
            "arrears": sum(r["arrears_fen"] for r in summary["money_by_district"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--per-day", type=int, default=1_000, help="tickets a day (the history's density)")
    parser.add_argument("--households", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-dashboard-")
    # Stopped with SIGTERM (kill), still stop the embedded Redis: `finally` runs on SystemExit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        run(build_app(tmp), args)  # the Redis build_app starts is stopped even if the app fails to build
    finally:
        stop_redis(tmp)


def run(app, args) -> None:
    rng = random.Random(7)
    with app.app_context():
        from app.extensions import db
        from app.models import utcnow

        reset_schema()
        print(f"database: {db.engine.dialect.name}; {args.households:,} households; {args.per_day:,} tickets/day",
              flush=True)
        city = seed_city(rng, args.households)
        now = utcnow()
        started = time.perf_counter()
        insert_tickets(ticket_rows(rng, city, 0, args.small, timedelta(seconds=30), args.per_day, True, now), rng, now,
                       ringing=4)
        analyze()
        print(f"inserted {args.small:,} recent tickets in {time.perf_counter() - started:.1f}s", flush=True)
        measure(3, now)  # warm up
        small = measure(args.rounds, now)

        started = time.perf_counter()
        oldest = timedelta(days=1) / args.per_day * args.small + timedelta(seconds=30)
        remaining, offset = args.big - args.small, args.small
        while remaining > 0:
            n = min(100_000, remaining)
            insert_tickets(ticket_rows(rng, city, offset, n, oldest + timedelta(days=1) / args.per_day * (offset - args.small),
                                       args.per_day, False, now), rng, now)
            offset += n
            remaining -= n
            print(f"  … {offset:,} tickets ({time.perf_counter() - started:.0f}s)", flush=True)
        analyze()
        measure(3, now)
        big = measure(args.rounds, now)

    print()
    print(f"{'tickets':>10} {'calls':>10} {'summary ms':>11} {'stamp ms':>9} {'bills ms':>9} {'open':>6} {'today':>6} "
          f"{'calls today':>11} {'queue':>6} {'collected today':>16} {'arrears':>14}")
    for n, m in ((args.small, small), (args.big, big)):
        print(f"{n:>10,} {n:>10,} {m['summary'] * 1000:>11.2f} {m['stamp'] * 1000:>9.3f} {m['bills'] * 1000:>9.2f} {m['open']:>6} {m['today']:>6} "
              f"{m['calls']:>11} {m['queue']:>6} {m['collected'] / 100:>16,.2f} {m['arrears'] / 100:>14,.2f}")
    ratio = big["summary"] / small["summary"]
    stamp_ratio = big["stamp"] / small["stamp"]
    print(f"\nsummary cost ratio {args.big:,}/{args.small:,} tickets: {ratio:.2f}  (target ≤ 3) "
          f"{'OK' if ratio <= 3 else 'ABOVE TARGET'}")
    print(f"change-stamp cost ratio: {stamp_ratio:.2f}")


if __name__ == "__main__":
    main()
