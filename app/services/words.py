"""jieba, loaded once per process and only when first needed, with the domain's words.

Both the FAQ index (app/services/knowledge.py) and the intent classifier
(app/services/intents.py) cut text here, so they see the same tokens: 暖气片, 漏水, 爆管 …
are one word each (jieba's user dictionary, app/reference/intent_rules.py ``DOMAIN_WORDS``).
"""
from __future__ import annotations

import logging
import threading
from typing import Iterable

import jieba

from app.reference.intent_rules import DOMAIN_WORDS

jieba.setLogLevel(logging.WARNING)

_lock = threading.Lock()
_added: set[str] = set()
_ready = False


def _ensure_ready() -> None:
    global _ready
    if _ready:
        return
    with _lock:
        if not _ready:
            jieba.initialize()  # the main dictionary: about a second, once per process
            for word in DOMAIN_WORDS:
                _add(word)
            _ready = True


def _add(word: str) -> None:
    if word and word not in _added and not word.isascii():
        jieba.add_word(word)
        _added.add(word)


def warm() -> None:
    """Load jieba now (a serving process does, at start: app/warmup.py)."""
    _ensure_ready()


def add_words(words: Iterable[str]) -> None:
    """Make each word one token from now on (rules edited in the console add theirs)."""
    _ensure_ready()
    with _lock:
        for word in words:
            _add(word)


def cut(text: str) -> list[str]:
    _ensure_ready()
    return jieba.lcut(text)


def cut_for_search(text: str) -> list[str]:
    _ensure_ready()
    return jieba.lcut_for_search(text)
