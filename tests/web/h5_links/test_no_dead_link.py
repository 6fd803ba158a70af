"""No dead link, by construction: every kind of message the product sends a person
(wechat.templates.KINDS — the registry every notice must name) is rendered by the code that
sends it, to a real recipient through the sandbox; every URL in what arrives (a template's
``url``, the links of a customer-service text) is then opened in that recipient's WeChat
browser, through the sandbox's web authorisation, and must be a working page of ours: 200,
HTML, not an error page, not a password sign-in, never JSON. Chat replies that carry links
(账单, a crew member's 任务) are followed the same way.

A kind added to the registry without a recipe here fails the test by name: add a recipe that
makes the product send it (usually: call its handler, named in the kind's ``source``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from itertools import count

import pytest
import requests
from sqlalchemy import select

from app.extensions import db
from app.models import (
    Announcement, AnnouncementStatus, Audience, Outage, OutageArea, OutageCluster, OutageNotice, Payment, PaymentItem,
    PaymentState, Refund, RefundState, Role, Station, TicketEvent, TicketSource, TicketState, TicketType, utcnow,
)
from app.services import billing, tickets
from app.services.actors import Actor
from app.models.chat import Conversation, ConversationMessage, MessageDirection
from jobs import broadcast, chat as chat_jobs, notify as notify_jobs, pay_notices, reminders, resident_pushes
from tests.web.h5_support import Resident, is_page, open_as, resident_in_arrears, wechat_person
from wechat.notify import send_notice
from wechat.templates import KINDS

HREF = re.compile(r'href="([^"]+)"')
_ids = count(900_000)          # outbox ids of the handlers' keys (unique per run)


@dataclass
class World:
    resident: Resident
    member: object
    lead: object
    leader: object
    people: dict            # staff id -> sandbox person
    ticket: object
    station_id: int


@pytest.fixture()
def world(db, h5, make_area, make_household, make_season, make_crew, make_staff) -> World:
    resident = resident_in_arrears(db, h5, make_area, make_household, make_season)
    household = resident.household
    crew = make_crew(name="和平维修二班", stations=[db.session.get(Station, household.station_id)])
    member = make_staff(role=Role.CREW_MEMBER, crew=crew, name="张志强")
    lead = make_staff(role=Role.CREW_LEAD, crew=crew, name="王班长")
    leader = make_staff(role=Role.LEADER, name="王涛")
    leader.on_duty = True
    db.session.commit()
    people = {s.id: wechat_person(db, h5, nickname=name, staff=s)[0]
              for s, name in ((member, "crew2_m1"), (lead, "crew2_lead"), (leader, "leader1"))}
    ticket = tickets.create_ticket(Actor.of_resident(resident.user), type=TicketType.REPAIR,
                                   source=TicketSource.OFFICIAL_ACCOUNT, description="卧室暖气不热",
                                   category="no_heat", household=household)
    if ticket.assignee_id != member.id:
        tickets.assign_ticket(ticket, Actor.system(), crew=crew, staff=member)
    db.session.commit()
    return World(resident, member, lead, leader, people, ticket, household.station_id)


# --- recipes: each makes the product send one kind to somebody; returns their openid ------------

def _staff(w: World, staff) -> str:
    return w.people[staff.id]["openid"]


def _resident(w: World) -> str:
    return w.resident.person["openid"]


def _event(ticket, action: str) -> TicketEvent:
    return db.session.scalar(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id, TicketEvent.action == action)
                             .order_by(TicketEvent.id.desc()))


def task_assigned(w, db):
    notify_jobs.task_assigned({"ticket_id": w.ticket.id, "staff_id": w.member.id}, next(_ids))
    return _staff(w, w.member)


def emergency_alert(w, db):
    notify_jobs.emergency_alert({"ticket_id": w.ticket.id, "staff_id": w.leader.id}, next(_ids))
    return _staff(w, w.leader)


def ticket_updated(w, db):
    tickets.accept_ticket(w.ticket, Actor.of_staff(w.member))
    db.session.commit()
    resident_pushes.push_ticket_change({"ticket_id": w.ticket.id, "event_id": _event(w.ticket, "accepted").id,
                                        "wechat_user_id": w.resident.user.id}, next(_ids))
    notify_jobs.ticket_updated({"ticket_id": w.ticket.id, "wechat_user_id": w.resident.user.id,
                                "state": TicketState.ACCEPTED}, next(_ids))
    return _resident(w)


def ticket_dispatched(w, db):
    resident_pushes.push_ticket_change({"ticket_id": w.ticket.id, "event_id": _event(w.ticket, "assigned").id,
                                        "wechat_user_id": w.resident.user.id}, next(_ids))
    return _resident(w)


def low_rating_alert(w, db):
    w.ticket.rating, w.ticket.rating_comment, w.ticket.rated_at = 1, "还是冷", utcnow()
    db.session.commit()
    resident_pushes.low_rating_alert({"ticket_id": w.ticket.id, "staff_id": w.lead.id, "event_id": next(_ids)},
                                     next(_ids))
    return _staff(w, w.lead)


def deadline_reminder(w, db):
    reminders.send_deadline_reminder({"ticket_id": w.ticket.id, "deadline": "finish_by", "level": "before",
                                      "staff_id": w.member.id}, next(_ids))
    return _staff(w, w.member)


def deadline_escalation(w, db):
    reminders.send_deadline_reminder({"ticket_id": w.ticket.id, "deadline": "finish_by", "level": "overdue",
                                      "staff_id": w.leader.id}, next(_ids))
    return _staff(w, w.leader)


def cluster_alert(w, db):
    now = utcnow()
    cluster = OutageCluster(scope=f"station:{w.station_id}", open_key=f"station:{w.station_id}",
                            station_id=w.station_id, report_count=1, first_report_at=now, last_report_at=now)
    db.session.add(cluster)
    db.session.commit()
    notify_jobs.cluster_alert({"cluster_id": cluster.id, "staff_id": w.lead.id}, next(_ids))
    return _staff(w, w.lead)


def _outage(w, db) -> Outage:
    now = utcnow()
    outage = Outage(title="南京路换热站抢修停热", kind="unplanned", reason="管道抢修", status="active",
                    starts_at=now - timedelta(hours=1), expected_end_at=now + timedelta(hours=5))
    outage.areas.append(OutageArea(station_id=w.station_id))
    db.session.add(outage)
    db.session.flush()
    return outage


def _announce(w, db, *, category="notice", outage=None, change=None) -> str:
    ann = Announcement(title="停热通知" if outage else "供热服务公告", body="今冬供热期间请注意用热安全。",
                       category=category, audience=Audience.ALL, status=AnnouncementStatus.SENDING,
                       outage_id=outage.id if outage else None, started_at=utcnow())
    db.session.add(ann)
    db.session.flush()
    if outage is not None:
        db.session.add(OutageNotice(outbox_id=next(_ids), outage_id=outage.id, change=change, announcement_id=ann.id))
    db.session.commit()
    send_notice(w.resident.user, broadcast.notice_for(ann, w.resident.user.id))
    return _resident(w)


def outage_notice(w, db):
    return _announce(w, db, category="outage", outage=_outage(w, db), change="created")


def outage_restored(w, db):
    outage = _outage(w, db)
    outage.status, outage.actual_end_at = "restored", utcnow()
    openid = _announce(w, db, category="outage", outage=outage, change="restored")
    notify_jobs.outage_restored({"ticket_id": w.ticket.id, "wechat_user_id": w.resident.user.id,
                                 "outage_id": outage.id, "until": (utcnow() + timedelta(hours=6)).isoformat()},
                                next(_ids))
    return openid


def announcement(w, db):
    return _announce(w, db)


def arrears_reminder(w, db):
    return _announce(w, db, category="arrears")


def _paid_payment(w, db) -> Payment:
    payment = billing.create_payment(w.resident.user, [w.resident.bills[0]])
    db.session.commit()
    billing.credit_payment(payment.out_trade_no, f"4200{next(_ids):024d}", payment.amount_fen, utcnow())
    db.session.commit()
    return payment


def payment_paid(w, db):
    payment = _paid_payment(w, db)
    pay_notices.payment_paid({"payment_id": payment.id, "wechat_user_id": w.resident.user.id}, next(_ids))
    return _resident(w)


def refund_result(w, db):
    """Money paid twice for one bill goes back: the second order's whole amount."""
    first = _paid_payment(w, db)
    bill = w.resident.bills[0]
    again = Payment(out_trade_no=billing.new_out_trade_no(), wechat_user_id=w.resident.user.id,
                    state=PaymentState.CREATED, description="供热费", amount_fen=first.amount_fen)
    again.items.append(PaymentItem(bill_id=bill.id, principal_fen=first.items[0].principal_fen,
                                   late_fee_fen=first.items[0].late_fee_fen))
    db.session.add(again)
    db.session.commit()
    billing.credit_payment(again.out_trade_no, f"4200{next(_ids):024d}", again.amount_fen, utcnow())
    db.session.commit()
    refund = db.session.scalar(select(Refund).where(Refund.payment_id == again.id))
    refund.state, refund.succeeded_at = RefundState.SUCCESS, utcnow()
    db.session.commit()
    pay_notices.refund_result({"refund_id": refund.id, "wechat_user_id": w.resident.user.id,
                               "state": RefundState.SUCCESS}, next(_ids))
    return _resident(w)


def chat_invite(w, db):
    conversation = Conversation(wechat_user_id=w.resident.user.id)
    db.session.add(conversation)
    db.session.flush()
    db.session.add(ConversationMessage(conversation_id=conversation.id, direction=MessageDirection.IN,
                                       text="暖气费怎么交"))
    db.session.commit()
    chat_jobs.chat_invite({"conversation_id": conversation.id, "wechat_user_id": w.resident.user.id}, next(_ids))
    return _resident(w)


RECIPES = {f.__name__: f for f in (
    task_assigned, emergency_alert, ticket_updated, ticket_dispatched, low_rating_alert, deadline_reminder,
    deadline_escalation, cluster_alert, outage_notice, outage_restored, announcement, arrears_reminder,
    payment_paid, refund_result, chat_invite)}


# --- following the links --------------------------------------------------------------------------

def links_in(message: dict) -> list[str]:
    found = [message["url"]] if message.get("url") else []
    for field in ("content", "description"):
        found += HREF.findall(str(message.get(field) or ""))
    return found


def assert_working_page(base: str, url: str, openid: str, who: str) -> None:
    res = open_as(requests.Session(), url, openid)
    where = f"{who} opened {url} and got {res.status_code} at {res.url}"
    assert res.status_code == 200, where + ": " + res.text[:300]
    assert is_page(res), where + f" ({res.headers.get('Content-Type')})"
    assert res.url.startswith(base), where + " (not our page)"
    assert '"error"' not in res.text[:200], where + " (JSON error)"
    assert "card message refused" not in res.text and "页面不存在" not in res.text, where + " (an error page)"
    assert not re.search(r"/(console|dashboard)/login", res.url), where + " (a password sign-in the person cannot use)"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_link_of_every_kind_of_message_opens_a_page_for_its_recipient(kind, app, db, live_app, h5, world):
    recipe = RECIPES.get(kind)
    if recipe is None:
        pytest.fail(f"no rendering recipe for message kind {kind!r} ({KINDS[kind].label}); add one to RECIPES "
                    f"in {__file__}")
    openid = recipe(world, db)
    messages = [m for m in h5.inbox(openid) if m.get("direction") == "out"]
    assert messages, f"{kind}: nothing reached its recipient"
    urls = [u for m in messages for u in links_in(m)]
    for url in urls:
        assert_working_page(live_app.url, url, openid, f"{kind} recipient")


def test_chat_replies_with_links_open_pages(app, db, live_app, wechat, monkeypatch, make_area, make_household,
                                            make_season, make_crew, make_staff):
    """On the real calendar (the callback checks WeChat's timestamps against the real time)."""
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", live_app.url)
    resident = resident_in_arrears(db, wechat, make_area, make_household, make_season, today=billing.local_today())
    crew = make_crew(stations=[db.session.get(Station, resident.household.station_id)])
    member = make_staff(role=Role.CREW_MEMBER, crew=crew, name="张志强")
    db.session.commit()
    crew_openid = wechat_person(db, wechat, nickname="crew2_m1", staff=member)[0]["openid"]
    ticket = tickets.create_ticket(Actor.of_resident(resident.user), type=TicketType.REPAIR,
                                   source=TicketSource.OFFICIAL_ACCOUNT, description="卧室暖气不热",
                                   category="no_heat", household=resident.household)
    if ticket.assignee_id != member.id:
        tickets.assign_ticket(ticket, Actor.system(), crew=crew, staff=member)
    db.session.commit()

    # 账单: the resident in arrears is given the payment page.
    reply = wechat.say(resident.person["openid"], "账单")
    urls = HREF.findall(reply or "")
    assert any(u.endswith("/pay") for u in urls), reply
    # 任务: the crew member is given each task's page.
    reply = wechat.say(crew_openid, "任务")
    task_links = [u.replace("&amp;", "&") for u in HREF.findall(reply or "")]
    assert any("/mp/task?id=" in u for u in task_links), reply
    for url in urls:
        assert_working_page(live_app.url, url, resident.person["openid"], "账单 reply")
    for url in task_links:
        assert_working_page(live_app.url, url, crew_openid, "任务 reply")
