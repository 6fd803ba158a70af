"""The ratings service: once per ticket, only by its reporter, 1–5, within the chat window;
a low rating alerts the crew lead and opens a 回访 task that the recorded visit closes."""
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.errors import ConflictError, InvalidTransitionError, PermissionDeniedError, ValidationError
from app.models import FollowUpTask, OutboxMessage, Role, TicketSource, TicketType, utcnow
from app.services import ratings, tickets
from app.services.actors import Actor
from app.services.ratings import RatingSource


@pytest.fixture()
def closed(db, make_household, make_wechat_user, make_crew, make_staff):
    home = make_household()
    user = make_wechat_user(household=home)
    crew = make_crew()
    member = make_staff(Role.CREW_MEMBER, crew=crew)
    lead = make_staff(Role.CREW_LEAD, crew=crew)
    agent = make_staff(Role.AGENT)
    t = tickets.create_ticket(Actor.of_resident(user), type=TicketType.REPAIR, source=TicketSource.OFFICIAL_ACCOUNT,
                              description="暖气不热", household=home)
    tickets.assign_ticket(t, Actor.of_staff(agent), crew=crew, staff=member)
    tickets.accept_ticket(t, Actor.of_staff(member))
    tickets.reply_ticket(t, Actor.of_staff(member), "已排气")
    tickets.close_ticket(t, Actor.of_staff(agent), "已修复")
    db.session.commit()
    return {"ticket": t, "user": user, "lead": lead, "agent": agent, "home": home}


def test_the_reporter_rates_once(db, closed):
    t, user = closed["ticket"], closed["user"]
    event = ratings.rate_ticket(t, 4, " 来得快 ", source=RatingSource.CHAT, by=user)
    assert (t.rating, t.rating_comment, event.data) == (4, "来得快", {"rating": 4, "source": "chat"})
    with pytest.raises(ConflictError):
        ratings.rate_ticket(t, 5, None, source=RatingSource.API, by=user)
    assert t.rating == 4


def test_only_the_reporter_may_rate(db, closed, make_wechat_user):
    t = closed["ticket"]
    family = make_wechat_user(household=closed["home"])  # bound to the same household, but did not report it
    for who in (family, make_wechat_user(), None):
        with pytest.raises(PermissionDeniedError):
            ratings.rate_ticket(t, 5, None, source=RatingSource.CHAT, by=who)
    assert t.rating is None and not ratings.may_rate(family, t) and ratings.may_rate(closed["user"], t)


@pytest.mark.parametrize("score", [0, 6, "5", True, 4.5, None])
def test_scores_are_whole_numbers_from_1_to_5(db, closed, score):
    with pytest.raises(ValidationError):
        ratings.rate_ticket(closed["ticket"], score, None, source=RatingSource.CHAT, by=closed["user"])
    assert closed["ticket"].rating is None


def test_an_open_ticket_cannot_be_rated(db, closed):
    t = closed["ticket"]
    tickets.reopen_ticket(t, Actor.of_resident(closed["user"]), "还是不热")
    with pytest.raises(InvalidTransitionError):
        ratings.rate_ticket(t, 5, None, source=RatingSource.CHAT, by=closed["user"])


def test_chat_takes_a_rating_for_72_hours_the_api_at_any_time(db, closed):
    t, user = closed["ticket"], closed["user"]
    late = t.closed_at + timedelta(hours=73)
    assert ratings.awaiting_rating(user, now=t.closed_at + timedelta(hours=71)) is t
    assert ratings.awaiting_rating(user, now=late) is None
    with pytest.raises(InvalidTransitionError) as err:
        ratings.rate_ticket(t, 5, None, source=RatingSource.CHAT, by=user, now=late)
    assert err.value.code == "rating_window_passed" and t.rating is None
    ratings.rate_ticket(t, 5, None, source=RatingSource.API, by=user, now=late)
    assert t.rating == 5


def test_a_low_rating_alerts_the_crew_lead_and_opens_a_follow_up_the_visit_closes(db, closed):
    t = closed["ticket"]
    event = ratings.rate_ticket(t, 2, "等了很久", source=RatingSource.CHAT, by=closed["user"])
    db.session.commit()
    alerts = db.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "notify.low_rating")).all()
    assert [(a.payload["staff_id"], a.payload["event_id"]) for a in alerts] == [(closed["lead"].id, event.id)]
    (task,) = ratings.open_follow_ups(t)
    assert (task.rating, task.comment, task.reason) == (2, "等了很久", "low_rating")

    ratings.record_visit(t, Actor.of_staff(closed["agent"]), "已致电致歉，住户表示理解", satisfied=True)
    db.session.commit()
    task = db.session.get(FollowUpTask, task.id)
    assert (task.state, task.done_by_id, task.result) == ("done", closed["agent"].id, "已致电致歉，住户表示理解")
    assert ratings.open_follow_ups() == []


def test_a_good_rating_opens_nothing(db, closed):
    ratings.rate_ticket(closed["ticket"], 3, None, source=RatingSource.CHAT, by=closed["user"], now=utcnow())
    db.session.commit()
    assert ratings.open_follow_ups() == []
    assert db.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "notify.low_rating")).all() == []
