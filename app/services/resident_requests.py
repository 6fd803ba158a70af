"""What residents ask for in their own words, beyond FAQ answers: adding to an open repair
instead of a duplicate, and rating in chat (回复1-5评价) the closed ticket or the ended live-chat
conversation that waits for it.

Channel-free: the official account's dispatcher (wechat/intent_replies.py) calls these; the
rules of rating are app/services/ratings.py's.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select

from app.errors import DomainError
from app.extensions import db
from app.models import Conversation, Household, Ticket, TicketState, TicketType, WechatUser
from app.services import ratings

TICKET_NUMBER = re.compile(r"GD\d{8}-\d{3,6}", re.I)


def open_repair_of(household: Household) -> Ticket | None:
    """The household's latest open repair, which a new report in words may be added to."""
    return db.session.scalar(
        select(Ticket).where(Ticket.household_id == household.id, Ticket.type == TicketType.REPAIR,
                             Ticket.state.in_(TicketState.OPEN)).order_by(Ticket.id.desc()).limit(1))


@dataclass(frozen=True)
class ChatRating:
    outcome: str                 # rated | no_ticket | not_yours | ask_score | refused
    ticket: Ticket | None = None
    score: int | None = None
    message: str | None = None   # the domain's refusal, when refused
    conversation: Conversation | None = None   # rated (or asked about) a conversation, not a ticket


def rate_in_chat(user: WechatUser, text: str) -> ChatRating:
    """Rate what waits for the resident's rating — the ticket closed or the conversation ended
    most recently, within the chat window — or the ticket their words name (only one they
    reported). One parser (``ratings.score_of``) for both. Nothing changes unless rated."""
    named = TICKET_NUMBER.search(text or "")
    conv = None
    if named:
        ticket = ratings.find_ticket(named.group(0).upper())
        if ticket is None or not ratings.may_rate(user, ticket):
            return ChatRating("not_yours")
    else:
        ticket = ratings.awaiting_rating(user, source=ratings.RatingSource.CHAT)
        conv = ratings.conversation_awaiting_rating(user)
        if conv is not None and ticket is not None and ticket.closed_at > conv.closed_at:
            conv = None  # the ticket closed later: "5" is for it
        if ticket is None and conv is None:
            return ChatRating("no_ticket")
    score = ratings.score_of(TICKET_NUMBER.sub("", text or ""))
    if score is None:
        return ChatRating("ask_score", ticket, conversation=conv)
    words = TICKET_NUMBER.sub("", text).strip()
    comment = words if len(words) > 4 else None  # more than a score: keep the resident's words
    try:
        if conv is not None:
            ratings.rate_conversation(conv, score, comment, by=user)
        else:
            ratings.rate_ticket(ticket, score, comment, source=ratings.RatingSource.CHAT, by=user)
    except DomainError as exc:
        return ChatRating("refused", ticket, score, exc.message, conversation=conv)
    return ChatRating("rated", None if conv is not None else ticket, score, conversation=conv)
