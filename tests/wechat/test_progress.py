"""进度 in the official account, through the real callback and the sandbox: open tickets with
their latest steps, deadlines and a link to the ticket page; none open → the last closed one."""
from zoneinfo import ZoneInfo

import pytest

from app.models import Role, TicketSource, TicketType
from tests.factories import bind_wechat_user
from app.services import ratings, tickets
from app.services.actors import Actor


@pytest.fixture()
def resident(db, wechat, make_household):
    home = make_household()
    person, user = bind_wechat_user(db, wechat, household=home, mini_program=False)
    db.session.commit()
    return person["openid"], user, home


def _report(user, home, text="卧室暖气片不热"):
    return tickets.create_ticket(Actor.of_resident(user), type=TicketType.REPAIR, source=TicketSource.OFFICIAL_ACCOUNT,
                                 description=text, household=home)


def _hm(app, dt) -> str:
    return dt.astimezone(ZoneInfo(app.config["TIMEZONE"])).strftime("%m月%d日%H:%M")


def test_progress_lists_open_tickets_with_latest_steps_deadlines_and_a_link(app, db, wechat, resident, make_crew,
                                                                           make_staff):
    openid, user, home = resident
    crew = make_crew(name="和平一班")
    member = make_staff(Role.CREW_MEMBER, crew=crew, name="张志强")
    agent = make_staff(Role.AGENT)
    first = _report(user, home)
    tickets.assign_ticket(first, Actor.of_staff(agent), crew=crew, staff=member, note="请尽快上门")
    tickets.accept_ticket(first, Actor.of_staff(member))
    tickets.add_progress_note(first, Actor.of_staff(member), "已到现场检查阀门")
    second = _report(user, home, "客厅暖气有响声")
    db.session.commit()

    reply = wechat.say(openid, "进度")

    assert "您有2张处理中的工单" in reply
    assert reply.index(second.number) < reply.index(first.number)  # newest first
    one = reply[reply.index(first.number):]
    assert "处理中" in one and "和平一班·张志强" in one
    # the latest three steps, newest last; the first two are not shown
    assert "接单" in one and "记录进展：已到现场检查阀门" in one and "创建工单" not in one
    assert f"完成时限 {_hm(app, first.finish_by)}" in one and "响应时限" not in one  # accepted: responded
    assert f'{app.config["PUBLIC_BASE_URL"]}/t/{first.number}' in one
    assert f'{app.config["PUBLIC_BASE_URL"]}/t/{second.number}' in reply


def test_with_nothing_open_progress_names_the_last_closed_ticket_and_invites_a_rating(db, wechat, resident,
                                                                                    make_staff):
    openid, user, home = resident
    agent = make_staff(Role.AGENT)
    t = tickets.create_ticket(Actor.of_resident(user), type=TicketType.INQUIRY, source=TicketSource.OFFICIAL_ACCOUNT,
                              description="供暖费怎么交", household=home)
    tickets.close_ticket(t, Actor.of_staff(agent), "可在公众号缴费")
    db.session.commit()

    reply = wechat.say(openid, "进度")
    assert "没有处理中的工单" in reply and t.number in reply and "办结" in reply and "回复1-5" in reply

    ratings.rate_ticket(t, 5, None, source=ratings.RatingSource.CHAT, by=user)
    db.session.commit()
    reply = wechat.say(openid, "进度")
    assert t.number in reply and "回复1-5" not in reply


def test_progress_with_no_tickets_at_all_says_so(db, wechat, resident):
    openid, _, _ = resident
    assert "没有处理中的工单" in wechat.say(openid, "进度")


def test_progress_shows_only_the_residents_own_tickets(db, wechat, resident, make_household, make_wechat_user):
    openid, user, home = resident
    elsewhere = make_household()
    stranger = make_wechat_user(household=elsewhere)
    theirs = _report(stranger, elsewhere)
    db.session.commit()
    reply = wechat.say(openid, "进度")
    assert theirs.number not in reply and "没有处理中的工单" in reply
