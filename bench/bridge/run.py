"""Benchmark: the bridge's ingest cost per ticket and the caller look-up latency as the
database grows — with 1k and with 100k households and tickets already stored, in one run.

    .venv/bin/python bench/bridge/run.py [--events 300] [--lookups 400] [--large 100000]

Prints, per size: ms of wall time and of CPU per ingested ticket (signed POST
/bridge/v1/tickets through the WSGI app: verify, parse, dedupe, match, route, SLA, outbox,
commit), the same for a bare signed-insert endpoint measured alongside (the baseline: the same
signature check, JSON parse and one committed ticket INSERT into the same table, nothing
else), and caller look-up p50/p99; then the ratios large/small (target for ingest ≤ 1.2) and
ingest/bare (target ≤ 4).
Requests go through Flask's test client in this process (no network; loopback only).
Uses a throw-away SQLite file and embedded Redis unless BENCH_DATABASE_URL / BENCH_REDIS_URL
are set (the database must be empty: the run refuses a database with households).
Bounded: a few minutes at most.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
TMP = tempfile.mkdtemp(prefix="bench-bridge-")
os.environ["INSTANCE_PATH"] = TMP  # before app.config is imported
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{TMP}/bench.db"
if os.environ.get("BENCH_REDIS_URL"):
    os.environ["REDIS_URL"] = os.environ["BENCH_REDIS_URL"]
else:
    os.environ.pop("REDIS_URL", None)
os.environ["APP_ENV"] = "development"

from sqlalchemy import func, insert, select, text  # noqa: E402

from app import create_app  # noqa: E402
from bench.lifecycle import stops_what_it_starts  # noqa: E402
from app.bridge.signing import sign_headers  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import (  # noqa: E402
    Bill, BillStatus, Community, Crew, CrewArea, District, HeatingSeason, Household, Outage, OutageArea, Role, Staff,
    Station, Ticket, TicketState, utcnow,
)

BATCH = 5000
PROBLEMS = ["家里暖气不热，屋里只有十四度", "暖气片漏水，地板都湿了", "管道有异响", "阀门拧不动"]


def phone_of(i: int) -> str:
    """As the phone system sends it."""
    return f"139{i:08d}"


def stored_phone_of(i: int) -> str:
    """As we store it (app.phones: E.164)."""
    return "+86" + phone_of(i)


def seed_world() -> dict:
    districts = [District(name=n) for n in ("和平区", "河西区", "南开区")]
    stations = [Station(code=f"HR{i:03d}", name=f"换热站{i}") for i in range(12)]
    db.session.add_all(districts + stations)
    db.session.flush()
    communities = [Community(district=districts[i % 3], name=f"小区{i}", station=stations[i % 12]) for i in range(60)]
    db.session.add_all(communities)
    crews, members = [], []
    for c in range(6):
        crew = Crew(name=f"维修{c}班")
        crew.areas = [CrewArea(station_id=stations[2 * c].id), CrewArea(station_id=stations[2 * c + 1].id)]
        crews.append(crew)
        db.session.add(crew)
        db.session.flush()
        db.session.add(Staff(username=f"lead{c}", name=f"班长{c}", role=Role.CREW_LEAD, crew_id=crew.id))
        for m in range(6):
            s = Staff(username=f"crew{c}_{m}", name=f"师傅{c}{m}", role=Role.CREW_MEMBER, crew_id=crew.id)
            db.session.add(s)
            members.append(s)
    season = HeatingSeason(code="2026-2027", unit_price_fen=2400, due_on=date(2026, 11, 30),
                           starts_on=date(2026, 11, 15), ends_on=date(2027, 3, 15))
    db.session.add(season)
    db.session.flush()
    outage = Outage(title="换热站3抢修", kind="unplanned", reason="管道抢修", status="active",
                    starts_at=utcnow() - timedelta(hours=2))
    outage.areas = [OutageArea(station_id=stations[3].id)]
    db.session.add(outage)
    db.session.commit()
    return {"communities": [(c.id, c.district_id, c.station_id) for c in communities],
            "members": [m.id for m in members], "season_id": season.id}


def grow(world: dict, upto: int, households_now: int, tickets_now: int) -> None:
    """Core inserts up to ``upto`` households (each with a bill) and ``upto`` tickets."""
    rng = random.Random(upto)
    now = utcnow()
    communities, members = world["communities"], world["members"]
    for start in range(households_now, upto, BATCH):
        rows, bills = [], []
        for i in range(start, min(upto, start + BATCH)):
            cid, did, sid = communities[i % len(communities)]
            rows.append({"id": i + 1, "account_no": f"B{i:09d}", "district_id": did, "community_id": cid,
                         "station_id": sid, "building": str(i % 20 + 1), "unit": str(i % 4 + 1),
                         "room": str(100 + i % 30), "area_m2": Decimal("88.50"), "owner_name": "住户",
                         "owner_phone": stored_phone_of(i), "status": "active", "created_at": now})
            amount = 212400
            paid = amount if i % 7 else 0  # about one in seven in arrears
            bills.append({"household_id": i + 1, "season_id": world["season_id"], "area_m2": Decimal("88.50"),
                          "unit_price_fen": 2400, "discount_fen": 0, "amount_fen": amount, "paid_fen": paid,
                          "late_fee_paid_fen": 0, "status": BillStatus.PAID if paid else BillStatus.UNPAID,
                          "created_at": now})
        db.session.execute(insert(Household), rows)
        db.session.execute(insert(Bill), bills)
        db.session.commit()
    states = [TicketState.CLOSED] * 90 + [TicketState.ASSIGNED, TicketState.ACCEPTED, TicketState.IN_PROGRESS] * 3 + \
        [TicketState.CANCELLED]
    for start in range(tickets_now, upto, BATCH):
        rows = []
        for i in range(start, min(upto, start + BATCH)):
            h = rng.randrange(upto)
            created = now - timedelta(minutes=rng.randrange(60 * 24 * 365))
            state = rng.choice(states)
            rows.append({"number": f"GDBENCH-{i:07d}", "source": "phone", "type": "repair", "category": "no_heat",
                         "priority": "normal", "state": state, "household_id": h + 1, "caller_phone": stored_phone_of(h),
                         "description": PROBLEMS[i % len(PROBLEMS)], "external_id": f"OLD{i:08d}",
                         "crew_id": None, "assignee_id": rng.choice(members), "created_at": created,
                         "updated_at": created, "respond_by": created + timedelta(hours=2),
                         "finish_by": created + timedelta(hours=24),
                         "closed_at": created + timedelta(hours=20) if state == TicketState.CLOSED else None})
        db.session.execute(insert(Ticket), rows)
        db.session.commit()
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("ANALYZE"))
    else:
        db.session.execute(text("ANALYZE"))
    db.session.commit()


def ingest(client, secret: str, n: int, size: int, tag: str, path: str = "/bridge/v1/tickets") -> tuple[float, float]:
    """Post ``n`` new-ticket events; returns (wall ms, CPU ms) per ticket."""
    rng = random.Random(n + size)
    bodies = []
    for k in range(n):
        h = rng.randrange(size)
        bodies.append(json.dumps({
            "external_id": f"CC{tag}{k:06d}", "event_id": f"ev-{tag}-{k}", "type": "repair", "category": "no_heat",
            "caller_phone": phone_of(h), "account_no": f"B{h:09d}", "description": "暖气不热，屋里只有十五度",
            "agent": "王芳"}, ensure_ascii=False).encode())
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for body in bodies:
        res = client.post(path, data=body,
                          headers={"Content-Type": "application/json", **sign_headers(secret, body)})
        assert res.status_code == 201, res.get_data(as_text=True)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return wall * 1000 / n, cpu * 1000 / n


_BARE_NUMBERS = itertools.count(1)  # ticket.number is 20 characters at most


def add_bare_endpoint(app) -> None:
    """The baseline: verify the signature, parse the JSON, INSERT one ticket row, commit."""
    from flask import jsonify, request

    from app.bridge.views import signed

    def bare_ticket():
        data = json.loads(request.get_data(cache=True))
        now = utcnow()
        db.session.execute(insert(Ticket).values(
            number=f"B{next(_BARE_NUMBERS):019d}", source="phone", type=data["type"], category=data["category"],
            priority="normal", state=TicketState.NEW, caller_phone=data["caller_phone"],
            description=data["description"], external_id="BARE-" + data["external_id"], created_at=now,
            updated_at=now, respond_by=now + timedelta(hours=2), finish_by=now + timedelta(hours=24)))
        db.session.commit()
        return jsonify({"result": "created"}), 201

    app.add_url_rule("/bench/bare-ticket", "bench_bare_ticket", signed(bare_ticket), methods=["POST"])


def lookups(client, secret: str, n: int, size: int) -> tuple[float, float]:
    rng = random.Random(n * size)
    latencies = []
    for _ in range(n):
        phone = phone_of(rng.randrange(size))
        t0 = time.perf_counter()
        path = f"/bridge/v1/callers/{phone}"
        res = client.get(path, headers=sign_headers(secret, method="GET", target=path))
        latencies.append((time.perf_counter() - t0) * 1000)
        assert res.status_code == 200 and res.get_json()["households"], res.get_data(as_text=True)
    latencies.sort()
    return statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--lookups", type=int, default=400)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    args = parser.parse_args()
    with stops_what_it_starts(f"{TMP}/redis.sock"):  # the embedded Redis create_app starts
        run(args)


def run(args) -> None:
    app = create_app()
    app.logger.setLevel("WARNING")
    import logging

    logging.getLogger().setLevel(logging.WARNING)
    secret = app.config["BRIDGE_SECRET"]
    add_bare_endpoint(app)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        if db.session.scalar(select(func.count()).select_from(Household)):
            sys.exit("refusing: the bench database already has households (use an empty throw-away database)")
        print(f"database: {db.engine.dialect.name}; instance {TMP}")
        world = seed_world()
        client = app.test_client()
        results = {}
        households = tickets = 0
        for size in (args.small, args.large):
            t0 = time.perf_counter()
            grow(world, size, households, tickets)
            households = tickets = size
            print(f"stored {size} households, bills and tickets in {time.perf_counter() - t0:.1f} s")
            ingest(client, secret, 30, size, f"w{size}-")       # warm-up
            lookups(client, secret, 30, size)
            ingest(client, secret, 30, size, f"wb{size}-", "/bench/bare-ticket")
            # Interleaved halves, so a change in the machine's load hits both alike.
            half = args.events // 2
            w_a, c_a = ingest(client, secret, half, size, f"m{size}-", "/bridge/v1/tickets")
            bw_a, bc_a = ingest(client, secret, half, size, f"b{size}-", "/bench/bare-ticket")
            w_b, c_b = ingest(client, secret, half, size, f"n{size}-", "/bridge/v1/tickets")
            bw_b, bc_b = ingest(client, secret, half, size, f"c{size}-", "/bench/bare-ticket")
            wall, cpu, bare_wall, bare_cpu = (w_a + w_b) / 2, (c_a + c_b) / 2, (bw_a + bw_b) / 2, (bc_a + bc_b) / 2
            p50, p99 = lookups(client, secret, args.lookups, size)
            results[size] = (wall, cpu, p50, p99)
            print(f"  {size:>7} stored: ingest {wall:.2f} ms/ticket (CPU {cpu:.2f} ms, {1000 / wall:.0f} tickets/s); "
                  f"bare signed insert {bare_wall:.2f} ms (CPU {bare_cpu:.2f} ms); ingest/bare: wall "
                  f"{wall / bare_wall:.2f}, CPU {cpu / bare_cpu:.2f} (target ≤ 4); "
                  f"caller look-up p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        (w1, c1, l1, q1), (w2, c2, l2, q2) = results[args.small], results[args.large]
        print(f"ratio ingest cost {args.large}/{args.small}: wall {w2 / w1:.2f}, CPU {c2 / c1:.2f} (target ≤ 1.2)")
        print(f"ratio caller look-up {args.large}/{args.small}: p50 {l2 / l1:.2f}, p99 {q2 / q1:.2f}")


if __name__ == "__main__":
    main()
