"""What a resident's free text is about: emergency, repair, question, progress, bill, rating,
greeting or human — whatever its phrasing, without command prefixes.

The classifier is data: the rows of ``intent_rule`` (app/models/intent.py), edited in the
console (知识库 → 意图词库). Each matching row adds its weight to its intent; the highest
score of at least ``MIN_SCORE`` wins, ties going to the earlier intent of ``Intent.ALL``
(an emergency is never lost to a question). The compiled rules are cached per process and
rebuilt when they change: every ORM change bumps ``VERSION_KEY`` in Redis, and the table is
re-checked every ``DB_CHECK_SECONDS`` for edits made around the ORM.

This module knows nothing of WeChat: the official account's dispatcher
(wechat/conversation.py) asks it, and so can any other channel.
"""
from __future__ import annotations

import re
import threading
import time
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field

from flask import current_app, has_app_context
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from app.errors import ValidationError
from app.extensions import db
from app.models import Intent, IntentMatch, IntentRule
from app.services import words
from app.text import clean_text

MIN_SCORE = 4
VERSION_KEY = "intents:version"
DB_CHECK_SECONDS = 60
# WeChat's own faces arrive as text codes: "/::)", "/::D", "[微笑]", "[Smile]".
WECHAT_FACE_PREFIX = "/:"


@dataclass(frozen=True)
class Classification:
    intent: str
    score: int = 0
    tags: frozenset = frozenset()
    scores: dict = field(default_factory=dict)
    matched: tuple = ()


def normalize(text: str | None) -> str:
    """NFKC (full-width letters, digits and punctuation folded), trimmed, lower case."""
    return clean_text(text).lower()


def _compact(text: str) -> str:
    """Without spaces, punctuation and symbols: what phrases are looked for in."""
    return "".join(ch for ch in text if unicodedata.category(ch)[0] not in "PZSC")


CHINESE_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
NUMBER = r"(\d+(?:\.\d+)?|[零一二两三四五六七八九十]{1,4})"


def chinese_number(text: str) -> float | None:
    """16, 16.5, 十六, 二十, 十 → a number; anything else None."""
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    if "十" in text:
        tens, _, ones = text.partition("十")
        if "十" in ones or (tens and tens not in CHINESE_DIGITS) or (ones and ones not in CHINESE_DIGITS):
            return None
        return float(CHINESE_DIGITS.get(tens, 1) * 10 + CHINESE_DIGITS.get(ones, 0))
    return float(CHINESE_DIGITS[text]) if text in CHINESE_DIGITS else None


def temperatures(compact: str, unit: str) -> list[float]:
    """The numbers written with ``unit`` in the text: "家里才16度" with 度 → [16.0]."""
    found = []
    for match in re.finditer(NUMBER + re.escape(unit), compact):
        value = chinese_number(match.group(1))
        if value is not None:
            found.append(value)
    return found


def is_emoji_only(text: str) -> bool:
    """Text made only of emoji, symbols, punctuation and WeChat's face codes ("/::)", "[微笑]")."""
    stripped = text
    while "[" in stripped and "]" in stripped.split("[", 1)[1]:
        head, rest = stripped.split("[", 1)
        stripped = head + rest.split("]", 1)[1]
    parts = [p for p in stripped.split() if not p.startswith(WECHAT_FACE_PREFIX)]
    return bool(text.strip()) and not _compact("".join(parts))


MEMO_SIZE = 4096  # recent texts and their classification, per vocabulary


class _Rules:
    def __init__(self, rows: list[tuple[str, str, str, int, str | None]], *, indoor_standard: float):
        # The same questions come in by the hundred on a cold night: remember recent results
        # (a Classification is frozen; the memo goes with this vocabulary when it is replaced).
        self._memo: dict[str, Classification] = {}
        self.words: dict[str, list] = defaultdict(list)
        self.exact: dict[str, list] = defaultdict(list)
        self.phrases: list[tuple[str, tuple]] = []
        self.low_temps: list[tuple[str, tuple]] = []   # (unit, entry): a temperature below the standard
        self.indoor_standard = indoor_standard
        seen = set()
        for intent, phrase, match, weight, tag in rows:
            norm = normalize(phrase)
            if not norm or (intent, norm, match) in seen:  # "？" and "?" are one row after NFKC
                continue
            seen.add((intent, norm, match))
            entry = (intent, weight, tag, phrase)
            if match == IntentMatch.WORD:
                self.words[norm].append(entry)
            elif match == IntentMatch.EXACT:
                self.exact[_compact(norm) or norm].append(entry)
            elif match == IntentMatch.LOW_TEMP:
                self.low_temps.append((norm.replace(" ", ""), entry))
            else:
                self.phrases.append((_compact(norm) or norm, entry))
        words.add_words(w for w in self.words if len(w) > 1)
        words.add_words(p for p, _ in self.phrases if 1 < len(p) <= 4)

    def classify(self, text: str) -> Classification:
        found = self._memo.get(text)
        if found is None:
            found = self._classify(text)
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            self._memo[text] = found
        return found

    def _classify(self, text: str) -> Classification:
        norm = normalize(text)
        compact = _compact(norm)
        if not norm:
            return Classification(Intent.UNKNOWN)
        hits = list(self.exact.get(compact or norm, ()))
        hits += [entry for phrase, entry in self.phrases if phrase in compact]
        if self.low_temps:
            spaceless = "".join(norm.split())  # "16 ℃" is "16°c" after NFKC; keep the ° a unit may hold
            hits += [entry for unit, entry in self.low_temps
                     if any(t < self.indoor_standard for t in temperatures(spaceless, unit))]
        for token in set(words.cut(norm)):
            hits += self.words.get(token, ())
        scores: dict[str, int] = defaultdict(int)
        for intent, weight, _, _ in hits:
            scores[intent] += weight
        best = max(Intent.ALL, key=lambda i: (scores.get(i, 0), -Intent.ALL.index(i)))
        if scores.get(best, 0) < MIN_SCORE:
            return Classification(Intent.UNKNOWN, scores.get(best, 0), scores=dict(scores),
                                  matched=tuple(h[3] for h in hits))
        tags = frozenset(tag for intent, weight, tag, _ in hits if intent == best and tag and weight > 0)
        return Classification(best, scores[best], tags, dict(scores), tuple(h[3] for h in hits if h[0] == best))


# --- the per-process cache --------------------------------------------------------------------

_cache: dict = {}
_cache_lock = threading.Lock()


def _db_fingerprint() -> tuple:
    return tuple(db.session.execute(
        select(func.count(IntentRule.id), func.max(IntentRule.updated_at), func.sum(IntentRule.id))
        .where(IntentRule.active.is_(True))).one())


@event.listens_for(Session, "after_flush")
def _bump_on_change(session, flush_context):
    if has_app_context() and any(isinstance(o, IntentRule) for o in (*session.new, *session.dirty, *session.deleted)):
        current_app.extensions["redis"].incr(VERSION_KEY)


_MISSING = object()


def _rules(version=_MISSING) -> _Rules:
    """The vocabulary of this process, rebuilt when it changed (one Redis GET a call, or none
    when the caller read ``VERSION_KEY`` in its own round trip and passes it)."""
    engine = (db.engine.url.render_as_string(), current_app.config["INDOOR_TEMP_STANDARD"])
    if version is _MISSING:
        version = current_app.extensions["redis"].get(VERSION_KEY)
    now = time.monotonic()
    with _cache_lock:
        fresh = _cache.get("key") == (engine, version) and now - _cache.get("checked", 0) < DB_CHECK_SECONDS
        if fresh:
            return _cache["rules"]
    fingerprint = _db_fingerprint()
    with _cache_lock:
        if _cache.get("fingerprint") != (engine, fingerprint):
            rows = db.session.execute(select(IntentRule.intent, IntentRule.phrase, IntentRule.match,
                                             IntentRule.weight, IntentRule.tag)
                                      .where(IntentRule.active.is_(True)).order_by(IntentRule.id)).all()
            _cache["rules"] = _Rules([tuple(r) for r in rows],
                                     indoor_standard=current_app.config["INDOOR_TEMP_STANDARD"])
            _cache["fingerprint"] = (engine, fingerprint)
        _cache.update(key=(engine, version), checked=now)
        return _cache["rules"]


def classify(text: str | None, *, version=_MISSING) -> Classification:
    """The intent of a resident's free text (``Intent.UNKNOWN`` when nothing speaks for one).

    ``version``: the value of ``VERSION_KEY`` if the caller fetched it in its own round trip."""
    return _rules(version).classify(text or "")


# --- editing (console) -----------------------------------------------------------------------

def save_rule(rule: IntentRule | None, *, intent: str, phrase: str, match: str, weight, tag: str | None = None,
              active: bool = True) -> IntentRule:
    """Create (``rule`` None) or change a vocabulary row; ValidationError names each bad field."""
    phrase, tag = clean_text(phrase), clean_text(tag) or None
    errors: dict[str, list[str]] = {}
    if intent not in Intent.ALL:
        errors["intent"] = ["请选择意图"]
    if match not in IntentMatch.ALL:
        errors["match"] = ["请选择匹配方式"]
    if not phrase:
        errors["phrase"] = ["请填写词语或短语"]
    elif len(phrase) > 50:
        errors["phrase"] = ["词语不能超过50字"]
    elif match == IntentMatch.LOW_TEMP and (any(ch.isdigit() for ch in phrase) or len(phrase) > 5):
        errors["phrase"] = ["“低于室温标准的温度”只填温度单位，如 度、℃"]
    try:
        weight = int(str(weight).strip())
        if not -100 <= weight <= 100:
            raise ValueError
    except ValueError:
        errors["weight"] = ["权重应为 -100 到 100 的整数"]
    if tag is not None and len(tag) > 20:
        errors["tag"] = ["标签不能超过20字"]
    if not errors:
        clash = db.session.scalar(select(IntentRule.id).where(
            IntentRule.intent == intent, IntentRule.phrase == phrase, IntentRule.match == match))
        if clash is not None and (rule is None or clash != rule.id):
            errors["phrase"] = ["该意图已有相同的词条"]
    if errors:
        raise ValidationError("意图词条填写有误", fields=errors)
    if rule is None:
        rule = IntentRule()
        db.session.add(rule)
    rule.intent, rule.phrase, rule.match, rule.weight, rule.tag, rule.active = intent, phrase, match, weight, tag, active
    db.session.flush()
    return rule
