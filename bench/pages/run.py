"""bench/pages: the first load of each official-account page in Chromium at 375 px, against a
static one-line HTML page served by the same app in the same run (the baseline).

The app (temp SQLite, or BENCH_DATABASE_URL; embedded Redis, or BENCH_REDIS_URL) and the WeChat
sandbox (which knows the bench's merchant key) are served on loopback ports in this process;
a resident in arrears with a paid order, and a crew member with a task, sign in through the
sandbox's web authorisation; then every page is loaded ``--rounds`` times with an empty cache
(a new browser context with the person's cookies), interleaved with the baseline. Printed per
page: median bytes transferred (headers and bodies of every response), requests, median time to
the load event, and both as ratios to the baseline. Everything started is stopped at the end.

    .venv/bin/python bench/pages/run.py
    .venv/bin/python bench/pages/run.py --rounds 9

WeChat's browser on a phone network is the target: the page weight (bytes, requests) is what
the network pays; the times here are loopback times on this machine.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.lifecycle import exit_on_sigterm  # noqa: E402
from bench.pages.measure import WECHAT_PHONE, first_load, sign_in_browser  # noqa: E402

BASELINE = '<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>基线</title><p>ok</p></html>'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, wsgi_app, port: int):
        from werkzeug.serving import make_server

        self.server = make_server("127.0.0.1", port, wsgi_app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def build_app(tmp: str, app_port: int, sandbox_port: int, merchant_key: str):
    from app import create_app
    from app.config import TestConfig, _normalise_db_url
    from app.embedded_redis import ensure_embedded_redis

    cfg = TestConfig()
    url = os.environ.get("BENCH_DATABASE_URL")
    cfg.SQLALCHEMY_DATABASE_URI = _normalise_db_url(url) if url else f"sqlite:///{tmp}/bench.db"
    cfg.REDIS_URL = os.environ.get("BENCH_REDIS_URL") or ensure_embedded_redis(f"{tmp}/redis.sock")
    base = f"http://127.0.0.1:{app_port}"
    sandbox = f"http://127.0.0.1:{sandbox_port}/sandbox"
    cfg.PUBLIC_BASE_URL = base
    cfg.WECHAT_API_BASE, cfg.WECHATPAY_API_BASE = sandbox + "/", sandbox
    cfg.WECHATPAY_PRIVATE_KEY_PATH = merchant_key
    cfg.WECHATPAY_PUBLIC_KEY_PATH, cfg.WECHATPAY_PUBLIC_KEY_ID = f"{tmp}/wechatpay_public_key.pem", None
    cfg.WECHATPAY_NOTIFY_URL = base + "/pay/notify"
    app = create_app(cfg)
    app.add_url_rule("/bench/baseline", "bench_baseline", lambda: BASELINE)
    return app


def reset_schema() -> None:
    from flask_migrate import upgrade
    from sqlalchemy import text

    from app.extensions import db

    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade()


def seed(sandbox_url: str) -> dict:
    """The demo's 刘秀英 (two seasons in arrears, one bill paid through WeChat Pay) and crew2_m1
    with a repair of hers; both registered in the sandbox."""
    import requests

    from app.extensions import db
    from app.models import (
        Community, Crew, CrewArea, District, HeatingSeason, Household, HouseholdBinding, Role, Staff, Station,
        WechatUser, utcnow,
    )
    from app.services import billing, tickets
    from app.services.actors import Actor

    def person(nickname):
        res = requests.post(f"{sandbox_url}/users", json={"nickname": nickname, "follow": True}, timeout=10)
        res.raise_for_status()
        return res.json()

    district, station = District(name="和平区"), Station(code="S1", name="一号换热站")
    db.session.add_all([district, station])
    db.session.flush()
    community = Community(district_id=district.id, name="南京路小区", station_id=station.id)
    crew = Crew(name="和平维修二班")
    db.session.add_all([community, crew])
    db.session.flush()
    crew.areas.append(CrewArea(station_id=station.id))
    household = Household(account_no="10100006", district_id=district.id, community_id=community.id,
                          station_id=station.id, building="3", unit="2", room="501", area_m2=Decimal("86.40"),
                          owner_name="刘秀英", status="active")
    member = Staff(username="crew2_m1", name="张志强", role=Role.CREW_MEMBER, crew_id=crew.id)
    db.session.add_all([household, member])
    today = billing.local_today()
    seasons = [HeatingSeason(code=f"{today.year - i - 1}-{today.year - i}", unit_price_fen=2400,
                             starts_on=today - timedelta(days=56 + 365 * i), ends_on=today + timedelta(days=64 - 365 * i),
                             due_on=today - timedelta(days=40 + 365 * i)) for i in range(3)]
    db.session.add_all(seasons)
    db.session.flush()
    for season in seasons:
        billing.issue_bills(season, [household])
    liu_person, crew_person = person("刘秀英"), person("crew2_m1")
    liu = WechatUser(oa_openid=liu_person["openid"], mp_openid=liu_person["mp_openid"], subscribed=True,
                     nickname="刘秀英")
    crew_user = WechatUser(oa_openid=crew_person["openid"], mp_openid=crew_person["mp_openid"], subscribed=True,
                           nickname="crew2_m1", staff_id=member.id)
    db.session.add_all([liu, crew_user])
    db.session.flush()
    db.session.add(HouseholdBinding(wechat_user_id=liu.id, household_id=household.id, proof="owner_name"))
    oldest = billing.create_payment(liu, household_bills(household.id)[-1:])
    db.session.commit()
    billing.credit_payment(oldest.out_trade_no, "4200000000000000000000000001", oldest.amount_fen, utcnow())
    ticket = tickets.create_ticket(Actor.of_resident(liu), type="repair", source="official_account",
                                   description="卧室暖气不热", category="no_heat", household=household)
    if ticket.assignee_id != member.id:
        tickets.assign_ticket(ticket, Actor.system(), crew=crew, staff=member)
    db.session.commit()
    return {"paid": oldest.out_trade_no, "ticket": ticket}


def household_bills(household_id: int):
    from app.extensions import db
    from app.models import Bill, HeatingSeason

    return list(db.session.scalars(db.select(Bill).join(Bill.season).where(Bill.household_id == household_id)
                                   .order_by(HeatingSeason.starts_on.desc())))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="first loads per page (median printed)")
    args = parser.parse_args(argv)
    chromium = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"

    tmp = tempfile.mkdtemp(prefix="bench-pages-")
    servers, browser, playwright = [], None, None
    exit_on_sigterm()  # a `kill` still closes the browser and stops the servers and Redis below
    try:
        from wechat.sandbox import create_sandbox_app
        from wechat.sandbox.crypto import generate_rsa_key, private_key_pem
        from wechat.sandbox_link import sandbox_config

        merchant_key = f"{tmp}/apiclient_key.pem"
        Path(merchant_key).write_text(private_key_pem(generate_rsa_key()))
        app_port, sandbox_port = free_port(), free_port()
        app = build_app(tmp, app_port, sandbox_port, merchant_key)
        base = app.config["PUBLIC_BASE_URL"]
        sandbox_app = create_sandbox_app(sandbox_config(
            app.config, store_path=f"{tmp}/sandbox.db", callback_url=f"{base}/wechat/callback",
            pay_public_key_path=f"{tmp}/wechatpay_public_key.pem", merchant_key_path=merchant_key,
            events_async=False))
        servers.append(Server(sandbox_app, sandbox_port))
        with app.app_context():
            reset_schema()
            world = seed(f"http://127.0.0.1:{sandbox_port}/sandbox")
            from app.links import task_url

            task = task_url(world["ticket"])
        servers.append(Server(app, app_port))

        from playwright.sync_api import sync_playwright

        playwright = sync_playwright().start()
        browser = playwright.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        people = {}
        for nickname, first in (("刘秀英", f"{base}/pay"), ("crew2_m1", task)):
            context = browser.new_context(viewport=WECHAT_PHONE, locale="zh-CN")
            page = context.new_page()
            sign_in_browser(page, first, nickname)
            people[nickname] = page
        liu, crew = people["刘秀英"], people["crew2_m1"]
        # An order waiting to be paid: its page carries the WeixinJSBridge payment.
        liu.goto(f"{base}/pay")
        liu.click("[data-testid=pay-submit]")
        liu.wait_for_selector("[data-testid=wxpay-sheet]")
        order_url = liu.url.split("?")[0]
        pages = [
            ("缴费 /pay", liu, f"{base}/pay"),
            ("确认缴费 /pay/orders/…", liu, order_url),
            ("缴费结果 /pay/result/…", liu, f"{base}/pay/result/{world['paid']}"),
            ("电子收据 /pay/receipt/…", liu, f"{base}/pay/receipt/{world['paid']}"),
            ("收据核验 /r/…", liu, None),
            ("我的 /me", liu, f"{base}/me"),
            ("工单 /t", liu, f"{base}/t"),
            ("报修 /report", liu, f"{base}/report"),
            ("停热 /outages", liu, f"{base}/outages"),
            ("任务 /mp/task?id=…", crew, task),
            ("我的任务 /mp/tasks", crew, f"{base}/mp/tasks"),
        ]
        with app.app_context():
            from app.services.receipts import receipt_url

            pages[4] = (pages[4][0], liu, receipt_url(world["paid"]))
        baseline, figures = [], {name: [] for name, _, _ in pages}
        for _ in range(args.rounds):
            baseline.append(first_load(browser, liu, f"{base}/bench/baseline"))
            for name, person, url in pages:
                figures[name].append(first_load(browser, person, url))
        b_bytes = statistics.median(f["bytes"] for f in baseline)
        b_ms = statistics.median(f["load_ms"] for f in baseline)
        print(f"pages bench: {args.rounds} first loads each at 375 px, empty cache; {os.cpu_count()} CPUs; "
              f"load average {os.getloadavg()[0]:.2f}")
        print(f"{'page':26} {'status':>6} {'req':>4} {'bytes':>8} {'×base':>7} {'load ms':>8} {'×base':>7}")
        print(f"{'baseline (1-line HTML)':26} {200:>6} {baseline[0]['requests']:>4} {b_bytes:>8.0f} {1:>7.2f} "
              f"{b_ms:>8.1f} {1:>7.2f}")
        for name, runs in figures.items():
            size = statistics.median(f["bytes"] for f in runs)
            ms = statistics.median(f["load_ms"] for f in runs)
            print(f"{name:26} {runs[0]['status']:>6} {runs[0]['requests']:>4} {size:>8.0f} {size / b_bytes:>7.2f} "
                  f"{ms:>8.1f} {ms / b_ms:>7.2f}")
        return 0
    finally:
        if browser is not None:
            browser.close()
        if playwright is not None:
            playwright.stop()
        for server in reversed(servers):
            server.stop()
        if not os.environ.get("BENCH_REDIS_URL"):
            from app.embedded_redis import stop_embedded_redis

            stop_embedded_redis(f"{tmp}/redis.sock")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
