"""One way to reach a person: channel choice, WeChat's errors, send-once — over real HTTP."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.models import OutboundMessage, OutboxMessage, OutboxStatus, Role, SubscribeConsent, TicketSource, TicketType, WechatUser, utcnow
from app.queue import Deferred
from app.services import tickets
from app.services.actors import Actor
from wechat import client as wechat_client
from wechat.notify import Notice, TemporaryFailure, send_notice


def _user(db, wechat, *, follow=True, recent=False, **kw):
    person = wechat.create_user(follow=follow)
    user = WechatUser(oa_openid=person["openid"], mp_openid=person["mp_openid"], subscribed=follow,
                      last_interaction_at=utcnow() if recent else None, **kw)
    db.session.add(user)
    db.session.commit()
    return person, user


def _notice(key="n1", kind="ticket"):
    return Notice(key=key, kind=kind, title="您的工单已办结", fields=[("工单号", "GD20261123-0001")],
                  remark="欢迎评价", mp_page="pages/repair/detail?id=1")


def _kinds(inbox):
    return [m.get("kind") or m.get("type") for m in inbox]


def test_follower_gets_a_template_message_once(db, wechat):
    person, user = _user(db, wechat)
    first = send_notice(user, _notice())
    assert (first.status, first.channel) == ("sent", "template")
    again = send_notice(user, _notice())
    assert again.duplicate and again.status == "sent"
    inbox = wechat.inbox(person["openid"])
    assert len(inbox) == 1 and "template" in str(inbox[0])
    row = db.session.scalar(select(OutboundMessage))
    assert row.wechat_msgid  # TEMPLATESENDJOBFINISH matched it back
    db.session.expire_all()
    assert db.session.scalar(select(OutboundMessage)).delivered == "success"


def test_inside_48_hours_a_customer_service_message_saves_template_quota(db, wechat):
    person, user = _user(db, wechat)
    wechat.say(person["openid"], "你好")  # the user wrote: the window is open
    db.session.expire_all()
    user = db.session.get(WechatUser, user.id)
    outcome = send_notice(user, _notice())
    assert outcome.channel == "custom"
    assert "GD20261123-0001" in str(wechat.inbox(person["openid"])[-1])


def test_closed_window_falls_back_to_a_template(db, wechat):
    person, user = _user(db, wechat, recent=True)  # we think the window is open; WeChat says 45015
    wechat.faults(window_closed=True)
    outcome = send_notice(user, _notice())
    assert outcome.channel == "template" and outcome.status == "sent"


def test_subscribe_consent_is_used_first_and_consumed(db, wechat, app):
    person, user = _user(db, wechat)
    template = app.config["MINIAPP_TEMPLATES"]["ticket"]
    requests_consent = wechat._post(f"/users/{person['openid']}/consent", json={"template_id": template})
    assert requests_consent is not None
    db.session.add(SubscribeConsent(wechat_user_id=user.id, template_id=template, remaining=1))
    db.session.commit()
    assert send_notice(user, _notice("a")).channel == "subscribe"
    assert send_notice(user, _notice("b")).channel == "template"  # the one consent is spent
    assert db.session.scalar(select(SubscribeConsent.remaining)) == 0


def test_consent_we_recorded_but_wechat_lacks_falls_through(db, wechat, app):
    _, user = _user(db, wechat)
    db.session.add(SubscribeConsent(wechat_user_id=user.id, template_id=app.config["MINIAPP_TEMPLATES"]["ticket"],
                                    remaining=2))
    db.session.commit()
    outcome = send_notice(user, _notice())  # WeChat answers 43101: no consent there
    assert outcome.channel == "template"
    assert db.session.scalar(select(SubscribeConsent.remaining)) == 0


def test_user_who_unfollowed_is_skipped_with_the_reason(db, wechat):
    person, user = _user(db, wechat)
    wechat.send(person["openid"], type="event", event="unsubscribe")
    user.subscribed = True  # stale belief: WeChat will answer 43004
    db.session.commit()
    outcome = send_notice(user, _notice())
    assert (outcome.status, outcome.errcode) == ("skipped", 43004)
    row = db.session.scalar(select(OutboundMessage))
    assert row.errcode == 43004 and "未关注" in row.errmsg
    assert db.session.get(WechatUser, user.id).subscribed is False
    assert send_notice(user, _notice()).duplicate  # skipped for good, not retried


def test_nobody_reachable_is_skipped_without_calling_wechat(db, wechat):
    _, user = _user(db, wechat, follow=False)
    user.subscribed = False
    db.session.commit()
    outcome = send_notice(user, _notice())
    assert outcome.status == "skipped" and "48小时" in outcome.reason


def test_system_busy_is_a_temporary_failure_then_succeeds(db, wechat):
    _, user = _user(db, wechat)
    wechat.faults(busy=1, api="template/send")
    with pytest.raises(TemporaryFailure):
        send_notice(user, _notice())
    assert send_notice(user, _notice()).status == "sent"
    assert db.session.scalar(select(OutboundMessage.attempts)) == 2


def test_per_minute_limit_waits_for_the_next_minute(db, wechat):
    _, user = _user(db, wechat)
    wechat.faults(errcode=45011, times=1, api="template/send")
    with pytest.raises(Deferred) as deferred:
        send_notice(user, _notice())
    assert timedelta(0) < deferred.value.until - utcnow() <= timedelta(seconds=61)


def test_spent_daily_quota_defers_to_midnight_without_calling_again(db, wechat):
    _, user = _user(db, wechat)
    _, other = _user(db, wechat)
    wechat.faults(daily_quota={"message/template/send": 0})
    with pytest.raises(Deferred) as first:
        send_notice(user, _notice("q1"))
    wechat.faults(daily_quota={"message/template/send": 100000})  # WeChat would still refuse today
    with pytest.raises(Deferred) as second:
        send_notice(other, _notice("q2"))  # known spent: no call at all
    assert first.value.until == second.value.until
    local = first.value.until.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
    assert (local.hour, local.minute) == (0, 0)


def test_an_invalidated_token_is_refreshed_once_and_shared(db, wechat, app):
    _, user = _user(db, wechat)
    client = wechat_client.official_account()
    first_token = client.access_token
    wechat.faults(token_invalid=40001, times=1)
    assert send_notice(user, _notice()).status == "sent"
    assert client.access_token != first_token
    # Another process (a fresh client object) uses the stored token without fetching.
    other = wechat_client.HeatingWeChatClient(app.config["WECHAT_APPID"], "wrong-secret",
                                              api_base=app.config["WECHAT_API_BASE"], redis=app.extensions["redis"])
    assert other.access_token == client.access_token


def test_assigning_a_task_pushes_it_to_the_crew_members_wechat(db, wechat, worker, make_household, make_crew, make_staff):
    home = make_household()
    crew = make_crew(stations=[home.station])
    member = make_staff(role=Role.CREW_MEMBER, crew=crew)
    person = wechat.create_user()
    db.session.add(WechatUser(oa_openid=person["openid"], subscribed=True, staff_id=member.id))
    ticket = tickets.create_ticket(Actor.system(), type=TicketType.REPAIR, source=TicketSource.PHONE,
                                   description="暖气片漏水", household=home, category="leak")
    db.session.commit()
    worker()
    inbox = wechat.inbox(person["openid"])
    assert len(inbox) == 1 and ticket.number in str(inbox[0]) and "特急" in str(inbox[0])
    db.session.expire_all()
    statuses = set(db.session.scalars(select(OutboxMessage.status).where(OutboxMessage.topic == "notify.task_assigned")))
    assert statuses == {OutboxStatus.DONE}
    worker()  # nothing left; nothing sent twice
    assert len(wechat.inbox(person["openid"])) == 1
    assert db.session.scalar(select(func.count()).select_from(OutboundMessage)) == 1


def test_an_answer_slower_than_our_timeout_is_a_temporary_failure(db, wechat, app, monkeypatch):
    _, user = _user(db, wechat)
    wechat_client.official_account().access_token  # fetch the token before slowing things down
    monkeypatch.setitem(app.config, "WECHAT_TIMEOUT", 0.3)
    app.extensions.pop("wechat_clients", None)
    wechat.faults(delay=1, times=1, api="template/send")
    with pytest.raises(TemporaryFailure):
        send_notice(user, _notice())
    assert send_notice(user, _notice()).status == "sent"  # client_msg_id: WeChat drops a repeat
