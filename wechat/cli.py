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


# WeChat's menu rules (menu/create): 1-3 top-level buttons, at most 5 under each; a name at
# most 16 bytes at the top and 60 bytes below (UTF-8; the client shows about 4 and 8 Chinese
# characters); a key at most 128 bytes, a URL at most 1024.
MENU_TOP, MENU_SUB = 3, 5
NAME_BYTES = {"top": 16, "sub": 60}
KEY_BYTES, URL_BYTES = 128, 1024


def menu_definition() -> dict:
    """The official account's menu: the pages (缴费, 报修, 我的工单, 我的…) as view buttons, the
    mini-program's repair form for those who prefer it, and clicks the chat answers."""
    cfg = current_app.config
    base = cfg["PUBLIC_BASE_URL"]
    return {"button": [
        {"type": "view", "name": "缴费", "url": f"{base}/pay"},
        {"name": "报修", "sub_button": [
            {"type": "view", "name": "在线报修", "url": f"{base}/report"},
            {"type": "view", "name": "我的工单", "url": f"{base}/t"},
            # Old clients without mini-program support open the url instead: the same form as a page.
            {"type": "miniprogram", "name": "小程序报修", "url": f"{base}/report",
             "appid": cfg["MINIAPP_APPID"], "pagepath": "pages/repair/new"},
        ]},
        {"name": "我的", "sub_button": [
            {"type": "view", "name": "我的户号", "url": f"{base}/me"},
            {"type": "view", "name": "停热公告", "url": f"{base}/outages"},
            {"type": "click", "name": "联系客服", "key": "MENU_SERVICE"},
        ]},
    ]}


def menu_problems(menu: dict) -> list[str]:
    """What WeChat would refuse in ``menu`` (its counts and byte limits), in Chinese."""
    problems = []
    buttons = menu.get("button") or []
    if not 1 <= len(buttons) <= MENU_TOP:
        problems.append(f"一级菜单须为1到{MENU_TOP}个，现有{len(buttons)}个")
    for button in buttons:
        subs = button.get("sub_button") or []
        if len(subs) > MENU_SUB:
            problems.append(f"“{button.get('name')}”下的二级菜单超过{MENU_SUB}个")
        for item, level in ((button, "top"), *((sub, "sub") for sub in subs)):
            name = item.get("name") or ""
            if not name or len(name.encode()) > NAME_BYTES[level]:
                problems.append(f"菜单名“{name}”须为1到{NAME_BYTES[level]}字节")
            if len((item.get("key") or "").encode()) > KEY_BYTES:
                problems.append(f"“{name}”的key超过{KEY_BYTES}字节")
            if len((item.get("url") or "").encode()) > URL_BYTES:
                problems.append(f"“{name}”的链接超过{URL_BYTES}字节")
    return problems


def create_menu() -> dict:
    """Set the menu on the account (the real one, or the sandbox in the demo)."""
    menu = menu_definition()
    problems = menu_problems(menu)
    if problems:
        raise click.ClickException("菜单不符合微信的规则：" + "；".join(problems))
    wechat_client.official_account().menu.create(menu)
    return menu


@wechat_cli.command("sync-menu")
@click.option("--dry-run", is_flag=True, help="print the menu instead of creating it")
def sync_menu(dry_run: bool) -> None:
    """Create the official account's menu: 缴费 · 报修 (在线报修, 我的工单, 小程序报修) · 我的
    (我的户号, 停热公告, 联系客服), the pages as view buttons."""
    if dry_run:
        click.echo(json.dumps(menu_definition(), ensure_ascii=False, indent=2))
        return
    try:
        create_menu()
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
    create_menu()
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
