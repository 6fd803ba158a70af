"""The intent classifier's vocabulary (意图词库): phrases and keywords, one row each.

A resident's free text is scored per intent by the rows it matches (app/services/intents.py);
staff edit the rows in the console next to the FAQ. ``match``:

- ``word``: a jieba token of the text equals the phrase (the phrase is added to jieba's
  dictionary, so it is cut as one token);
- ``phrase``: the phrase occurs in the text (punctuation and spaces ignored);
- ``exact``: the whole text is the phrase (punctuation and spaces ignored);
- ``low_temp``: the text names a temperature — a number (16, 16.5, 十六) followed by the
  phrase as its unit (度, °C, 摄氏度) — below the indoor standard (``INDOOR_TEMP_STANDARD``):
  "家里才16度" is a heating complaint, "家里22度" is not.

``weight`` may be negative (a word that speaks against an intent); ``tag`` refines an intent
(``gas`` for a gas smell, ``thanks`` for thanks among greetings, ``dissatisfied``…).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import UTCDateTime, utcnow


class Intent:
    EMERGENCY = "emergency"
    REPAIR = "repair"
    QUESTION = "question"
    PROGRESS = "progress"
    BILL = "bill"
    RATING = "rating"
    GREETING = "greeting"
    HUMAN = "human"
    UNKNOWN = "unknown"
    # Ties go to the earlier one: an emergency is never lost to a question.
    ALL = (EMERGENCY, HUMAN, RATING, PROGRESS, BILL, REPAIR, QUESTION, GREETING)
    LABELS = {
        EMERGENCY: "紧急情况", REPAIR: "报修", QUESTION: "咨询", PROGRESS: "查进度", BILL: "账单缴费",
        RATING: "评价", GREETING: "问候/感谢", HUMAN: "转人工", UNKNOWN: "未识别",
    }


class IntentMatch:
    WORD = "word"
    PHRASE = "phrase"
    EXACT = "exact"
    LOW_TEMP = "low_temp"
    ALL = (WORD, PHRASE, EXACT, LOW_TEMP)
    LABELS = {WORD: "词", PHRASE: "包含短语", EXACT: "整句", LOW_TEMP: "低于室温标准的温度（数字+此单位）"}


class IntentRule(db.Model):
    __tablename__ = "intent_rule"
    __table_args__ = (
        UniqueConstraint("intent", "phrase", "match", name="uq_intent_rule_intent_phrase_match"),
        CheckConstraint("weight BETWEEN -100 AND 100", name="weight_range"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    intent: Mapped[str] = mapped_column(String(20), index=True)
    phrase: Mapped[str] = mapped_column(String(50))
    match: Mapped[str] = mapped_column(String(10), default=IntentMatch.PHRASE)
    weight: Mapped[int] = mapped_column(Integer, default=5)
    tag: Mapped[str | None] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
