"""Helpers shared by the tests of residents' words (intents, emergencies, ratings)."""
from app.models import Role
from tests.factories import bind_wechat_user


def bound_resident(db, wechat, household, nickname="王阿姨"):
    """A sandbox user following the account, bound to ``household``: (openid, WechatUser)."""
    person, user = bind_wechat_user(db, wechat, household=household, nickname=nickname, mini_program=False)
    db.session.commit()
    return person["openid"], user


def crewed_home(make_household, make_crew, make_staff):
    """A household whose station a crew serves (member, lead), and a leader on duty."""
    home = make_household()
    crew = make_crew(stations=[home.station])
    member = make_staff(role=Role.CREW_MEMBER, crew=crew, name="李师傅")
    lead = make_staff(role=Role.CREW_LEAD, crew=crew, name="赵班长")
    leader = make_staff(role=Role.LEADER, name="值班领导", on_duty=True)
    make_staff(role=Role.LEADER, name="休班领导", on_duty=False)
    return home, crew, member, lead, leader
