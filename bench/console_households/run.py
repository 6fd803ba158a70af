"""Benchmark: the console's 住户 list and its Excel export with 100,000 households stored.

    .venv/bin/python bench/console_households/run.py [--households 100000]

Fills a throw-away database (SQLite and embedded Redis unless BENCH_DATABASE_URL /
BENCH_REDIS_URL are set; the database must have no households) with households in 100
communities, a past season's bills (15 % unpaid: 欠费) and WeChat bindings (30 %), signs in
an admin through the real sign-in form, then times through the app (test client, full
request) the list's first page, the 欠费 filter, a deep page, and the export of one community
(≈1k rows) vs every household. The export's body is read in chunks as a browser would. Peak
Python memory (tracemalloc) of each export is measured in a second run of it, so the timed
run is not slowed: a flat export has about the same peak at 1k and 100k rows.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
import tracemalloc
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
TMP = tempfile.mkdtemp(prefix="bench-households-")
os.environ["INSTANCE_PATH"] = TMP  # before app.config is imported
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{TMP}/bench.db"
if os.environ.get("BENCH_REDIS_URL"):
    os.environ["REDIS_URL"] = os.environ["BENCH_REDIS_URL"]
else:
    os.environ.pop("REDIS_URL", None)
os.environ["APP_ENV"] = "development"

from sqlalchemy import func, insert, select  # noqa: E402

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import (  # noqa: E402
    Bill, Community, District, HeatingSeason, Household, HouseholdBinding, Role, Staff, Station, WechatUser,
)
from bench.lifecycle import stops_what_it_starts  # noqa: E402

PASSWORD = "bench-pass-1234"
CHUNK = 5000


def fill(n: int) -> int:
    """n households; returns the id of the first community."""
    districts = [District(name=name) for name in ("和平区", "沈河区", "铁西区", "皇姑区")]
    stations = [Station(code=f"B{i:03d}", name=f"换热站{i:02d}") for i in range(25)]
    db.session.add_all(districts + stations)
    db.session.flush()
    communities = [Community(district_id=districts[c % 4].id, name=f"小区{c:03d}", station_id=stations[c // 4].id)
                   for c in range(100)]
    db.session.add_all(communities)
    season = HeatingSeason(code="2025-2026", unit_price_fen=2400, due_on=date(2025, 11, 30),
                           starts_on=date(2025, 11, 15), ends_on=date(2026, 3, 15))
    db.session.add(season)
    db.session.flush()
    per = -(-n // 100)
    for start in range(0, n, CHUNK):
        rows = []
        for i in range(start, min(start + CHUNK, n)):
            c = communities[i // per]
            rows.append({"account_no": f"{10_000_000 + i}", "district_id": c.district_id, "community_id": c.id,
                         "station_id": c.station_id, "building": str(i % per // 24 + 1), "unit": str(i % 24 // 12 + 1),
                         "room": f"{i % 12 // 2 + 1}0{i % 2 + 1}", "area_m2": 89.5, "owner_name": f"户主{i}",
                         "owner_phone": f"+86139{i:08d}", "status": "suspended" if i % 50 == 0 else "active"})
        db.session.execute(insert(Household), rows)
    first = db.session.scalar(select(func.min(Household.id)))
    for start in range(0, n, CHUNK):
        ids = range(first + start, first + min(start + CHUNK, n))
        db.session.execute(insert(Bill), [
            {"household_id": h, "season_id": season.id, "area_m2": 89.5, "unit_price_fen": 2400, "amount_fen": 214800,
             "paid_fen": 0 if h % 7 == 0 else 214800, "status": "unpaid" if h % 7 == 0 else "paid"} for h in ids])
        bound = [h for h in ids if h % 10 < 3]
        db.session.execute(insert(WechatUser), [{"oa_openid": f"oBENCH{h:020d}", "subscribed": True} for h in bound])
        users = dict(db.session.execute(select(WechatUser.oa_openid, WechatUser.id)
                                        .where(WechatUser.oa_openid.in_([f"oBENCH{h:020d}" for h in bound]))).all())
        db.session.execute(insert(HouseholdBinding), [
            {"wechat_user_id": users[f"oBENCH{h:020d}"], "household_id": h, "proof": "owner_name"} for h in bound])
    admin = Staff(username="bench-admin", name="压测管理员", role=Role.ADMIN, phone="+8613900000000")
    admin.set_password(PASSWORD)
    db.session.add(admin)
    db.session.commit()
    return communities[0].id


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--households", type=int, default=100_000)
    args = parser.parse_args()
    with stops_what_it_starts(f"{TMP}/redis.sock"):
        run(args.households)


def run(n: int) -> None:
    app = create_app()
    with app.app_context():
        from flask_migrate import upgrade
        upgrade()
        if db.session.scalar(select(func.count(Household.id))):
            sys.exit("the bench database already has households: give it an empty one")
        _, wall, _ = timed(lambda: fill(n))
        community_id = db.session.scalar(select(Community.id).where(Community.name == "小区000"))
        db.session.remove()
    print(f"filled {n} households in {wall:.1f} s; load average {os.getloadavg()[0]:.1f}")
    client = app.test_client()
    page = client.get("/console/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/console/login", data={"username": "bench-admin", "password": PASSWORD,
                                               "csrf_token": token}).status_code == 302

    def get(url):
        res = client.get(url)
        assert res.status_code == 200, res.status_code
        return res.get_data(as_text=True)

    for label, url in (("list, first page", "/console/households"),
                       ("list, 欠费 filter", "/console/households?arrears=yes"),
                       ("list, 已绑定 + 欠费", "/console/households?arrears=yes&bound=yes"),
                       ("list, search 户主4321", "/console/households?q=户主4321"),
                       ("list, page 4000", "/console/households?page=4000")):
        get(url)  # warm
        html, wall, cpu = timed(lambda: get(url))
        shown = re.search(r'id="household-total">(\d+)<', html).group(1)
        print(f"{label:24s} {wall * 1000:7.1f} ms wall {cpu * 1000:7.1f} ms CPU  (共 {shown} 户)")

    def download(url):
        res = client.get(url, buffered=False)
        assert res.status_code == 200, res.status_code
        size = sum(len(chunk) for chunk in res.response)
        res.close()
        return int(res.headers["X-Row-Count"]), size

    for label, url in (("export, one community", f"/console/households.xlsx?community_id={community_id}"),
                       ("export, every household", "/console/households.xlsx")):
        (rows, size), wall, cpu = timed(lambda: download(url))
        tracemalloc.start()
        download(url)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"{label:24s} {rows:6d} rows {size / 1e6:5.1f} MB  {wall:6.1f} s wall {cpu:6.1f} s CPU  "
              f"peak Python memory {peak / 1e6:5.1f} MB")
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
