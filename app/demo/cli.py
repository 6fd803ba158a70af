"""`flask seed-demo`: create the demo city (idempotent, one transaction)."""
from __future__ import annotations

import time

import click
from flask import current_app

from app.demo import data
from app.demo.seed import DEFAULT_HOUSEHOLDS, seed_demo
from app.extensions import db


@click.command("seed-demo")
@click.option("--households", type=click.IntRange(min=20), default=DEFAULT_HOUSEHOLDS, show_default=True,
              help="Number of households (smaller for quick test runs).")
@click.option("--if-empty", is_flag=True, help="Seed only when the database has no households yet.")
def seed_demo_command(households: int, if_empty: bool) -> None:
    """Create the demo city (idempotent: a second run changes nothing)."""
    started = time.monotonic()
    try:
        result = seed_demo(households, if_empty=if_empty, tz=current_app.config["TIMEZONE"],
                           late_fee_bp_per_day=current_app.config["LATE_FEE_BP_PER_DAY"])
        if result.created:
            db.session.commit()  # the only commit: an interrupted run leaves nothing behind
        else:
            db.session.rollback()
    except BaseException:
        db.session.rollback()
        raise
    if result.status == "refused":
        raise click.ClickException(result.message)
    click.echo(result.message)
    _register_in_sandbox()
    if not result.created:
        return
    c = result.counts
    click.echo(
        f"  区域 areas: {c['districts']} 个区 districts, {c['communities']} 个小区 communities, "
        f"{c['stations']} 座换热站 stations\n"
        f"  住户 households: {c['households']}（报停 suspended {c['suspended']}），"
        f"绑定微信 bound {c['bound_households']}, 微信用户 WeChat users {c['wechat_users']}\n"
        f"  账单 bills: {c['bills']}, 缴费 payments: {c['payments']}, "
        f"欠费户 households in arrears: {c['arrears_households']} ({result.arrears_rate:.1%})\n"
        f"  工单 tickets: {c['tickets']}（未办结 open {c['open_tickets']}，超时 overdue {c['overdue_tickets']}）, "
        f"停热 outages: {c['outages']}, 公告 announcements: {c['announcements']}, 知识库 FAQ: {c['faq']}\n"
        f"  员工 staff: {c['staff']}, 班组 crews: {c['crews']}   ({time.monotonic() - started:.1f}s)"
    )
    click.echo(f"演示账号 demo logins (密码 password: {data.DEMO_PASSWORD}):")
    for username, name, role in result.logins:
        click.echo(f"  {username:<12} {name}（{role}）")


def _register_in_sandbox() -> None:
    """The demo's people, templates and paid orders must exist in the WeChat sandbox too
    (DESIGN §4.4); `make run` starts the sandbox after seeding and registers them then."""
    from app.demo import sandbox_people
    from wechat.cli import register_demo

    try:
        base = sandbox_people.sandbox_base()
    except sandbox_people.NotASandbox:
        return
    if not sandbox_people.wait_for_sandbox(base, 0):
        click.echo(f"微信沙箱未运行（{base}）：启动后运行 flask wechat register-demo 注册演示用户"
                   "（make run 会自动注册）")
        return
    click.get_current_context().invoke(register_demo, wait_seconds=0)
