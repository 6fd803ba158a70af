"""Alerts open a page their recipient can use (issue 15): the emergency alert takes a crew's
lead to the task (page and mini-program) and the leader on duty — who has no crew's
mini-program — to the dashboard's ticket page; the low-rating alert takes the lead to the
task. Each link is opened as that person through WeChat's web sign-in."""
from __future__ import annotations

import requests

from app.models import Role, utcnow
from app.services import tickets
from app.services.actors import Actor
from jobs import notify as notify_jobs, resident_pushes
from tests.web.h5_links.test_no_dead_link import assert_working_page, links_in, world  # noqa: F401 (fixture)
from tests.web.h5_support import is_page, open_as


def _alerts(h5, openid: str, kind_title: str) -> list[dict]:
    return [m for m in h5.inbox(openid) if m.get("direction") == "out" and m.get("title") == kind_title]


def test_the_emergency_alert_opens_the_task_for_the_lead_and_the_dashboard_for_the_leader(app, db, live_app, h5,
                                                                                         world):
    for staff, outbox_id in ((world.lead, 910_001), (world.leader, 910_002)):
        notify_jobs.emergency_alert({"ticket_id": world.ticket.id, "staff_id": staff.id}, outbox_id)
    lead_openid, leader_openid = world.people[world.lead.id]["openid"], world.people[world.leader.id]["openid"]

    (lead_alert,) = _alerts(h5, lead_openid, "紧急工单提醒")
    assert lead_alert["miniprogram"]["pagepath"] == f"pages/task/detail?id={world.ticket.id}"
    (url,) = links_in(lead_alert)
    assert f"/mp/task?id={world.ticket.id}" in url
    assert_working_page(live_app.url, url, lead_openid, "crew lead")

    (leader_alert,) = _alerts(h5, leader_openid, "紧急工单提醒")
    assert not leader_alert.get("miniprogram")                  # the crews' mini-program is not the leader's
    (url,) = links_in(leader_alert)
    assert url.endswith(f"/dashboard/tickets/{world.ticket.id}")
    res = open_as(requests.Session(), url, leader_openid)
    assert res.status_code == 200 and is_page(res), (res.status_code, res.url)
    assert res.url == url and world.ticket.number in res.text   # signed in by WeChat, on the ticket


def test_the_low_rating_alert_opens_the_closed_task_for_the_lead(app, db, live_app, h5, world, make_staff):
    t = world.ticket
    tickets.accept_ticket(t, Actor.of_staff(world.member))
    tickets.reply_ticket(t, Actor.of_staff(world.member), "已排气")
    tickets.close_ticket(t, Actor.of_staff(make_staff(role=Role.AGENT)), "已修复")
    t.rating, t.rating_comment, t.rated_at = 1, "还是冷", utcnow()
    db.session.commit()
    resident_pushes.low_rating_alert({"ticket_id": t.id, "staff_id": world.lead.id, "event_id": 910_003}, 910_004)
    openid = world.people[world.lead.id]["openid"]
    (alert,) = _alerts(h5, openid, "服务差评提醒")
    (url,) = links_in(alert)
    assert f"/mp/task?id={t.id}" in url
    assert_working_page(live_app.url, url, openid, "crew lead")
