"""What residents ask for in their own words, beyond FAQ answers: adding to an open repair
instead of a duplicate, and rating a closed ticket in chat (回复1-5评价).

Channel-free: the official account's dispatcher (wechat/intent_replies.py) calls these; the
rules of rating are app/services/ratings.py's.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select

from app.errors import DomainError
from app.extensions import db
from app.models import Household, Ticket, TicketState, TicketType, WechatUser
from app.services import chat, ratings

TICKET_NUMBER = re.compile(r"GD\d{8}-\d{3,6}", re.I)
CHINESE_SCORES = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
SCORE_IN_WORDS = re.compile(r"(?<![0-9])([1-5一二两三四五])\s*(?:分|星)")
PRAISE = ("好评",)
COMPLAINT = ("差评", "不太满意")


def open_repair_of(household: Household) -> Ticket | None:
    """The household's latest open repair, which a new report in words may be added to."""
    return db.session.scalar(
        select(Ticket).where(Ticket.household_id == household.id, Ticket.type == TicketType.REPAIR,
                             Ticket.state.in_(TicketState.OPEN)).order_by(Ticket.id.desc()).limit(1))


def chat_score(text: str) -> int | None:
    """1–5 from a resident's rating words: 5, 满意, 非常满意, 五星好评, 打4分, 差评 …"""
    score = chat.rating_of(text)
    if score is not None:
        return score
    compact = re.sub(r"\s+", "", text or "")
    found = SCORE_IN_WORDS.search(compact) or re.fullmatch(r"[^0-9]*([1-5])[^0-9]*", compact)
    if found:
        value = found.group(1)
        return int(value) if value.isdigit() else CHINESE_SCORES[value]
    for words, score in ((COMPLAINT, 1 if "差评" in compact else 2), (PRAISE, 5)):
        if any(w in compact for w in words):
            return score
    for word, score in sorted(chat.RATING_WORDS.items(), key=lambda kv: -len(kv[0])):
        if word in compact:
            return score
    return None


@dataclass(frozen=True)
class ChatRating:
    outcome: str                 # rated | no_ticket | not_yours | ask_score | refused
    ticket: Ticket | None = None
    score: int | None = None
    message: str | None = None   # the domain's refusal, when refused


def rate_in_chat(user: WechatUser, text: str) -> ChatRating:
    """Rate the resident's most recently closed, unrated ticket (within the chat window), or
    the ticket their words name — only one they reported. Nothing changes unless rated."""
    named = TICKET_NUMBER.search(text or "")
    if named:
        ticket = ratings.find_ticket(named.group(0).upper())
        if ticket is None or not ratings.may_rate(user, ticket):
            return ChatRating("not_yours")
    else:
        ticket = ratings.awaiting_rating(user, source=ratings.RatingSource.CHAT)
        if ticket is None:
            return ChatRating("no_ticket")
    score = chat_score(TICKET_NUMBER.sub("", text or ""))
    if score is None:
        return ChatRating("ask_score", ticket)
    words = TICKET_NUMBER.sub("", text).strip()
    comment = words if len(words) > 4 else None  # more than a score: keep the resident's words
    try:
        ratings.rate_ticket(ticket, score, comment, source=ratings.RatingSource.CHAT, by=user)
    except DomainError as exc:
        return ChatRating("refused", ticket, score, exc.message)
    return ChatRating("rated", ticket, score)
