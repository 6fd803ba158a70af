"""One way to reach a person: channel choice, WeChat's errors, send-once — over real HTTP."""
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select

from app.models import OutboundMessage, OutboxMessage, OutboxStatus, Role, SubscribeConsent, TicketSource, TicketType, WechatUser, utcnow
from app.queue import Deferred
from app.services import tickets
from app.services.actors import Actor
from tests.jobs.conftest import card
from wechat import client as wechat_client
from wechat import templates
from wechat.notify import Notice, TemporaryFailure, send_notice


def _user(db, wechat, *, follow=True, recent=False, **kw):
    person = wechat.create_user(follow=follow)
    user = WechatUser(oa_openid=person["openid"], mp_openid=person["mp_openid"], subscribed=follow,
                      last_interaction_at=utcnow() if recent else None, **kw)
    db.session.add(user)
    db.session.commit()
    return person, user


NUMBER = "GD20261123-0001"


def _notice(key="n1", kind="ticket_updated"):
    return Notice(key=key, kind=kind, title="您的工单已办结",
                  values={"ticket_no": NUMBER, "state": "已办结", "result": "已更换阀门，恢复供热",
                          "updated_at": utcnow()},
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
    assert len(inbox) == 1 and inbox[0]["kind"] == "template" and inbox[0]["title"] == "工单进度通知"
    assert card(inbox[0])["工单编号"] == NUMBER and card(inbox[0])["工单状态"] == "已办结"
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
    text = wechat.inbox(person["openid"])[-1]["content"]
    assert text.startswith("您的工单已办结") and f"工单编号：{NUMBER}" in text and "工单状态：已办结" in text


def test_closed_window_falls_back_to_a_template(db, wechat):
    person, user = _user(db, wechat, recent=True)  # we think the window is open; WeChat says 45015
    wechat.faults(window_closed=True)
    outcome = send_notice(user, _notice())
    assert outcome.channel == "template" and outcome.status == "sent"


def test_subscribe_consent_is_used_first_and_consumed(db, wechat, app):
    person, user = _user(db, wechat)
    template = templates.registry().subscribe("ticket_updated").template_id
    requests_consent = wechat._post(f"/users/{person['openid']}/consent", json={"template_id": template})
    assert requests_consent is not None
    db.session.add(SubscribeConsent(wechat_user_id=user.id, template_id=template, remaining=1))
    db.session.commit()
    assert send_notice(user, _notice("a")).channel == "subscribe"
    assert send_notice(user, _notice("b")).channel == "template"  # the one consent is spent
    assert db.session.scalar(select(SubscribeConsent.remaining)) == 0


def test_consent_we_recorded_but_wechat_lacks_falls_through(db, wechat, app):
    _, user = _user(db, wechat)
    db.session.add(SubscribeConsent(wechat_user_id=user.id,
                                    template_id=templates.registry().subscribe("ticket_updated").template_id,
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


def test_a_token_revoked_elsewhere_is_replaced_once_and_shared(db, wechat, app):
    _, user = _user(db, wechat)
    client = wechat_client.official_account()
    first_token = client.access_token
    # Someone force-refreshes the stable token (what WeChat advises for a leaked one): ours
    # dies at once, and the next call meets 40001.
    forced = requests.post(f"{wechat.base}/cgi-bin/stable_token", timeout=10, json={
        "grant_type": "client_credential", "appid": app.config["WECHAT_APPID"],
        "secret": app.config["WECHAT_SECRET"], "force_refresh": True}).json()
    assert send_notice(user, _notice()).status == "sent"
    assert client.access_token == forced["access_token"] != first_token
    # Another process (a fresh client object) uses the stored token without fetching.
    other = wechat_client.HeatingWeChatClient(app.config["WECHAT_APPID"], "wrong-secret",
                                              api_base=app.config["WECHAT_API_BASE"], redis=app.extensions["redis"])
    assert other.access_token == client.access_token


def test_a_stray_40001_asks_once_and_keeps_the_still_valid_stable_token(db, wechat):
    _, user = _user(db, wechat)
    client = wechat_client.official_account()
    first_token = client.access_token
    wechat.faults(token_invalid=40001, times=1)
    assert send_notice(user, _notice()).status == "sent"  # refreshed once, retried once
    assert client.access_token == first_token  # WeChat's stable token had not changed


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


# --- the batch path (send_notices): the same rules, one claim and one record per batch --------

from wechat.notify import next_beijing_midnight, send_notices  # noqa: E402


def _people(db, wechat, n, **kw):
    return [_user(db, wechat, **kw) for _ in range(n)]


def test_a_repeated_batch_sends_nothing_twice(db, wechat):
    people = _people(db, wechat, 4)
    batch = [(user, _notice(f"b:{i}")) for i, (_, user) in enumerate(people)]
    first = send_notices(batch)
    assert [(o.status, o.channel, o.duplicate) for o in first] == [("sent", "template", False)] * 4
    again = send_notices(batch)
    assert all(o.duplicate and o.status == "sent" for o in again)
    assert [len(wechat.inbox(p["openid"])) for p, _ in people] == [1] * 4
    rows = db.session.execute(select(OutboundMessage.status, OutboundMessage.attempts, OutboundMessage.wechat_msgid)).all()
    assert len(rows) == 4 and all(r.status == "sent" and r.attempts == 1 and r.wechat_msgid for r in rows)


def test_the_same_key_twice_in_one_batch_is_sent_once(db, wechat):
    person, user = _user(db, wechat)
    outcomes = send_notices([(user, _notice("same")), (user, _notice("same"))])
    assert [o.duplicate for o in outcomes] == [False, True]
    assert len(wechat.inbox(person["openid"])) == 1


def test_a_temporary_failure_mid_batch_records_what_went_out_and_the_rerun_sends_only_the_rest(db, wechat):
    # Two people inside their 48-hour window (customer-service messages), then two followers
    # whose template message meets WeChat's −1: the batch stops at the first of them.
    chatting = _people(db, wechat, 2)
    for person, _ in chatting:
        wechat.say(person["openid"], "你好")
    following = _people(db, wechat, 2)
    before = [len(wechat.inbox(p["openid"])) for p, _ in chatting + following]  # the answer to 你好
    db.session.expire_all()
    users = [db.session.get(WechatUser, u.id) for _, u in chatting + following]
    batch = [(u, _notice(f"t:{i}")) for i, u in enumerate(users)]
    wechat.faults(busy=1, api="template/send")
    with pytest.raises(TemporaryFailure) as stopped:
        send_notices(batch, concurrency=1)
    done = stopped.value.outcomes
    assert [o and o.channel for o in done] == ["custom", "custom", None, None]
    assert stopped.value.failed == [2]
    db.session.expire_all()
    status = dict(db.session.execute(select(OutboundMessage.dedupe_key, OutboundMessage.status)).all())
    assert status == {"t:0": "sent", "t:1": "sent", "t:2": "pending", "t:3": "pending"}
    assert db.session.scalar(select(OutboundMessage.attempts).where(OutboundMessage.dedupe_key == "t:2")) == 1
    # The retry: the two sent are duplicates, the other two go out now.
    users = [db.session.get(WechatUser, u.id) for u in users]
    again = send_notices([(u, _notice(f"t:{i}")) for i, u in enumerate(users)], concurrency=1)
    assert [(o.duplicate, o.status) for o in again] == [(True, "sent"), (True, "sent"), (False, "sent"), (False, "sent")]
    assert [len(wechat.inbox(p["openid"])) - n for (p, _), n in zip(chatting + following, before)] == [1] * 4


def test_spent_daily_quota_mid_batch_defers_to_midnight_and_keeps_what_was_sent(db, wechat, redis):
    people = _people(db, wechat, 3)
    wechat.faults(daily_quota={"message/template/send": 1})
    batch = [(u, _notice(f"q:{i}")) for i, (_, u) in enumerate(people)]
    with pytest.raises(Deferred) as halted:
        send_notices(batch, concurrency=1)
    assert halted.value.until == next_beijing_midnight()
    assert [o and o.status for o in halted.value.outcomes] == ["sent", None, None]
    assert redis.exists("wechat:quota-spent:template")
    # Known spent: the next batch does not call WeChat at all, it defers at once.
    wechat.faults(daily_quota={"message/template/send": 100})
    with pytest.raises(Deferred):
        send_notices(batch, concurrency=1)
    assert [len(wechat.inbox(p["openid"])) for p, _ in people] == [1, 0, 0]


def test_per_minute_limit_mid_batch_defers_to_the_next_minute(db, wechat):
    people = _people(db, wechat, 3)
    wechat.faults(rate_limit_per_minute=2)
    with pytest.raises(Deferred) as limited:
        send_notices([(u, _notice(f"m:{i}")) for i, (_, u) in enumerate(people)], concurrency=1)
    assert timedelta(0) < limited.value.until - utcnow() <= timedelta(seconds=61)
    assert [o and o.status for o in limited.value.outcomes] == ["sent", "sent", None]


def test_batch_channels_consents_and_unfollowers_follow_the_single_path_rules(db, wechat, app):
    template = templates.registry().subscribe("ticket_updated").template_id
    consenting, c_user = _user(db, wechat)
    wechat._post(f"/users/{consenting['openid']}/consent", json={"template_id": template})
    stale, s_user = _user(db, wechat)        # we hold a consent WeChat does not have (43101)
    gone, g_user = _user(db, wechat)         # unfollowed since: 43004
    wechat.send(gone["openid"], type="event", event="unsubscribe")
    _, nobody = _user(db, wechat, follow=False)
    nobody.subscribed = False
    db.session.add_all([SubscribeConsent(wechat_user_id=c_user.id, template_id=template, remaining=2),
                        SubscribeConsent(wechat_user_id=s_user.id, template_id=template, remaining=1)])
    g_user.subscribed = True
    db.session.commit()
    outcomes = send_notices([(u, _notice(f"c:{i}")) for i, u in enumerate([c_user, s_user, g_user, nobody])],
                            concurrency=3)
    assert [(o.status, o.channel, o.errcode) for o in outcomes] == [
        ("sent", "subscribe", None), ("sent", "template", None), ("skipped", "template", 43004), ("skipped", None, None)]
    assert "48小时" in outcomes[3].reason
    db.session.expire_all()
    remaining = dict(db.session.execute(select(SubscribeConsent.wechat_user_id, SubscribeConsent.remaining)).all())
    assert remaining == {c_user.id: 1, s_user.id: 0}
    assert db.session.get(WechatUser, g_user.id).subscribed is False
    row = db.session.scalar(select(OutboundMessage).where(OutboundMessage.dedupe_key == "c:2"))
    assert (row.status, row.errcode) == ("skipped", 43004) and "未关注" in row.errmsg


# --- answers that never came back (DESIGN §5): never twice, never silently lost ----------------

from app.models.messages import OutboundStatus  # noqa: E402
from tests.jobs.conftest import mentions, wait_until  # noqa: E402


def _slow_wechat(app, wechat, monkeypatch, api):
    wechat_client.official_account().access_token  # fetch the token before slowing things down
    monkeypatch.setitem(app.config, "WECHAT_TIMEOUT", 0.3)
    app.extensions.pop("wechat_clients", None)
    wechat.faults(delay=1, times=1, api=api)


def _received(wechat, openid, text=NUMBER):
    return mentions(wechat.inbox(openid), text)


def test_a_customer_service_message_without_an_answer_is_unknown_and_not_sent_again(db, wechat, app, monkeypatch):
    person, user = _user(db, wechat)
    wechat.say(person["openid"], "你好")  # the window is open: a customer-service message
    db.session.expire_all()
    user = db.session.get(WechatUser, user.id)
    _slow_wechat(app, wechat, monkeypatch, "message/custom/send")

    outcome = send_notice(user, _notice())
    assert (outcome.status, outcome.channel) == (OutboundStatus.UNKNOWN, "custom")
    # WeChat carried it out after all (late): the person has it once, and it is not retried.
    wait_until(lambda: _received(wechat, person["openid"]) == 1, timeout=20, what="the late message")
    again = send_notice(user, _notice())
    assert again.duplicate and again.status == OutboundStatus.UNKNOWN
    assert _received(wechat, person["openid"]) == 1
    row = db.session.scalar(select(OutboundMessage))
    assert (row.status, row.channel) == (OutboundStatus.UNKNOWN, "custom") and "无法确认" in row.errmsg


def test_a_template_message_cut_off_is_sent_again_only_while_wechat_dedupes_it(db, wechat):
    person, user = _user(db, wechat)
    # Two notices left "sending" by a worker that died during the call: one a minute ago, one
    # long enough ago that WeChat no longer remembers its client_msg_id.
    db.session.add_all([
        OutboundMessage(dedupe_key="recent", wechat_user_id=user.id, status=OutboundStatus.SENDING,
                        channel="template", sending_at=utcnow() - timedelta(minutes=1)),
        OutboundMessage(dedupe_key="old", wechat_user_id=user.id, status=OutboundStatus.SENDING,
                        channel="template", sending_at=utcnow() - timedelta(minutes=9)),
    ])
    db.session.commit()
    recent = send_notice(user, _notice("recent"))
    assert (recent.status, recent.channel, recent.duplicate) == ("sent", "template", False)
    old = send_notice(user, _notice("old"))
    assert old.status == OutboundStatus.UNKNOWN and "去重时限" in old.reason
    assert _received(wechat, person["openid"]) == 1  # only the one WeChat would drop if repeated
    statuses = dict(db.session.execute(select(OutboundMessage.dedupe_key, OutboundMessage.status)).all())
    assert statuses == {"recent": "sent", "old": OutboundStatus.UNKNOWN}


def test_a_customer_service_message_cut_off_is_unknown_even_when_a_template_could_go(db, wechat):
    person, user = _user(db, wechat)  # a follower: a template message would reach them
    db.session.add(OutboundMessage(dedupe_key="n1", wechat_user_id=user.id, status=OutboundStatus.SENDING,
                                   channel="custom", sending_at=utcnow()))
    db.session.commit()
    outcome = send_notice(user, _notice("n1"))
    assert (outcome.status, outcome.channel) == (OutboundStatus.UNKNOWN, "custom")
    assert wechat.inbox(person["openid"]) == []


def test_batch_a_customer_service_message_without_an_answer_is_unknown_the_unsent_go_back(
        db, wechat, app, monkeypatch):
    chatty, chatty_user = _user(db, wechat)
    wechat.say(chatty["openid"], "你好")
    quiet, quiet_user = _user(db, wechat)
    db.session.expire_all()
    users = [db.session.get(WechatUser, chatty_user.id), db.session.get(WechatUser, quiet_user.id)]
    _slow_wechat(app, wechat, monkeypatch, "message/custom/send")
    batch = [(users[0], _notice("b:0")), (users[1], _notice("b:1"))]
    with pytest.raises(TemporaryFailure) as info:
        send_notices(batch, concurrency=1)  # one at a time: the slow answer stops the batch
    first, second = info.value.outcomes
    assert (first.status, first.channel) == (OutboundStatus.UNKNOWN, "custom") and second is None
    assert info.value.held == set()
    rows = dict(db.session.execute(select(OutboundMessage.dedupe_key, OutboundMessage.status)).all())
    assert rows == {"b:0": OutboundStatus.UNKNOWN, "b:1": OutboundStatus.PENDING}

    again = send_notices(batch)
    assert [(o.status, o.duplicate) for o in again] == [(OutboundStatus.UNKNOWN, True), ("sent", False)]
    wait_until(lambda: _received(wechat, chatty["openid"]) == 1, timeout=20, what="the late message")
    assert [_received(wechat, p["openid"]) for p in (chatty, quiet)] == [1, 1]


def test_a_notice_kept_on_its_row_is_the_same_notice_again():
    from wechat.templates import Fen

    notice = Notice(key="k", kind="payment_paid", title="缴费成功",
                    values={"amount": Fen(192627), "paid_at": utcnow(), "account_no": "10100001"},
                    remark="点击查看电子收据", url="https://heat.example.com/r/x", mp_page="pages/payment/receipt?no=1")
    assert Notice.from_payload(notice.to_payload()) == notice
    assert "缴费金额：1926.27元" in notice.as_text() and "户号：10100001" in notice.as_text()
    # One kept before the template registry: its labelled rows become text.
    old = Notice.from_payload({"key": "k", "kind": "ticket", "title": "您的工单已办结",
                               "fields": [["工单号", "GD20261123-0001"]], "remark": "欢迎评价"})
    assert old.values == {} and old.as_text() == "您的工单已办结\n工单号：GD20261123-0001\n欢迎评价"
