"""GET/POST /wechat/callback — the official account's server URL (WECHAT.md §1).

Verify the signature and the timestamp, decrypt in safe mode, parse safely, deduplicate
WeChat's retries by a unique row, dispatch to the conversation, and answer within WeChat's
5 seconds — slow work goes to RQ. A message we can parse never gets a 5xx: an unexpected
error is logged and the user is told politely.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import timezone

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring
from flask import Blueprint, Response, abort, current_app, request
from sqlalchemy import create_engine, event
from sqlalchemy import text as sql
from sqlalchemy.exc import DBAPIError, IntegrityError
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature
from werkzeug.exceptions import RequestEntityTooLarge
from xml.etree.ElementTree import ParseError

from app.extensions import db
from app.dbutil import insert_or_skip
from app.http_limits import body_limit
from app.models import InboundMessage, utcnow
from wechat import conversation
from wechat.inbound import parse_message

log = logging.getLogger(__name__)
bp = Blueprint("wechat_callback", __name__)

MAX_BODY = 1024 * 1024          # WeChat's pushes are tiny; anything near this is not WeChat
TIMESTAMP_TOLERANCE = 300       # seconds either way
REPLY_CACHE_TTL = 60            # a retry of a message we answered gets the same answer
SORRY = "系统繁忙，请稍后再试。如需帮助请拨打客服热线。"


def _plain_error(status: int, message: str) -> Response:
    return Response(message, status=status, mimetype="text/plain")


def _verify_query() -> tuple[str, str]:
    args = request.args
    signature, timestamp, nonce = args.get("signature", ""), args.get("timestamp", ""), args.get("nonce", "")
    try:
        check_signature(current_app.config["WECHAT_TOKEN"], signature, timestamp, nonce)
    except InvalidSignatureException:
        abort(_plain_error(403, "invalid signature"))
    if not _unix_seconds(timestamp) or abs(time.time() - int(timestamp)) > TIMESTAMP_TOLERANCE:
        abort(_plain_error(403, "stale timestamp"))
    return timestamp, nonce


def _unix_seconds(value: str) -> bool:
    """ASCII digits only, and few of them ("²" is a digit to str.isdigit, not to int)."""
    return value.isascii() and value.isdigit() and len(value) <= 12


def _cryptos() -> list[WeChatCrypto]:
    cfg = current_app.config
    keys = [k for k in (cfg.get("WECHAT_AES_KEY"), cfg.get("WECHAT_AES_KEY_PREVIOUS")) if k]
    return [WeChatCrypto(cfg["WECHAT_TOKEN"], key, cfg["WECHAT_APPID"]) for key in keys]


@bp.get("/wechat/callback")
def verify_url():
    _verify_query()
    return _plain_error(200, request.args.get("echostr", ""))


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc):
    return _plain_error(413, "body too large")


@bp.post("/wechat/callback")
@body_limit(MAX_BODY)
def receive():
    timestamp, nonce = _verify_query()
    body = request.get_data(cache=False)  # 413 past MAX_BODY, chunked or not (app/http_limits.py)

    crypto = None
    if request.args.get("encrypt_type") == "aes":
        xml = None
        for candidate in _cryptos():  # current key first, then the previous one (rotation)
            try:
                xml = candidate.decrypt_message(body, request.args.get("msg_signature", ""), timestamp, nonce)
                crypto = candidate
                break
            except InvalidSignatureException:
                return _plain_error(403, "invalid msg_signature")
            except (InvalidAppIdException, ValueError, KeyError, TypeError, ParseError, Exception) as exc:
                log.info("callback: cannot decrypt with one key: %s", type(exc).__name__)
        if xml is None:
            return _plain_error(400, "cannot decrypt message")
    else:
        xml = body.decode("utf-8", errors="replace")

    try:
        safe_fromstring(xml.encode() if isinstance(xml, str) else xml)  # refuses DTDs and entities
        msg = parse_message(xml)
    except (DefusedXmlException, ParseError, ValueError, KeyError, TypeError, AttributeError):
        return _plain_error(400, "malformed XML")
    if not getattr(msg, "source", None):
        return _plain_error(400, "message without FromUserName")

    key = str(msg.id) if getattr(msg, "id", 0) else f"{msg.source}:{int(msg.time)}"
    redis = current_app.extensions["redis"]
    caller = conversation.prepare(msg)

    question = conversation.faq_only(msg, caller)
    if question is not None:
        # Fast path — most messages: a question answered from the FAQ changes nothing but
        # the dedupe row, so that row is written alone and no ORM session is opened.
        # An FAQ answer has no side effect, so WeChat's retry simply gets it computed again.
        _record_inbound_alone(key, msg, xml)
        conversation.after_commit()  # at most a daily identity look-up
        return _answer(conversation.answer_from_faq(question, caller), msg, crypto, nonce)

    # One transaction: the dedupe row and the handler's changes commit together; a retry
    # of the same message collides on the unique key.
    if not _record_inbound(key, msg, xml):
        return _duplicate(key, msg, crypto, nonce)
    watch = _WriteWatch()
    try:
        text = conversation.handle(msg, caller)
        watch.commit()
    except IntegrityError:
        watch.close()
        db.session.rollback()  # a concurrent copy of this message won the race
        return _answer(None, msg, crypto, nonce)
    except Exception:
        watch.close()
        db.session.rollback()
        log.exception("callback: handler failed for %s", key)
        _record_inbound(key, msg, xml)  # keep the message (and its dedupe) without the half work
        db.session.commit()
        text = SORRY
    if text:
        redis.set(f"wechat:reply:{key}", text, ex=REPLY_CACHE_TTL)
    conversation.after_commit()
    return _answer(text, msg, crypto, nonce)


class _WriteWatch:
    """Watches the transaction that holds the dedupe row while the handler runs. When the
    handler wrote nothing (a bill look-up, a help text, advice to someone not bound), the
    dedupe row is all there is to commit, and on PostgreSQL that commit does not wait for the
    WAL flush (``SET LOCAL synchronous_commit TO OFF``): as with the fast path's row, a
    database crash may lose the record of a message that changed nothing. A transaction with
    any other write (a ticket, a binding, a chat message …) commits durably as always."""

    def __init__(self):
        self.conn = db.session.connection() if db.engine.dialect.name == "postgresql" else None
        self.wrote = False
        if self.conn is not None:
            event.listen(self.conn, "before_cursor_execute", self._saw)

    def _saw(self, conn, cursor, statement, parameters, context, executemany):
        head = statement.lstrip()[:6].upper()
        if head != "SELECT" or " FOR UPDATE" in statement.upper():
            self.wrote = True

    def commit(self) -> None:
        try:
            if self.conn is not None:
                db.session.flush()
                if not self.wrote and db.session.connection() is self.conn:
                    db.session.execute(sql("SET LOCAL synchronous_commit TO OFF"))
        finally:
            self.close()
        db.session.commit()

    def close(self) -> None:
        if self.conn is not None and event.contains(self.conn, "before_cursor_execute", self._saw):
            event.remove(self.conn, "before_cursor_execute", self._saw)


def _duplicate(key: str, msg, crypto, nonce: str) -> Response:
    """WeChat retried a message we already took: the same answer, no second effect."""
    cached = current_app.extensions["redis"].get(f"wechat:reply:{key}")
    return _answer(cached.decode() if cached else None, msg, crypto, nonce)


_INSERT_INBOUND: dict = {}  # per dialect: built once, executed with parameters


def _inbound_insert():
    dialect = db.engine.dialect.name
    if dialect not in _INSERT_INBOUND:
        table = InboundMessage.__table__
        _INSERT_INBOUND[dialect] = insert_or_skip(table, conflict=["dedupe_key"]).returning(table.c.id)
    return _INSERT_INBOUND[dialect]


_INBOUND_COLUMNS = ("dedupe_key", "openid", "msg_type", "event", "content", "raw", "received_at")


def _inbound_row(key: str, msg, xml: str) -> dict:
    return {"dedupe_key": key[:100], "openid": msg.source, "msg_type": msg.type,
            "event": getattr(msg, "event", None), "content": getattr(msg, "content", None),
            "raw": xml[:20000], "received_at": utcnow()}


def _record_inbound(key: str, msg, xml: str) -> bool:
    """Add the dedupe row to the session's transaction; False when seen before."""
    row = _inbound_row(key, msg, xml)
    if db.engine.dialect.name == "postgresql":  # as the fast path writes it (_record_inbound_alone)
        found = db.session.connection().exec_driver_sql(_driver_insert_sql(db.engine), _driver_row(row)).first()
    else:
        found = db.session.execute(_inbound_insert(), row).first()
    if found is None:
        db.session.rollback()
        return False
    return True


def _record_inbound_alone(key: str, msg, xml: str) -> bool:
    """Write the dedupe row as one autocommitted statement (no BEGIN/COMMIT round trips);
    False when seen before."""
    row = _inbound_row(key, msg, xml)
    engine = _log_engine()
    if engine is db.engine:  # not PostgreSQL: the app's engine
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            return conn.execute(_inbound_insert(), row).first() is not None
    # PostgreSQL: the statement compiled once, its parameters as the driver takes them, on the
    # log engine's autocommit connections — compiling and processing each time cost about as
    # much CPU as the rest.
    statement, row = _driver_insert_sql(engine), _driver_row(row)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(statement, row).first() is not None
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    # The log engine does not ping before each use: a connection the database dropped fails
    # once (and the pool is refreshed); the statement is tried again on a new one.
    with engine.connect() as conn:
        return conn.exec_driver_sql(statement, row).first() is not None


def _driver_row(row: dict) -> dict:
    """The row's parameters as PostgreSQL's driver takes them: what UTCDateTime's bind
    processing does (naive UTC for the TIMESTAMP column)."""
    return {**row, "received_at": row["received_at"].astimezone(timezone.utc).replace(tzinfo=None)}


_DRIVER_INSERT: dict = {}  # per dialect: the dedupe INSERT, compiled once for its driver


def _driver_insert_sql(engine) -> str:
    dialect = engine.dialect.name
    if dialect not in _DRIVER_INSERT:
        _DRIVER_INSERT[dialect] = str(_inbound_insert().compile(dialect=engine.dialect,
                                                                column_keys=list(_INBOUND_COLUMNS)))
    return _DRIVER_INSERT[dialect]


_LOG_ENGINE_KEY = "wechat_callback_log_engine"
_log_engine_lock = threading.Lock()


def _log_engine():
    """Where the fast path writes its row. On PostgreSQL an engine of its own whose commits do
    not wait for the WAL to reach the disk (``synchronous_commit=off``, ~6 ms less per
    question here): that row only records a question answered from the FAQ, with no side
    effect to deduplicate, so a database crash may lose the last moment of such rows and
    nothing else — a ticket, a binding, any effect commits on the app's engine, durably.
    Other databases: the app's engine."""
    engine = db.engine
    if engine.dialect.name != "postgresql":
        return engine
    found = current_app.extensions.get(_LOG_ENGINE_KEY)
    if found is None or found[0] is not engine:
        with _log_engine_lock:
            found = current_app.extensions.get(_LOG_ENGINE_KEY)
            if found is None or found[0] is not engine:
                # No ping round trip before each use (a dropped connection is retried once).
                found = (engine, create_engine(engine.url, pool_pre_ping=False, isolation_level="AUTOCOMMIT",
                                               pool_reset_on_return=None,
                                               connect_args={"options": "-c synchronous_commit=off"}))
                current_app.extensions[_LOG_ENGINE_KEY] = found
    return found[1]


def _answer(text: str | None, msg, crypto: WeChatCrypto | None, nonce: str) -> Response:
    if not text:
        return _plain_error(200, "success")
    xml = TextReply(content=text, message=msg).render()
    if crypto is not None:
        xml = crypto.encrypt_message(xml, nonce, str(int(time.time())))
    return Response(xml, status=200, mimetype="application/xml")
