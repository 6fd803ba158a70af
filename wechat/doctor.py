"""`flask doctor`: the live settings checked before the first day, without sending anything to
residents (docs/going-live.md).

Each check asks WeChat, WeChat Pay or our own servers one harmless question and says ✓ or ✗
with what to fix; a check that fails (or crashes) never stops the others. The command exits
with 1 when any check failed. What it asks:

- the official account's and the mini-program's stable token (``POST /cgi-bin/stable_token``,
  never ``force_refresh``: other processes keep their token);
- the account's templates (``GET /cgi-bin/template/get_all_private_template``) and the
  mini-program's subscribe templates (``GET /wxaapi/newtmpl/gettemplate``) against the
  registry (wechat/templates.py): every configured id exists, with exactly the keys we fill;
- the account's menu (``GET /cgi-bin/menu/get``) against ``menu_definition()``;
- the pay and refund notify URLs: HTTPS in production, and something answers there (a GET,
  which our notify views refuse without doing anything);
- the merchant key, certificate serial, APIv3 key and WeChat Pay's public key / platform
  certificates: read and parsed, then one signed query of an order that does not exist
  (WeChat Pay answers ORDER_NOT_EXIST only to a request whose signature it accepts);
- the database (a ``SELECT 1``, migrations at head) and Redis (``PING``).
"""
from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import click
import requests
from cryptography.hazmat.primitives import serialization
from flask import current_app
from flask.cli import with_appcontext
from wechatpy.exceptions import WeChatClientException

OK, FAIL, WARN, SKIP = "ok", "fail", "warn", "skip"
MARKS = {OK: "✓", FAIL: "✗", WARN: "!", SKIP: "–"}
TEMPLATE_KEY = re.compile(r"\{\{\s*([A-Za-z_]+\d*)\.DATA\s*\}\}")


@dataclass
class Check:
    title: str
    status: str = OK
    lines: list[str] = field(default_factory=list)

    def fail(self, line: str) -> None:
        self.status = FAIL
        self.lines.append(line)

    def warn(self, line: str) -> None:
        if self.status == OK:
            self.status = WARN
        self.lines.append(line)

    def note(self, line: str) -> None:
        self.lines.append(line)


def _production() -> bool:
    return current_app.config.get("ENV_NAME") == "production"


def _wechat_error(exc: WeChatClientException) -> str:
    return f"微信返回 errcode={exc.errcode} {exc.errmsg} / WeChat answered errcode {exc.errcode}"


# --- (a) tokens ---------------------------------------------------------------------------------

def check_tokens(check: Check) -> None:
    from wechat import client as wechat_client

    for label, make, appid in (("公众号 official account", wechat_client.official_account, "WECHAT_APPID"),
                               ("小程序 mini-program", wechat_client.mini_program, "MINIAPP_APPID")):
        client = make()
        try:
            # Asks WeChat even when a token is stored (the stable token is the same for everyone).
            client.fetch_access_token(stale=client.session.get(client.access_token_key))
        except WeChatClientException as exc:
            check.fail(f"{label}（{appid}={current_app.config[appid]}）：{exc}")
        except requests.RequestException as exc:
            check.fail(f"{label}：连不上微信接口 {current_app.config['WECHAT_API_BASE']}（{exc}）/ "
                       "WeChat API unreachable: check WECHAT_API_BASE and the server's outbound network")
        else:
            check.note(f"{label}: access_token ✓ (appid {current_app.config[appid]})")


# --- (b) templates ------------------------------------------------------------------------------

def _keys_of(content: str) -> tuple[str, ...]:
    return tuple(TEMPLATE_KEY.findall(content or ""))


def _compare_templates(check: Check, setting: str, table: dict, account: dict[str, str], where_zh: str) -> None:
    """``table``: kind -> Template (ours); ``account``: template id -> content (WeChat's)."""
    for kind, template in table.items():
        if template is None:
            continue
        content = account.get(template.template_id)
        if content is None:
            check.fail(f"{setting}.{kind}: 模板ID {template.template_id}（{template.title}）不在{where_zh}的模板列表中 → "
                       f"在后台添加该模板，或把 {setting}.{kind} 改为已有的模板ID（null 表示不用）/ "
                       f"template {template.template_id} is not in the account")
            continue
        theirs, ours = set(_keys_of(content)), set(template.key_names())
        if theirs != ours:
            missing, extra = sorted(ours - theirs), sorted(theirs - ours)
            parts = []
            if missing:
                parts.append(f"模板没有我们要填的 {', '.join(missing)}")
            if extra:
                parts.append(f"我们没有填模板的 {', '.join(extra)}")
            check.fail(f"{setting}.{kind}: 模板 {template.template_id} 的关键词不符（{'；'.join(parts)}）→ 按模板的关键词改 "
                       f"{setting}.{kind}.keys（flask wechat templates --json）/ keys differ: template has "
                       f"{sorted(theirs)}, we fill {sorted(ours)} (WeChat would answer 47003)")
    used = sum(1 for t in table.values() if t is not None)
    check.note(f"{setting}: {used} 个消息类型已核对 kinds checked against {len(account)} templates in the account")


def check_templates(check: Check) -> None:
    from wechat import client as wechat_client
    from wechat import templates as wechat_templates

    try:
        registry = wechat_templates.registry()
    except wechat_templates.TemplateConfigError as exc:
        check.fail(str(exc))
        return
    oa = wechat_client.official_account()
    try:
        listed = oa.template.get_all_private_template().get("template_list") or []
    except WeChatClientException as exc:
        check.fail(f"公众号模板列表 get_all_private_template：{_wechat_error(exc)}")
    else:
        _compare_templates(check, "WECHAT_TEMPLATES", registry.oa,
                           {t["template_id"]: t.get("content", "") for t in listed}, "公众号")

    mp = wechat_client.mini_program()
    try:
        answer = mp.get(mp.api_base + "wxaapi/newtmpl/gettemplate")
    except WeChatClientException as exc:
        if exc.errcode is None and getattr(exc.response, "status_code", None) == 404:
            check.warn("小程序订阅消息模板未核对：该接口不可用 / subscribe templates not checked: "
                       "wxaapi/newtmpl/gettemplate is not served here")
        else:
            check.fail(f"小程序订阅消息模板 wxaapi/newtmpl/gettemplate：{_wechat_error(exc)}")
        return
    _compare_templates(check, "MINIAPP_TEMPLATES", registry.mp,
                       {t["priTmplId"]: t.get("content", "") for t in answer.get("data") or []}, "小程序")


# --- (c) menu -----------------------------------------------------------------------------------

def _normal_menu(buttons: list) -> list:
    """Buttons as we compare them: empty sub_button lists (WeChat adds them) dropped."""
    out = []
    for button in buttons or []:
        button = {k: v for k, v in button.items() if not (k == "sub_button" and not v)}
        if isinstance(button.get("sub_button"), dict):  # menu/get wraps them: {"list": [...]}
            button["sub_button"] = button["sub_button"].get("list", [])
        if "sub_button" in button:
            button["sub_button"] = _normal_menu(button["sub_button"])
        out.append(button)
    return out


def check_menu(check: Check) -> None:
    from wechat import client as wechat_client
    from wechat.cli import menu_definition

    try:
        answer = wechat_client.official_account().menu.get()
    except WeChatClientException as exc:
        answer = None if exc.errcode == 46003 else exc
        if answer is not None:
            check.fail(f"读取菜单 menu/get：{_wechat_error(exc)}")
            return
    if answer is None:   # 46003 (wechatpy answers None for it): no menu yet
        check.fail("公众号还没有菜单 → 运行 flask wechat sync-menu / the account has no menu: run "
                   "flask wechat sync-menu")
        return
    theirs = _normal_menu((answer.get("menu") or {}).get("button"))
    ours = _normal_menu(menu_definition()["button"])
    if theirs != ours:
        names = [b.get("name") for b in theirs]
        check.fail(f"公众号菜单与 menu_definition() 不同（现有：{names}）→ 运行 flask wechat sync-menu / the account's "
                   "menu differs from ours: run flask wechat sync-menu")
    else:
        check.note(f"菜单一致 menu matches: {[b['name'] for b in ours]}")


# --- (d) notify URLs ----------------------------------------------------------------------------

def check_notify_urls(check: Check) -> None:
    from wechat import pay

    cfg = current_app.config
    for setting, url in (("WECHATPAY_NOTIFY_URL", cfg.get("WECHATPAY_NOTIFY_URL")),
                         ("WECHATPAY_REFUND_NOTIFY_URL", pay.refund_notify_url())):
        if not url:
            check.fail(f"{setting}: 未设置 / not set")
            continue
        scheme = urlsplit(url).scheme.lower()
        if scheme != "https":
            if _production():
                check.fail(f"{setting}={url}: 生产环境须为 https:// 地址（微信支付只回调 HTTPS）/ must be https:// "
                           "in production (WeChat Pay calls back over HTTPS only)")
            else:
                check.warn(f"{setting}={url}: 开发环境可用 http，上线须改为 https / http is fine in development only")
        try:
            answer = requests.get(url, timeout=float(cfg.get("WECHAT_TIMEOUT", 5.0)), allow_redirects=False)
        except requests.RequestException as exc:
            check.fail(f"{setting}={url}: 无法连接（{type(exc).__name__}）→ 检查域名解析、TLS 证书、反向代理和防火墙 / "
                       f"unreachable: {exc}")
        else:
            check.note(f"{setting}={url}: 可达 reachable (HTTP {answer.status_code})")


# --- (e) keys -------------------------------------------------------------------------------------

def _load(check: Check, setting: str, path: str | None, what_zh: str, loader) -> bool:
    if not path:
        check.fail(f"{setting}: 未设置（{what_zh}文件路径）/ not set")
        return False
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        check.fail(f"{setting}={path}: 无法读取{what_zh}（{exc.strerror or exc}）→ 检查路径和文件权限（运行应用的用户须可读）/ "
                   f"cannot read: {exc.strerror or exc}")
        return False
    try:
        loader(data)
    except (ValueError, TypeError) as exc:
        check.fail(f"{setting}={path}: 不是 PEM 格式的{what_zh}（{exc}）/ not a PEM file of the expected kind")
        return False
    check.note(f"{setting}: {what_zh}已读取 loaded")
    return True


def check_pay_keys(check: Check) -> None:
    from wechat import pay

    cfg = current_app.config
    try:
        private_path = pay.merchant_key_path()
    except pay.PayUnavailable as exc:
        check.fail(f"WECHATPAY_PRIVATE_KEY_PATH: {exc}")
        private_path = None
    keys_ok = private_path is not None and _load(
        check, "WECHATPAY_PRIVATE_KEY_PATH", private_path, "商户私钥 apiclient_key.pem",
        lambda data: serialization.load_pem_private_key(data, password=None))
    if not cfg.get("WECHATPAY_CERT_SERIAL_NO"):
        keys_ok = False
        check.fail("WECHATPAY_CERT_SERIAL_NO: 未设置（商户API证书序列号：openssl x509 -in apiclient_cert.pem -noout "
                   "-serial）/ not set")
    apiv3 = cfg.get("WECHATPAY_APIV3_KEY") or ""
    if len(apiv3.encode()) != 32:
        keys_ok = False
        check.fail(f"WECHATPAY_APIV3_KEY: 须为32字节（现为{len(apiv3.encode())}）/ must be 32 bytes")
    try:
        modes = pay.verify_modes()
    except pay.PayUnavailable as exc:
        check.fail(str(exc))
        return
    if "public_key" in modes:
        public_path = cfg.get("WECHATPAY_PUBLIC_KEY_PATH")
        if _load(check, "WECHATPAY_PUBLIC_KEY_PATH", public_path, "微信支付公钥 pub_key.pem",
                 serialization.load_pem_public_key):
            key_id = cfg.get("WECHATPAY_PUBLIC_KEY_ID")
            if not key_id:
                try:
                    key_id = Path(f"{public_path}.id").read_text().strip()
                except OSError:
                    key_id = None
            if not key_id:
                keys_ok = False
                check.fail("WECHATPAY_PUBLIC_KEY_ID: 未设置（微信支付公钥ID，PUB_KEY_ID_…，商户平台「API安全」可见）/ not set")
            else:
                check.note(f"WECHATPAY_PUBLIC_KEY_ID: {key_id}")
        else:
            keys_ok = False
    if not keys_ok:
        check.note("密钥有误，未向微信支付发签名请求 / keys broken: no signed request made")
        return
    if "platform_cert" in modes:
        try:
            certificates = pay.download_platform_certificates()
        except pay.PayUnavailable as exc:
            check.fail(f"平台证书 GET /v3/certificates：{exc}")
        else:
            check.note(f"平台证书 platform certificates: {', '.join(c.serial_no for c in certificates) or '无 none'}")
    # One signed request: an order that cannot exist. ORDER_NOT_EXIST means the signature,
    # merchant id and certificate serial were accepted (and the answer's signature checked).
    probe = f"DOCTOR{int(time.time())}{secrets.token_hex(4)}"
    try:
        pay.query_order(probe)
    except pay.PayRejected as exc:
        hint = ("→ 核对 WECHATPAY_PRIVATE_KEY_PATH 与 WECHATPAY_CERT_SERIAL_NO 是同一张商户API证书，WECHATPAY_MCHID 正确"
                if exc.status == 401 else "")
        check.fail(f"微信支付拒绝签名请求 WeChat Pay refused a signed request: {exc} {hint}".rstrip())
    except pay.PayUnavailable as exc:
        check.fail(f"微信支付请求失败 WeChat Pay request failed: {exc}")
    else:
        check.note(f"微信支付接受了签名请求 WeChat Pay accepted a signed request (mchid {cfg['WECHATPAY_MCHID']})")


# --- (f) database and Redis ---------------------------------------------------------------------

def check_database(check: Check) -> None:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import text

    from app.extensions import db

    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            current = set(MigrationContext.configure(conn).get_current_heads())
    except Exception as exc:  # noqa: BLE001 — any driver error means "not reachable"
        check.fail(f"数据库不可达 database unreachable ({db.engine.url.render_as_string(hide_password=True)}): {exc}")
        return
    migrate = current_app.extensions["migrate"]
    heads = set(ScriptDirectory.from_config(migrate.migrate.get_config(migrate.directory)).get_heads())
    if current != heads:
        check.fail(f"数据库迁移不是最新（当前 {sorted(current) or '无'}，应为 {sorted(heads)}）→ 运行 flask db upgrade / "
                   "migrations are not at head: run flask db upgrade")
    else:
        check.note(f"数据库可达，迁移已是最新 reachable, migrations at head ({', '.join(sorted(heads))})")


def check_redis(check: Check) -> None:
    try:
        current_app.extensions["redis"].ping()
    except Exception as exc:  # noqa: BLE001
        check.fail(f"Redis 不可达 unreachable ({current_app.config.get('REDIS_URL')}): {exc}")
    else:
        check.note("Redis PING ✓")


CHECKS: list[tuple[str, Callable[[Check], None]]] = [
    ("微信接口凭证 access tokens (stable_token)", check_tokens),
    ("消息模板 message templates", check_templates),
    ("公众号菜单 official-account menu", check_menu),
    ("支付回调地址 pay notify URLs", check_notify_urls),
    ("微信支付密钥 WeChat Pay keys", check_pay_keys),
    ("数据库 database", check_database),
    ("Redis", check_redis),
]


def run_checks() -> list[Check]:
    results = []
    for title, run in CHECKS:
        check = Check(title)
        try:
            run(check)
        except Exception as exc:  # noqa: BLE001 — one broken check never stops the others
            check.fail(f"检查出错 the check itself failed: {type(exc).__name__}: {exc}")
        results.append(check)
    return results


@click.command("doctor")
@with_appcontext
def doctor_command() -> None:
    """上线前检查：微信、支付、数据库与 Redis 的配置（不向住户发送任何消息）/ check the live settings."""
    results = run_checks()
    for check in results:
        click.echo(f"{MARKS[check.status]} {check.title}")
        for line in check.lines:
            click.echo(f"    {line}")
    failed = [c for c in results if c.status == FAIL]
    if failed:
        click.echo(f"\n✗ {len(failed)} 项未通过 / {len(failed)} check(s) failed", err=True)
        raise SystemExit(1)
    click.echo("\n✓ 全部通过 / all checks passed")
