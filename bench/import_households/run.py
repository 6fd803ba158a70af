"""Benchmark: `import_households` of a 100,000-row sheet into an empty database, end to end.

    .venv/bin/python bench/import_households/run.py [--rows 100000] [--format xlsx|csv] [--merged] [--phones plain]

Builds a realistic sheet (fixed seed: 100 communities of 4 districts, 6-storey buildings,
mobiles and landlines written the ways people write them, some full-width), then times the
import as `flask import-households` runs it: read + validate, write, commit. Prints seconds of
wall time and CPU for the read pass, the write pass and the total, and rows per second.
``--merged`` writes the district and community columns as merged cells over each building
(the sheet then opens in full mode, see docs/import-households.md). Uses a throw-away SQLite
file and embedded Redis unless BENCH_DATABASE_URL / BENCH_REDIS_URL are set (the database
must have no households). Bounded: about a minute on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
TMP = tempfile.mkdtemp(prefix="bench-import-")
os.environ["INSTANCE_PATH"] = TMP  # before app.config is imported
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{TMP}/bench.db"
if os.environ.get("BENCH_REDIS_URL"):
    os.environ["REDIS_URL"] = os.environ["BENCH_REDIS_URL"]
else:
    os.environ.pop("REDIS_URL", None)
os.environ["APP_ENV"] = "development"

from openpyxl import Workbook  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402
from app.imports import households  # noqa: E402
from app.models import Household  # noqa: E402
from bench.lifecycle import stops_what_it_starts  # noqa: E402

HEADER = ["户号", "区", "小区", "楼号", "单元", "室", "换热站", "供热面积(㎡)", "户主姓名", "联系电话", "状态"]
DISTRICTS = ["和平区", "沈河区", "铁西区", "皇姑区"]


def _phone(rng: random.Random, i: int, mixed: bool) -> str:
    kind = i % 10 if mixed else 0
    if kind < 6:
        return f"139{i:08d}"
    if kind == 6:
        return f"139 {i // 10000:04d} {i % 10000:04d}"
    if kind == 7:
        return "".join(chr(ord(c) + 0xFEE0) for c in f"138{i:08d}")  # full-width, typed with a Chinese IME
    if kind == 8:
        return f"024-{2300_0000 + i % 1000_0000}"
    return f"+86 24 {2300 + i % 1000} {i % 10000:04d}"


def rows(n: int, mixed: bool = True):
    rng = random.Random(16)
    i = 0
    for c in range(100):
        district, community, station = DISTRICTS[c % 4], f"小区{c:03d}", f"换热站{c // 4:02d}"
        for b in range(1, 1000):
            for u in range(1, 3):
                for floor in range(1, 7):
                    for door in (1, 2):
                        if i >= n:
                            return
                        yield [f"{10_000_000 + i}", district, community, str(b), str(u), f"{floor}0{door}", station,
                               round(60 + rng.random() * 80, 2), f"户主{i}", _phone(rng, i, mixed), "正常"]
                        i += 1


def write_sheet(path: Path, n: int, merged: bool, mixed: bool) -> None:
    if path.suffix == ".csv":
        import csv
        with path.open("w", newline="", encoding="utf-8-sig") as f:
            w = csv.writer(f)
            w.writerow(HEADER)
            w.writerows(rows(n, mixed))
        return
    if not merged:
        wb = Workbook(write_only=True)
        ws = wb.create_sheet()
        ws.append(HEADER)
        for r in rows(n, mixed):
            ws.append(r)
        wb.save(path)
        return
    wb = Workbook()  # merged cells need the full model
    ws = wb.active
    ws.append(HEADER)
    start, last = 2, None
    for row_no, r in enumerate(rows(n, mixed), start=2):
        key = (r[1], r[2], r[3])
        if key != last:
            if last is not None and row_no - 1 > start:
                ws.merge_cells(start_row=start, end_row=row_no - 1, start_column=2, end_column=2)
                ws.merge_cells(start_row=start, end_row=row_no - 1, start_column=3, end_column=3)
            start, last = row_no, key
        elif row_no > start:
            r[1] = r[2] = None
        ws.append(r)
    last_row = ws.max_row
    if last_row > start:
        ws.merge_cells(start_row=start, end_row=last_row, start_column=2, end_column=2)
        ws.merge_cells(start_row=start, end_row=last_row, start_column=3, end_column=3)
    wb.save(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--format", choices=("xlsx", "csv"), default="xlsx")
    parser.add_argument("--merged", action="store_true")
    parser.add_argument("--phones", choices=("mixed", "plain"), default="mixed",
                        help="plain: every phone an ASCII mobile (what the import accepted before issue 16)")
    args = parser.parse_args()
    path = Path(TMP) / f"households.{args.format}"
    t = time.perf_counter()
    write_sheet(path, args.rows, args.merged, args.phones == "mixed")
    print(f"sheet: {args.rows} rows, {path.stat().st_size / 1e6:.1f} MB, written in {time.perf_counter() - t:.1f} s")
    with stops_what_it_starts(f"{TMP}/redis.sock"):  # the embedded Redis create_app starts
        import_sheet(args, path)


def import_sheet(args, path: Path) -> None:
    app = create_app()
    with app.app_context():
        from flask_migrate import upgrade
        upgrade()
        if db.session.scalar(select(func.count(Household.id))):
            sys.exit("the bench database already has households: give it an empty one")
        wall, cpu = time.perf_counter(), time.process_time()
        result = households.import_households(path)
        db.session.commit()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        stored = db.session.scalar(select(func.count(Household.id)))
    print(f"import: {result.created} created, {len(result.errors)} errors, {stored} stored")
    print(f"total: {wall:.1f} s wall, {cpu:.1f} s CPU, {args.rows / wall:,.0f} rows/s")
    if result.errors:
        print("first errors:", result.errors[:3])


if __name__ == "__main__":
    main()
