"""回访任务 in the console: a low rating shows on the 回访 list and the ticket page until the
agent records the visit there."""
from sqlalchemy import select

from app.models import FollowUpTask, Role, TicketSource, TicketType
from app.services import ratings, tickets
from app.services.actors import Actor


def test_a_low_rating_is_a_follow_up_on_the_console_until_the_visit_is_recorded(
        db, staff, console, make_household, make_wechat_user):
    agent = staff(Role.AGENT)
    home = make_household()
    user = make_wechat_user(household=home)
    t = tickets.create_ticket(Actor.of_resident(user), type=TicketType.INQUIRY, source=TicketSource.OFFICIAL_ACCOUNT,
                              description="供暖费怎么交", household=home)
    tickets.close_ticket(t, Actor.of_staff(agent), "可在公众号缴费")
    ratings.rate_ticket(t, 1, "答复不清楚", source=ratings.RatingSource.CHAT, by=user)
    db.session.commit()
    console.login(agent.username)

    listing = console.get("/console/follow-ups").get_data(as_text=True)
    assert t.number in listing and "答复不清楚" in listing
    page = console.get(f"/console/tickets/{t.id}").get_data(as_text=True)
    assert 'id="follow-up-open"' in page

    assert console.post(f"/console/tickets/{t.id}/visit", {"result": "已致电解释缴费方式", "satisfied": "yes"}).status_code == 302
    db.session.expire_all()
    assert db.session.scalar(select(FollowUpTask.state)) == "done"
    assert t.number not in console.get("/console/follow-ups").get_data(as_text=True)
    assert 'id="follow-up-open"' not in console.get(f"/console/tickets/{t.id}").get_data(as_text=True)
