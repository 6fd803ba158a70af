"""Benchmark: the cost of one WeChat Pay notification (``POST /pay/notify``) with 1,000 and with
100,000 payments already stored, in one run.

    .venv/bin/python bench/pay_notify/run.py [--notifications 100] [--rounds 5] [--small 1000] [--large 100000]

Each notification is what WeChat Pay sends for a new payment — signed with a platform key
(RSA-SHA256), the transaction AEAD_AES_256_GCM-encrypted — for an order created beforehand,
so the measured path is the whole one: verify the signature and the timestamp, decrypt,
claim the order (conditional UPDATE), release its bills, credit them (row lock), record the
payer's notice in the outbox, commit, enqueue the notice. Requests go through Flask's test
client in this process (no network). Then the same notifications again (WeChat Pay's
repeats: verify, decrypt, find the order already paid). Each size runs ``--rounds`` rounds of
``--notifications`` fresh orders; printed per size: the median round's ms of wall time and
CPU per notification, p50/p99 over all of them, and the ratios large/small (target ≈ 1,
≤ 1.5). The median of rounds keeps a burst of load from another process out of the figures.

The stored history is realistic: every payment paid, with its item and its bill (and a
household per bill), bulk-inserted with Core INSERTs. Uses a throw-away SQLite file and
embedded Redis unless BENCH_DATABASE_URL / BENCH_REDIS_URL are set (the database must be
empty). Bounded: a few minutes at most; loopback only.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
TMP = tempfile.mkdtemp(prefix="bench-pay-notify-")
os.environ["INSTANCE_PATH"] = TMP  # before app.config is imported
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{TMP}/bench.db"
if os.environ.get("BENCH_REDIS_URL"):
    os.environ["REDIS_URL"] = os.environ["BENCH_REDIS_URL"]
else:
    os.environ.pop("REDIS_URL", None)
os.environ["APP_ENV"] = "development"
os.environ.pop("WECHATPAY_PUBLIC_KEY_PATH", None)
os.environ.pop("WECHATPAY_PUBLIC_KEY_ID", None)

from sqlalchemy import func, insert, select, text  # noqa: E402

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import (  # noqa: E402
    Bill, BillStatus, Community, District, HeatingSeason, Household, Payment, PaymentItem, PaymentState, Station,
    WechatUser, utcnow,
)
from app.services import billing  # noqa: E402
from bench.lifecycle import stops_what_it_starts  # noqa: E402
from wechat.sandbox.crypto import aead_encrypt, generate_rsa_key, public_key_pem, rsa_sign  # noqa: E402

BATCH = 5000
AMOUNT = 212400
BEIJING = timezone(timedelta(hours=8))


class Platform:
    """WeChat Pay's side of a notification: its key pair and the shape of what it sends."""

    def __init__(self, app):
        self.key = generate_rsa_key()
        self.key_id = "PUB_KEY_ID_01" + secrets.token_hex(16).upper()
        path = Path(app.config["WECHATPAY_PUBLIC_KEY_PATH"])
        path.write_text(public_key_pem(self.key.public_key()))
        Path(f"{path}.id").write_text(self.key_id + "\n")
        self.apiv3_key, self.mchid, self.appid = (app.config["WECHATPAY_APIV3_KEY"], app.config["WECHATPAY_MCHID"],
                                                  app.config["MINIAPP_APPID"])

    def notification(self, out_trade_no: str, amount: int, openid: str) -> tuple[bytes, dict]:
        now = datetime.now(BEIJING).isoformat(timespec="seconds")
        resource = json.dumps({
            "appid": self.appid, "mchid": self.mchid, "out_trade_no": out_trade_no,
            "transaction_id": "4200" + secrets.token_hex(12), "trade_type": "JSAPI", "trade_state": "SUCCESS",
            "trade_state_desc": "支付成功", "bank_type": "OTHERS", "attach": "", "success_time": now,
            "payer": {"openid": openid}, "amount": {"total": amount, "payer_total": amount, "currency": "CNY",
                                                    "payer_currency": "CNY"}}, separators=(",", ":"))
        body = json.dumps({"id": str(uuid.uuid4()), "create_time": now, "resource_type": "encrypt-resource",
                           "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
                           "resource": {"original_type": "transaction",
                                        **aead_encrypt(self.apiv3_key, resource, "transaction")}},
                          ensure_ascii=False, separators=(",", ":"))
        return body.encode(), self.headers(body)

    def headers(self, body: str | bytes) -> dict:
        body = body.decode() if isinstance(body, bytes) else body
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16).upper()
        return {"Content-Type": "application/json", "Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": nonce,
                "Wechatpay-Serial": self.key_id, "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
                "Wechatpay-Signature": rsa_sign(self.key, f"{timestamp}\n{nonce}\n{body}\n")}


def seed_world() -> dict:
    district = District(name="和平区")
    station = Station(code="HR001", name="换热站1")
    community = Community(district=district, name="小区1", station=station)
    season = HeatingSeason(code="2026-2027", unit_price_fen=2400, due_on=date(2026, 11, 30),
                           starts_on=date(2026, 11, 15), ends_on=date(2027, 3, 15))
    payer = WechatUser(mp_openid="o" + secrets.token_hex(13), oa_openid="o" + secrets.token_hex(13), subscribed=True)
    db.session.add_all([district, station, community, season, payer])
    db.session.commit()
    return {"community": (community.id, district.id, station.id), "season_id": season.id, "payer_id": payer.id,
            "openid": payer.mp_openid, "households": 0, "payments": 0}


def _households(world: dict, count: int, paid: bool) -> list[int]:
    """``count`` more households, each with its 2026-2027 bill (paid or unpaid); returns the bill ids."""
    cid, did, sid = world["community"]
    now = utcnow()
    first = world["households"]
    db.session.execute(insert(Household), [
        {"id": i + 1, "account_no": f"P{i:09d}", "district_id": did, "community_id": cid, "station_id": sid,
         "building": str(i % 20 + 1), "unit": str(i % 4 + 1), "room": str(100 + i % 30), "area_m2": Decimal("88.50"),
         "owner_name": "住户", "owner_phone": f"139{i:08d}", "status": "active", "created_at": now}
        for i in range(first, first + count)])
    db.session.execute(insert(Bill), [
        {"household_id": i + 1, "season_id": world["season_id"], "area_m2": Decimal("88.50"), "unit_price_fen": 2400,
         "discount_fen": 0, "amount_fen": AMOUNT, "paid_fen": AMOUNT if paid else 0, "late_fee_paid_fen": 0,
         "status": BillStatus.PAID if paid else BillStatus.UNPAID, "paid_at": now if paid else None,
         "created_at": now} for i in range(first, first + count)])
    world["households"] = first + count
    return list(db.session.scalars(select(Bill.id).where(Bill.household_id > first).order_by(Bill.id)))


def grow(world: dict, upto: int) -> None:
    """Paid payments (one item, one paid bill each) up to ``upto`` stored."""
    now = utcnow()
    while world["payments"] < upto:
        n = min(BATCH, upto - world["payments"])
        bill_ids = _households(world, n, paid=True)
        start = world["payments"]
        db.session.execute(insert(Payment), [
            {"id": start + k + 1, "out_trade_no": f"HPHIST{start + k:012d}", "transaction_id": f"4200HIST{start + k:012d}",
             "wechat_user_id": world["payer_id"], "payer_openid": world["openid"], "amount_fen": AMOUNT,
             "state": PaymentState.PAID, "prepay_id": f"wxhist{start + k}", "description": "供热费",
             "paid_at": now - timedelta(minutes=k % 100_000), "created_at": now - timedelta(minutes=k % 100_000)}
            for k in range(n)])
        db.session.execute(insert(PaymentItem), [
            {"payment_id": start + k + 1, "bill_id": bill_id, "principal_fen": AMOUNT, "late_fee_fen": 0}
            for k, bill_id in enumerate(bill_ids)])
        world["payments"] = start + n
        db.session.commit()
    _sync_sequences()
    db.session.execute(text("ANALYZE"))
    db.session.commit()


def _sync_sequences() -> None:
    """PostgreSQL: rows inserted with their ids do not move the id sequences; move them."""
    if db.engine.dialect.name == "postgresql":
        for table in ("household", "payment"):
            db.session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                    f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"))


def open_orders(world: dict, count: int) -> list[tuple[str, int]]:
    """``count`` orders waiting for WeChat Pay's notification, as the API makes them."""
    bill_ids = _households(world, count, paid=False)
    db.session.commit()
    _sync_sequences()
    payer = db.session.get(WechatUser, world["payer_id"])
    orders = []
    for bill in db.session.scalars(select(Bill).where(Bill.id.in_(bill_ids)).order_by(Bill.id)):
        payment = billing.create_payment(payer, [bill], as_of=date(2026, 11, 30))
        payment.prepay_id = "wx" + secrets.token_hex(14)
        orders.append((payment.out_trade_no, payment.amount_fen))
    db.session.commit()
    world["payments"] += count
    return orders


def notify(client, platform: Platform, signed: list[tuple[bytes, dict]]) -> tuple[float, float, list[float]]:
    """POST each notification; returns (wall ms, CPU ms) per notification and every latency (ms)."""
    latencies = []
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for body, headers in signed:
        t0 = time.perf_counter()
        res = client.post("/pay/notify", data=body, headers=headers)
        latencies.append((time.perf_counter() - t0) * 1000)
        assert res.status_code == 204, res.get_data(as_text=True)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return wall * 1000 / len(signed), cpu * 1000 / len(signed), latencies


def measure(client, platform: Platform, world: dict, n: int, rounds: int = 1) -> dict:
    """``rounds`` rounds of ``n`` new notifications, then the same again (repeats); per kind the
    median round's (wall ms, CPU ms) per notification and p50/p99 over every notification."""
    kinds = {"first": [], "repeat": []}
    for _ in range(rounds):
        orders = open_orders(world, n)
        signed = [platform.notification(no, amount, world["openid"]) for no, amount in orders]
        kinds["first"].append(notify(client, platform, signed))
        kinds["repeat"].append(notify(client, platform, [(body, platform.headers(body)) for body, _ in signed]))
        credited = db.session.scalar(select(func.count()).select_from(Payment).where(
            Payment.out_trade_no.in_([no for no, _ in orders]), Payment.state == PaymentState.PAID))
        assert credited == n, f"{credited} of {n} credited"
    result = {}
    for kind, runs in kinds.items():
        latencies = sorted(x for run in runs for x in run[2])
        result[kind] = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs),
                        statistics.median(latencies), latencies[max(int(len(latencies) * 0.99) - 1, 0)])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notifications", type=int, default=100, help="per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    args = parser.parse_args()
    with stops_what_it_starts(f"{TMP}/redis.sock"):  # the embedded Redis create_app starts
        run(args)


def run(args) -> None:
    app = create_app()
    import logging

    logging.getLogger().setLevel(logging.WARNING)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        if db.session.scalar(select(func.count()).select_from(Payment)):
            sys.exit("refusing: the bench database already has payments (use an empty throw-away database)")
        print(f"{datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; database: {db.engine.dialect.name}; instance {TMP}; "
              f"{os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        platform = Platform(app)
        world = seed_world()
        client = app.test_client()
        results = {}
        for size in (args.small, args.large):
            t0 = time.perf_counter()
            grow(world, size)
            print(f"stored {world['payments']} payments (items, bills, households) in {time.perf_counter() - t0:.1f} s")
            measure(client, platform, world, 30)                        # warm-up
            results[size] = measure(client, platform, world, args.notifications, args.rounds)
            for kind, label in (("first", "new payment"), ("repeat", "repeat")):
                wall, cpu, p50, p99 = results[size][kind]
                print(f"  {size:>7} stored, {label:<11}: {wall:.2f} ms/notification (CPU {cpu:.2f} ms, "
                      f"{1000 / wall:.0f}/s), p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        small, large = results[args.small], results[args.large]
        for kind, label in (("first", "new payment"), ("repeat", "repeat")):
            (w1, c1, p1, _), (w2, c2, p2, _) = small[kind], large[kind]
            print(f"ratio {label} {args.large}/{args.small}: wall {w2 / w1:.2f}, CPU {c2 / c1:.2f}, "
                  f"p50 {p2 / p1:.2f} (target ≈ 1, ≤ 1.5)")
        print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
