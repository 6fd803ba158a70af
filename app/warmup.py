"""Warm a serving process before its first message (issue 15).

jieba loads its dictionary on first use (about a second), and the intent vocabulary and the
FAQ index are compiled on first use: paid by the first resident's message it would eat into
WeChat's 5-second answer. A web process therefore warms them in a background thread as soon
as it starts (``wsgi.py`` calls ``start`` when it serves: gunicorn, or ``flask run``), while
it already takes requests. Other ``flask`` commands (db upgrade, seed-demo …) and the tests,
which build the app through ``create_app``, do not warm anything. The RQ worker cuts no text.
"""
from __future__ import annotations

import logging
import threading
import time

import click
from flask import Flask

from app.extensions import db
from app.services import intents, knowledge, words

log = logging.getLogger(__name__)


def serving() -> bool:
    """True when this process serves requests: loaded by a WSGI server (no click command runs)
    or by ``flask run``; False while another ``flask`` command loads the app."""
    ctx = click.get_current_context(silent=True)
    return ctx is None or ctx.command.name == "run"


def warm(app: Flask) -> dict[str, float]:
    """Load jieba, compile the vocabulary and build the FAQ index; seconds each. A database
    not migrated yet is logged, not raised: the first message then pays as before."""
    took = {}
    started = time.perf_counter()
    words.warm()
    took["jieba"] = time.perf_counter() - started
    started = time.perf_counter()
    with app.app_context():
        try:
            intents.classify("你好")
            knowledge.search_faq("暖气不热", limit=1)
        except Exception:  # noqa: BLE001 — a warm-up never stops a server from starting
            log.warning("warm-up: vocabulary or FAQ index not built", exc_info=True)
        finally:
            db.session.remove()
    took["rules_and_faq"] = time.perf_counter() - started
    log.info("warm-up done: jieba %.2f s, vocabulary and FAQ index %.2f s", took["jieba"], took["rules_and_faq"])
    return took


def start(app: Flask) -> threading.Thread:
    """Warm in a daemon thread (it never keeps a stopping process alive)."""
    thread = threading.Thread(target=warm, args=(app,), name="warm-up", daemon=True)
    thread.start()
    return thread
