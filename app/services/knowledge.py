"""Knowledge base (FAQ) look-up: rank entries by Chinese word matching (jieba + BM25).

Used for automatic replies in the official account and by staff. The index is derived
data, rebuilt in each process when the FAQ changes: every ORM change bumps a version in
Redis (one GET per question tells every process), and the table itself is re-checked once
a minute for edits made around the ORM. Nothing stateful lives in memory.
"""
from __future__ import annotations

import math
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from app.extensions import db
from app.models import FaqEntry, HeatingSeason
from app.services import billing, words

# Words that say nothing about the topic of a resident's question.
STOPWORDS = frozenset(
    "的 了 吗 呢 啊 吧 呀 么 是 我 我家 家 家里 你们 你 请问 一下 怎么 怎么办 怎样 如何 什么 为什么 "
    "可以 能 能否 要 需要 有 没有 还 就 都 和 与 及 在 这 那 个 一个 哪 哪里 多少 现在 今天 谢谢 您好 你好 "
    "？ ? ， , 。 . ！ ! 、 ： : ； ; （ ） ( ) “ ” \" ' 　".split()
) | {" "}

# Words residents use for the same thing as the FAQ's wording.
SYNONYMS = {
    "交": "缴", "交费": "缴费", "交钱": "缴费", "付费": "缴费", "支付": "缴费",
    "暖气费": "热费", "供暖费": "热费", "取暖费": "热费", "采暖费": "热费", "供热费": "热费",
    "不暖和": "不热", "冰凉": "不热", "凉": "不热", "冷": "不热",
    "停暖": "报停", "暂停供暖": "报停",
}

MEMO_SIZE = 4096
BM25_K1 = 1.2
BM25_B = 0.75
KEYWORD_WEIGHT = 2  # keywords count as if the word appeared twice in the question


def tokenize(text: str) -> list[str]:
    return [SYNONYMS.get(t, t) for t in words.cut_for_search(text.lower()) if t.strip() and t not in STOPWORDS]


@dataclass(frozen=True)
class FaqMatch:
    entry_id: int
    question: str
    answer: str
    score: float
    confidence: float  # 0..1: share of the question's weight that matched


class _Index:
    def __init__(self, entries: list[FaqEntry]):
        self._memo: dict = {}
        self.docs: list[tuple[int, str, str, Counter]] = []
        for e in entries:
            terms = Counter(tokenize(e.question))
            for kw in (e.keywords or "").split():
                terms[SYNONYMS.get(kw.lower(), kw.lower())] += KEYWORD_WEIGHT  # in the words questions are cut to
            self.docs.append((e.id, e.question, e.answer, terms))
        n = len(self.docs) or 1
        df = Counter(t for *_, terms in self.docs for t in terms)
        self.idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        self.default_idf = math.log(1 + (n + 0.5) / 0.5)
        self.avg_len = sum(sum(t.values()) for *_, t in self.docs) / n or 1.0

    def search(self, query: str, limit: int) -> list[FaqMatch]:
        # The same questions come in by the hundred on a cold night: remember recent
        # results for this index (it is replaced, memo and all, when the FAQ changes).
        key = (query, limit)
        found = self._memo.get(key)
        if found is None:
            found = self._search(query, limit)
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = found
        return list(found)

    def _search(self, query: str, limit: int) -> tuple[FaqMatch, ...]:
        q_terms = set(tokenize(query))
        if not q_terms:
            return ()
        # The best a document could do for this query: every term present.
        ceiling = sum(self.idf.get(t, self.default_idf) for t in q_terms) * (BM25_K1 + 1) / (1 + BM25_K1 * 0.5)
        results = []
        for entry_id, question, answer, terms in self.docs:
            length = sum(terms.values())
            score = 0.0
            for t in q_terms:
                tf = terms.get(t, 0)
                if tf:
                    norm = tf * (BM25_K1 + 1) / (tf + BM25_K1 * (1 - BM25_B + BM25_B * length / self.avg_len))
                    score += self.idf[t] * norm
            if score > 0:
                results.append(FaqMatch(entry_id, question, answer, round(score, 4),
                                        round(min(score / ceiling, 1.0), 4)))
        results.sort(key=lambda m: (-m.score, m.entry_id))
        return tuple(results[:limit])


_cache: dict = {}
_lock = threading.Lock()
VERSION_KEY = "faq:version"      # bumped by every ORM change to the FAQ (all processes see it)
DB_CHECK_SECONDS = 60            # and, for edits made around the ORM, the table is re-read


def _faq_version() -> tuple:
    return tuple(db.session.execute(
        select(func.count(FaqEntry.id), func.max(FaqEntry.updated_at), func.sum(FaqEntry.id))
        .where(FaqEntry.active.is_(True))
    ).one())


def _redis_version():
    from flask import current_app

    return current_app.extensions["redis"].get(VERSION_KEY)


def fresh_version() -> int:
    """A value for ``VERSION_KEY`` when it is missing (a Redis that lost its keys): random, so a
    value is never reused for other contents and what is cached under it stays right."""
    return random.randrange(1 << 40, 1 << 62)


@event.listens_for(Session, "after_flush")
def _bump_on_change(session, flush_context):
    # The answers' season facts are cached under the same version: a season's change bumps it too.
    if any(isinstance(obj, (FaqEntry, HeatingSeason)) for obj in (*session.new, *session.dirty, *session.deleted)):
        from flask import current_app, has_app_context

        if has_app_context():
            current_app.extensions["redis"].incr(VERSION_KEY)


_MISSING = object()


def _index(redis_version=_MISSING) -> _Index:
    """The FAQ index for this process, rebuilt when the FAQ changed (one Redis GET a call,
    or none when the caller read the version already)."""
    engine_key = db.engine.url.render_as_string()
    if redis_version is _MISSING:
        redis_version = _redis_version()
    now = time.monotonic()
    with _lock:
        if (_cache.get("engine") == engine_key and _cache.get("redis_version") == redis_version
                and now - _cache.get("checked", 0) < DB_CHECK_SECONDS):
            return _cache["index"]
    version = _faq_version()
    with _lock:
        # A new Redis version is a change for sure, even when the table's figures look the same.
        if _cache.get("engine") != engine_key or _cache.get("version") != version \
                or _cache.get("redis_version") != redis_version:
            entries = list(db.session.scalars(select(FaqEntry).where(FaqEntry.active.is_(True))))
            _cache["index"] = _Index(entries)
            _cache["version"] = version
        _cache.update(engine=engine_key, redis_version=redis_version, checked=now)
        return _cache["index"]


def search_faq(query: str, limit: int = 3, *, version=_MISSING) -> list[FaqMatch]:
    """Best FAQ entries for a question, best first (empty when nothing matches).

    ``version``: the value of ``VERSION_KEY`` if the caller fetched it in its own round trip.
    """
    return _index(version).search(query, limit)


def answer_question(query: str, threshold: float) -> FaqMatch | None:
    """The single answer to give automatically, or None when not confident enough."""
    matches = search_faq(query, limit=1)
    return matches[0] if matches and matches[0].confidence >= threshold else None


# --- answers with facts from settings and data -----------------------------------------------------

PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
# When no heating season is entered yet: words that stay true.
SEASON_FALLBACK = {
    "season": "以公告为准", "season_start": "供暖公告所列日期", "season_end": "供暖公告所列日期",
    "season_days": "约150", "due_date": "缴费通知所列日期", "unit_price": "核定单价",
    "late_fee_rate": "核定比例",
}


def _day(d) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def current_season(today) -> HeatingSeason | None:
    """The season under way or next to come; else the latest one."""
    return (db.session.scalar(select(HeatingSeason).where(HeatingSeason.ends_on >= today)
                              .order_by(HeatingSeason.starts_on).limit(1))
            or db.session.scalar(select(HeatingSeason).order_by(HeatingSeason.starts_on.desc()).limit(1)))


def _facts(names: set[str]) -> dict[str, str]:
    cfg = current_app.config
    facts = {"hotline": cfg["HOTLINE_NUMBER"], "gas_hotline": cfg["GAS_COMPANY_HOTLINE"],
             "indoor_temp": f"{cfg['INDOOR_TEMP_STANDARD']:g}"}
    if names & set(SEASON_FALLBACK):
        season = current_season(billing.local_today())
        if season is None:
            facts.update(SEASON_FALLBACK)
        else:
            rate = season.late_fee_bp_per_day
            rate = billing.configured_late_fee_bp() if rate is None else rate
            facts.update(season=season.code, season_start=_day(season.starts_on), season_end=_day(season.ends_on),
                         season_days=str((season.ends_on - season.starts_on).days + 1), due_date=_day(season.due_on),
                         unit_price=f"{season.unit_price_fen / 100:.2f}", late_fee_rate=f"{rate / 100:g}%")
    return facts


_rendered: dict = {}  # answers with their facts filled in, for one version, day and settings


def render_answer(answer: str, *, version=None) -> str:
    """An FAQ answer with its placeholders ({hotline}, {season_start} …) filled in; unknown
    placeholders are left as written.

    ``version``: the value of ``VERSION_KEY`` if the caller fetched it (the callback does, in
    its one Redis round trip). Then the filled-in answer is kept in this process for that
    version, local day and settings: an ORM change to the FAQ or to a heating season bumps the
    version, and the season is read again at least once a minute for edits made around the
    ORM. Without a version the facts are read each time."""
    names = set(PLACEHOLDER.findall(answer))
    if not names:
        return answer
    if version is None:
        return _fill(answer, _facts(names))
    cfg = current_app.config
    key = (db.engine.url.render_as_string(), version, billing.local_today(), cfg["HOTLINE_NUMBER"],
           cfg["GAS_COMPANY_HOTLINE"], cfg["INDOOR_TEMP_STANDARD"], billing.configured_late_fee_bp())
    now = time.monotonic()
    with _lock:
        if _rendered.get("key") != key or now - _rendered.get("checked", 0) >= DB_CHECK_SECONDS:
            _rendered.clear()
            _rendered.update(key=key, checked=now, answers={})
        answers = _rendered["answers"]
        found = answers.get(answer)
    if found is None:
        found = _fill(answer, _facts(names))
        with _lock:
            if _rendered.get("key") == key and len(answers) < MEMO_SIZE:
                answers[answer] = found
    return found


def _fill(answer: str, facts: dict[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: facts.get(m.group(1), m.group(0)), answer)
