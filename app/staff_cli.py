"""`flask staff ...`: staff administration from the server's shell.

``flask staff bind-qr USERNAME`` issues a one-time WeChat binding code (24 hours, one use;
it retires the person's older unused codes), asks WeChat for a temporary official-account
QR carrying the scene ``staff:<code>`` and prints the code, the scene, the expiry and the
QR in the terminal. Without WeChat (``--no-wechat``, or the API failing) the terminal QR
holds only the scene string: a tester can still "scan" it in the sandbox by sending a SCAN
event with that scene.
"""
from __future__ import annotations


import click
import requests
from flask.cli import AppGroup
from sqlalchemy import func, select

from app import qrcodes
from app.clock import local_now
from app.errors import DomainError
from app.extensions import db
from app.models import Role, Staff
from app.services import binding
from wechat import qr as wechat_qr
from wechat.client import TokenRefreshBusy
from wechat.errors import WeChatException

staff_cli = AppGroup("staff", help="员工管理 (staff administration)")


@staff_cli.command("bind-qr")
@click.argument("username")
@click.option("--no-wechat", is_flag=True, help="do not call WeChat; print a QR of the scene string only")
def bind_qr(username: str, no_wechat: bool) -> None:
    """Issue a WeChat binding QR for USERNAME (本人微信扫码绑定，24小时内有效，仅可使用一次)."""
    staff = db.session.scalar(select(Staff).where(func.lower(Staff.username) == username.strip().lower()))
    if staff is None:
        raise click.ClickException(f"没有用户名为 {username} 的员工")
    if not staff.active:
        raise click.ClickException(f"员工 {staff.username}（{staff.name}）已停用，无法生成绑定二维码")
    try:
        code = binding.issue_staff_bind_code(staff)
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from exc
    db.session.commit()

    scene = wechat_qr.staff_scene(code.code)
    expires = local_now(code.expires_at)
    click.echo(f"员工 staff:   {staff.username}（{staff.name}，{Role.LABELS.get(staff.role, staff.role)}）")
    click.echo(f"绑定码 code:  {code.code}")
    click.echo(f"场景值 scene: {scene}")
    click.echo(f"有效期至 expires: {expires:%Y-%m-%d %H:%M} (北京时间)")
    qr_data = scene
    if not no_wechat:
        try:
            qr_data = wechat_qr.create_staff_qr(code.code)["url"]
            click.echo(f"公众号二维码 WeChat QR: {qr_data}")
        except (WeChatException, requests.RequestException, TokenRefreshBusy, KeyError) as exc:
            click.echo(f"警告：微信接口调用失败（{exc}），下方二维码仅含场景值，微信扫码无法绑定。", err=True)
    click.echo(qrcodes.text(qr_data))
    click.echo("请本人用微信扫码绑定，24小时内有效，仅可使用一次。")
