"""One outage, many calls: 55 no-heat reports through the three channels, linked or dispatched,
restored, three still cold, the rest closed together — driven over real HTTP (bridge signed
requests, the official account through the WeChat sandbox, the mini-program API with its login)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.models import Ticket, TicketEvent, TicketSource, TicketState, utcnow
from app.services import outage_linking, outages
from jobs.outage_notices import close_unconfirmed_reports
from tests.app.conftest import outbox_rows, start_outage
from tests.bridge.conftest import live_phone, receiver  # noqa: F401 — the bridge's fixtures
from tests.factories import bind_wechat_user
from tests.mobile_api.conftest import Api

# How the 50 inside and 5 outside reports are spread over the channels.
OA_IN, MP_IN, PHONE_IN = 8, 12, 30
OA_OUT, MP_OUT, PHONE_OUT = 1, 2, 2


def multipart(**fields) -> dict:
    """Form fields sent as multipart/form-data, as wx.uploadFile / the mini-program sends them."""
    return {k: (None, str(v)) for k, v in fields.items()}


def _task_pushes(wechat, openid: str) -> list:
    """New-task notices: the 工单派发提醒 template, or the text inside the 48-hour window."""
    return [m for m in wechat.inbox(openid) if m.get("title") == "工单派发提醒" or "维修任务" in str(m.get("content"))]


def test_one_outage_many_reports_linked_answered_restored_and_closed_together(
        app, db, wechat, live_app, live_phone, receiver, worker, make_town):
    town = make_town(inside=OA_IN + MP_IN + PHONE_IN, outside=OA_OUT + MP_OUT + PHONE_OUT)
    # The crews have WeChat, to see which pushes they get.
    crew_people = {}
    for staff in (town.member, town.lead, town.other_member):
        person, _ = bind_wechat_user(db, wechat, staff=staff, mini_program=False)
        crew_people[staff.id] = person["openid"]
    db.session.commit()
    outage = start_outage(db, town.inside_community, hours=4)
    restore_at_text = outages.local_time(outage.expected_end_at)
    worker()  # the outage notice to the (still empty) area

    inside, outside = list(town.inside), list(town.outside)

    def mp_login(openid: str) -> str:  # wx.login: a one-time code from the sandbox, exchanged for our token
        code = wechat._post(f"/users/{openid}/login-code")["code"]
        answer = Api(live_app.url).post("/api/v1/auth/login", json={"code": code})
        assert answer.status_code == 200, answer.text
        return answer.json()["token"]

    residents = {}  # household id -> (channel, openid, token)

    def oa_report(household, text):
        person, _ = bind_wechat_user(db, wechat, household=household, nickname="公众号住户", mini_program=False)
        db.session.commit()
        residents[household.id] = ("oa", person["openid"], None)
        return wechat.say(person["openid"], text)

    def mp_report(household):
        person, _ = bind_wechat_user(db, wechat, household=household, nickname="小程序住户")
        db.session.commit()
        token = mp_login(person["openid"])
        residents[household.id] = ("mp", person["openid"], token)
        res = Api(live_app.url, token).post("/api/v1/repairs", files=multipart(
            household_id=household.id, category="no_heat", description="家里暖气不热"))
        assert res.status_code == 201, res.text
        return res.json()

    n = iter(range(1000))

    def phone_report(household):
        i = next(n)
        res = live_phone.http_post("/tickets", {
            "external_id": f"CC-{i:04d}", "event_id": f"ev-{i:04d}", "type": "报修", "category": "不热",
            "caller_phone": household.owner_phone, "account_no": household.account_no,
            "description": "来电反映家中暖气不热"})
        assert res.status_code == 201, res.text
        return res.json()

    # --- 50 reports from inside: each answered at once with the outage and its restore time ---
    for k, household in enumerate(inside[:OA_IN]):
        reply = oa_report(household, "报修 卧室暖气不热" if k % 2 else "家里暖气不热")
        assert "停热" in reply and restore_at_text in reply and "无需重复报修" in reply, reply
    for household in inside[OA_IN:OA_IN + MP_IN]:
        body = mp_report(household)
        assert body["outage_id"] == outage.id and body["outage"]["title"] == outage.title
        assert restore_at_text in body["message"] and body["state"] == TicketState.NEW
        assert body["finish_by"] is None  # clock held
    for household in inside[OA_IN + MP_IN:]:
        body = phone_report(household)
        assert body["linked"] is True and body["outage"]["id"] == outage.id
        assert restore_at_text in body["message"] and body["ticket"]["crew"] is None

    # --- 5 from outside: dispatched to their crew as usual --------------------------------------
    reply = oa_report(outside[0], "家里暖气不热")  # no outage there: a repair in words is confirmed first
    assert "回复 1 确认报修" in reply
    reply = wechat.say(residents[outside[0].id][1], "1")
    assert "已受理" in reply and town.other_crew.name in reply
    for household in outside[1:1 + MP_OUT]:
        body = mp_report(household)
        assert body["outage_id"] is None and body["message"] is None and body["state"] == TicketState.ASSIGNED
    for household in outside[1 + MP_OUT:]:
        body = phone_report(household)
        assert body["linked"] is False and body["outage"] is None and body["ticket"]["crew"] == town.other_crew.name

    db.session.expire_all()
    linked = list(db.session.scalars(select(Ticket).where(Ticket.outage_id == outage.id)))
    normal = list(db.session.scalars(select(Ticket).where(Ticket.outage_id.is_(None))))
    assert len(linked) == 50 and len(normal) == 5
    assert {t.source for t in linked} == {TicketSource.OFFICIAL_ACCOUNT, TicketSource.MINI_PROGRAM, TicketSource.PHONE}
    assert all(t.state == TicketState.NEW and t.crew_id is None and t.finish_by is None and t.sla_held_at
               for t in linked)
    assert all(any(e.action == "linked_to_outage" and outage.title in e.note for e in t.events) for t in linked)
    assert all(t.state == TicketState.ASSIGNED and t.crew_id == town.other_crew.id for t in normal)
    pushed = {m.payload["ticket_id"] for m in outbox_rows(db, "notify.task_assigned")}
    assert pushed == {t.id for t in normal}  # no crew task per linked household
    worker()
    assert _task_pushes(wechat, crew_people[town.member.id]) == []
    assert _task_pushes(wechat, crew_people[town.lead.id]) == []
    assert len(_task_pushes(wechat, crew_people[town.other_member.id])) == 5
    # The phone system heard of the link for its 30 tickets.
    linked_posts = [b for b in receiver.accepted() if b["action"] == "linked_to_outage"]
    assert len(linked_posts) == PHONE_IN and all(b["external_id"].startswith("CC-") for b in linked_posts)

    # --- restore: 50 restoration notices ---------------------------------------------------------
    outage_linking.restore_outage(outage.id)
    db.session.commit()
    until_text = outages.local_time(outages.still_cold_until(db.session.get(type(outage), outage.id)))
    wechat_notices = outbox_rows(db, "notify.outage_restored")
    phone_notices = [m for m in outbox_rows(db, "bridge.status") if m.payload["action"] == "outage_restored"]
    assert len(wechat_notices) == OA_IN + MP_IN and len(phone_notices) == PHONE_IN
    assert {m.payload["ticket_id"] for m in wechat_notices} | {m.payload["ticket_id"] for m in phone_notices} == \
        {t.id for t in linked}
    worker()
    for channel, openid, _ in (residents[h.id] for h in inside[:OA_IN + MP_IN]):
        notice = [m for m in wechat.inbox(openid) if "还冷" in str(m)]
        # The 恢复供热通知 card's tip (or the text) says until when 还冷 is heard.
        assert len(notice) == 1 and until_text.replace(" ", "") in str(notice[0]).replace(" ", "")
    assert len([b for b in receiver.accepted() if b["action"] == "outage_restored"]) == PHONE_IN

    # --- three residents are still cold: two in the official account, one in the mini-program ---
    still_cold = []
    for household in inside[:2]:
        _, openid, _ = residents[household.id]
        reply = wechat.say(openid, "还冷")
        assert "已转为维修工单" in reply and town.crew.name in reply, reply
        still_cold.append(household.id)
    household = inside[OA_IN]
    _, _, token = residents[household.id]
    db.session.expire_all()
    ticket_id = db.session.scalar(select(Ticket.id).where(Ticket.household_id == household.id))
    res = Api(live_app.url, token).post(f"/api/v1/repairs/{ticket_id}/still-cold", json={"note": "卧室还是凉的"})
    assert res.status_code == 200, res.text
    assert res.json()["state"] == TicketState.ASSIGNED and res.json()["finish_by"]
    still_cold.append(household.id)

    db.session.expire_all()
    reopened = list(db.session.scalars(select(Ticket).where(Ticket.household_id.in_(still_cold))))
    restored_at = db.session.get(type(outage), outage.id).actual_end_at
    assert all(t.state == TicketState.ASSIGNED and t.crew_id == town.crew.id and t.sla_held_at is None
               and t.respond_by > restored_at for t in reopened)
    worker()
    assert len(_task_pushes(wechat, crew_people[town.member.id])) == 3

    # --- after the window, the other 47 are closed together; the phone system is told ---------
    assert close_unconfirmed_reports(now=utcnow()) == 0  # still inside the window
    window = timedelta(hours=app.config["OUTAGE_STILL_COLD_HOURS"], minutes=1)
    assert close_unconfirmed_reports(now=utcnow() + window) == 47
    assert close_unconfirmed_reports(now=utcnow() + window) == 0  # idempotent
    db.session.expire_all()
    closed = list(db.session.scalars(select(Ticket).where(Ticket.outage_id == outage.id,
                                                          Ticket.state == TicketState.CLOSED)))
    assert len(closed) == 47 and all("恢复供热" in t.final_answer for t in closed)
    assert db.session.scalar(select(TicketEvent).where(TicketEvent.action == "closed")).actor_kind == "system"
    worker()
    closed_posts = [b for b in receiver.accepted() if b["state"] == TicketState.CLOSED]
    assert len(closed_posts) == PHONE_IN and all(b["actor"] == "系统" for b in closed_posts)
