"""Customers at the desk (客户资料): find a household by 户号, phone, name or address, and
everything the company knows of it on one page — bills, payments and refunds, tickets, calls
with their recordings, WeChat bindings and live chats (会话) of the people bound to it.

Searching matches the stored forms: account numbers exactly or by prefix, phone numbers
through ``app.phones.search_fragment`` (a whole number in any format finds its stored E.164,
a fragment such as the last four digits finds the numbers holding it — the owner's phone and
the numbers that called about the household), names by substring, addresses by community
name plus building / unit / room numbers.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import and_, or_, select

from app import phones
from app.extensions import db
from app.models import (
    Bill, CallLog, Community, Conversation, HeatingSeason, Household, HouseholdBinding, Payment, PaymentItem, Refund,
    Ticket, WechatUser,
)
from app.services.billing import household_arrears, late_fee_fen, local_today
from app.text import clean_text

SEARCH_LIMIT = 20
LIST_LIMIT = 50
MIN_PHONE_DIGITS = 4
_BUILDING = re.compile(r"([0-9A-Za-z]+)\s*(?:号楼|号|栋|幢|#|楼)")
_UNIT = re.compile(r"([0-9]+)\s*单元")
_ROOM = re.compile(r"([0-9]+)\s*室?\s*$")


def _address_condition(q: str):
    """Households at an address like 幸福里3号楼2单元501室 (community name, then numbers)."""
    names = db.session.execute(select(Community.id, Community.name)).all()
    hits = [cid for cid, name in names if name and (name in q or (len(q) >= 2 and q in name))]
    if not hits:
        return None
    cond = [Household.community_id.in_(hits)]
    rest = q
    for _, name in names:
        rest = rest.replace(name, " ") if name and name in rest else rest
    building, unit = _BUILDING.search(rest), _UNIT.search(rest)
    if building:
        cond.append(Household.building == building.group(1))
    if unit:
        cond.append(Household.unit == unit.group(1))
    tail = rest[unit.end():] if unit else (rest[building.end():] if building else "")
    room = _ROOM.search(tail) if tail.strip() else None
    if room:
        cond.append(Household.room == room.group(1))
    return and_(*cond)


def search_households(text: str | None, *, limit: int = SEARCH_LIMIT) -> list[Household]:
    """Households matching a 户号, a phone number (or its last digits), a name or an address."""
    cond = search_condition(text)
    if cond is None:
        return []
    return list(db.session.scalars(select(Household).where(cond).order_by(Household.account_no).limit(limit)))


def search_condition(text: str | None):
    """The WHERE clause of ``search_households`` (None for an empty search), for lists that
    filter and page on top of the same search (the console's 住户 list)."""
    q = clean_text(text)
    if not q:
        return None
    conds = [Household.account_no == q, Household.account_no.startswith(q, autoescape=True)]
    fragment = phones.search_fragment(q)
    if fragment and len(fragment.lstrip("+")) >= MIN_PHONE_DIGITS:
        # A whole number: its stored E.164, and its national digits (rows stored before E.164).
        for part in {fragment, phones.parse(q).national} if fragment.startswith("+") else {fragment}:
            conds.append(Household.owner_phone.contains(part, autoescape=True))
            conds.append(Household.id.in_(select(CallLog.household_id).where(
                CallLog.caller_phone.contains(part, autoescape=True), CallLog.household_id.isnot(None))))
    if fragment is None:
        conds.append(Household.owner_name.contains(q, autoescape=True))
        address = _address_condition(q)
        if address is not None:
            conds.append(address)
    return or_(*conds)


@dataclass
class CustomerOverview:
    household: Household
    bills: list[dict] = field(default_factory=list)        # {bill, season, late_fee_fen}
    arrears_fen: int = 0
    payments: list[Payment] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)
    tickets: list[Ticket] = field(default_factory=list)
    calls: list[CallLog] = field(default_factory=list)
    bindings: list[tuple[HouseholdBinding, WechatUser]] = field(default_factory=list)
    conversations: list[Conversation] = field(default_factory=list)   # live chats (会话) with agents


def customer_overview(household: Household) -> CustomerOverview:
    """One household and everything about it (newest first, ``LIST_LIMIT`` of each list)."""
    today = local_today()
    view = CustomerOverview(household=household)
    bills = db.session.scalars(select(Bill).join(HeatingSeason, Bill.season_id == HeatingSeason.id)
                               .where(Bill.household_id == household.id)
                               .order_by(HeatingSeason.starts_on.desc(), Bill.id.desc())).all()
    view.bills = [{"bill": b, "season": b.season, "late_fee_fen": late_fee_fen(b, today) if b.outstanding_fen else 0}
                  for b in bills]
    view.arrears_fen = household_arrears(household.id, today).total_due_fen
    paid_for = select(PaymentItem.payment_id).join(Bill, Bill.id == PaymentItem.bill_id) \
        .where(Bill.household_id == household.id)
    view.payments = list(db.session.scalars(select(Payment).where(Payment.id.in_(paid_for))
                                            .order_by(Payment.created_at.desc(), Payment.id.desc()).limit(LIST_LIMIT)))
    if view.payments:
        view.refunds = list(db.session.scalars(select(Refund).where(Refund.payment_id.in_([p.id for p in view.payments]))
                                               .order_by(Refund.id.desc())))
    by_phone = [Ticket.household_id == household.id]
    calls_by = [CallLog.household_id == household.id]
    if household.owner_phone:
        by_phone.append(and_(Ticket.household_id.is_(None), Ticket.caller_phone == household.owner_phone))
        calls_by.append(and_(CallLog.household_id.is_(None), CallLog.caller_phone == household.owner_phone))
    view.tickets = list(db.session.scalars(select(Ticket).where(or_(*by_phone))
                                           .order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(LIST_LIMIT)))
    view.calls = list(db.session.scalars(select(CallLog).where(or_(*calls_by))
                                         .order_by(CallLog.started_at.desc(), CallLog.id.desc()).limit(LIST_LIMIT)))
    view.bindings = list(db.session.execute(
        select(HouseholdBinding, WechatUser).join(WechatUser, WechatUser.id == HouseholdBinding.wechat_user_id)
        .where(HouseholdBinding.household_id == household.id).order_by(HouseholdBinding.id)).all())
    people = [user.id for _, user in view.bindings]
    view.conversations = list(db.session.scalars(
        select(Conversation).where(or_(Conversation.household_id == household.id,
                                       Conversation.wechat_user_id.in_(people)))
        .order_by(Conversation.opened_at.desc(), Conversation.id.desc()).limit(LIST_LIMIT)))
    return view

