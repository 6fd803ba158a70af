"""`flask wechat ...`: official-account housekeeping."""
from __future__ import annotations

import json

import click
import requests
from flask import current_app
from flask.cli import AppGroup
from wechatpy.exceptions import WeChatClientException

from wechat import client as wechat_client
from wechat import templates as wechat_templates
from wechat.sandbox_link import sandbox_templates

wechat_cli = AppGroup("wechat", help="公众号管理 (official account housekeeping)")


def menu_definition() -> dict:
    """The official account's menu: at most 3 top-level buttons, 5 under each (WeChat's rule)."""
    cfg = current_app.config
    return {"button": [
        {"type": "click", "name": "缴费查询", "key": "MENU_BILL"},
        {"type": "miniprogram", "name": "我要报修", "url": cfg["PUBLIC_BASE_URL"],
         "appid": cfg["MINIAPP_APPID"], "pagepath": "pages/repair/new"},
        {"name": "服务中心", "sub_button": [
            {"type": "click", "name": "停热公告", "key": "MENU_OUTAGE"},
            {"type": "click", "name": "我的工单", "key": "MENU_TICKETS"},
            {"type": "click", "name": "联系客服", "key": "MENU_SERVICE"},
        ]},
    ]}


@wechat_cli.command("sync-menu")
@click.option("--dry-run", is_flag=True, help="print the menu instead of creating it")
def sync_menu(dry_run: bool) -> None:
    """Create the official account's menu (缴费查询, 我要报修, 停热公告, 我的工单, 联系客服)."""
    menu = menu_definition()
    if dry_run:
        click.echo(json.dumps(menu, ensure_ascii=False, indent=2))
        return
    try:
        wechat_client.official_account().menu.create(menu)
    except WeChatClientException as exc:
        raise click.ClickException(f"创建菜单失败：errcode={exc.errcode} {exc.errmsg}") from exc
    click.echo("公众号菜单已更新 (menu created).")


@wechat_cli.command("dev-keys")
def dev_keys() -> None:
    """Make sure the development WeChat Pay merchant key exists (make run; never production)."""
    from wechat.pay import merchant_key_path

    click.echo(merchant_key_path())


@wechat_cli.command("templates")
@click.option("--json", "as_json", is_flag=True,
              help="print WECHAT_TEMPLATES and MINIAPP_TEMPLATES as JSON, ready to edit (going live)")
def list_templates(as_json: bool) -> None:
    """Each kind of message with its template id and keys (消息模板清单)."""
    registry = wechat_templates.registry()
    if as_json:
        def table(templates):
            return {kind: {"template_id": t.template_id, "title": t.title, "keys": dict(t.keys),
                           **({"enums": {k: list(v) for k, v in t.enums.items()}} if t.enums else {})}
                    for kind, t in templates.items()}

        click.echo(json.dumps({"WECHAT_TEMPLATES": table(registry.oa), "MINIAPP_TEMPLATES": table(registry.mp)},
                              ensure_ascii=False, indent=2))
        return
    for row in registry.listing():
        click.echo(f"{row['kind']}  {row['label']}（{'员工' if row['audience'] == 'staff' else '住户'}）")
        for channel, name in (("template", "模板消息 WECHAT_TEMPLATES"), ("subscribe", "订阅消息 MINIAPP_TEMPLATES")):
            t = row[channel]
            if t is None:
                click.echo(f"    {name}: —")
                continue
            demo = " [演示模板ID demo id]" if t["demo"] else ""
            click.echo(f"    {name}: {t['template_id']} {t['title']}{demo}")
            for k in t["keys"]:
                click.echo(f"        {k['key']:<20} {k['type_label']:<4} ← {k['field']}（{k['label']}）")


@wechat_cli.command("register-demo")
@click.option("--wait", "wait_seconds", type=float, default=0, show_default=True,
              help="seconds to wait for the sandbox to come up (make run starts it alongside)")
def register_demo(wait_seconds: float) -> None:
    """Register the account's message templates and the database's WeChat users (the demo
    city) in the WeChat sandbox."""
    from app.demo import sandbox_people

    try:
        base = sandbox_people.sandbox_base()
    except sandbox_people.NotASandbox as exc:
        raise click.ClickException(str(exc)) from exc
    if not sandbox_people.wait_for_sandbox(base, wait_seconds):
        raise click.ClickException(f"微信沙箱未响应：{base}")
    # The account's templates first: the sandbox refuses sends with templates it does not know.
    res = requests.post(f"{base}/templates", json={"templates": sandbox_templates(current_app.config)}, timeout=30)
    if res.status_code != 200:
        raise click.ClickException(f"沙箱未接受消息模板：{res.status_code} {res.text[:300]}")
    click.echo(f"沙箱消息模板 sandbox templates: {len(res.json()['templates'])} 个已登记 registered")
    result = sandbox_people.register_people(base)
    click.echo(f"沙箱用户 sandbox users: {result.created} 新注册 registered, {result.existing} 已存在 already there")
    for error in result.errors[:10]:
        click.echo(f"  第{error['index'] + 1}个 #{error['index'] + 1}: {error['error']}", err=True)
    if result.errors:
        raise click.ClickException(f"{len(result.errors)} 个用户未能注册")
    # The account's menu, as `flask wechat sync-menu` sets it on the real account.
    wechat_client.official_account().menu.create(menu_definition())
    click.echo("沙箱公众号菜单 sandbox menu: 已设置 set")
    created, existing = sandbox_people.register_payments(base)
    click.echo(f"沙箱支付记录 sandbox paid orders: {created} 新登记 registered, {existing} 已存在 already there")


@wechat_cli.command("link-identities")
def link_identities() -> None:
    """Ask WeChat for the unionid of followers without one; join their mini-program rows."""
    from jobs.identity import link_all

    stats = link_all()
    click.echo(f"已查询 asked {stats['asked']}: 关联 linked {stats['linked']}, 合并 merged {stats['merged']}, "
               f"无 unionid without {stats['without_unionid']}")
