"""Spotting an unknown outage: a burst of no-heat reports from one place with no outage
recorded alerts the crew lead and the leader on duty once per cluster; staff turn it into an
outage in one step (the reports are linked, the area is notified)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.models import ClusterStatus, Outage, OutageCluster, OutageStatus, Ticket, TicketState, utcnow
from app.services import clusters, tickets
from app.services.actors import Actor
from tests.factories import bind_wechat_user
from tests.jobs.conftest import card
from tests.app.conftest import outbox_rows
from tests.web.conftest import PASSWORD, Console


def _report(household, *, category="no_heat", now=None, type="repair"):
    return tickets.create_ticket(Actor.phone(), type=type, source="phone", description="暖气不热",
                                 category=category, household=household, now=now)


def test_the_alert_fires_once_per_cluster_not_per_report(app, db, wechat, worker, make_town):
    town = make_town(inside=30, outside=3)
    people = {}
    for staff in (town.lead, town.leader):
        person, _ = bind_wechat_user(db, wechat, staff=staff, mini_program=False)
        people[staff.id] = person["openid"]
    db.session.commit()
    threshold = app.config["CLUSTER_THRESHOLD"]

    for household in town.inside[:threshold - 1]:
        _report(household)
    _report(town.inside[0], category="leak")        # not a heat report: does not count
    for household in town.outside:                   # another station: its own count
        _report(household)
    db.session.commit()
    assert db.session.scalar(select(OutageCluster)) is None
    assert outbox_rows(db, "notify.cluster_alert") == []

    for household in town.inside[threshold - 1:25]:  # the threshold is reached, then 15 more
        _report(household)
        db.session.commit()
    cluster = db.session.scalar(select(OutageCluster))
    assert cluster.status == ClusterStatus.OPEN and cluster.station_id == town.inside_station.id
    assert cluster.report_count == 25
    alerts = outbox_rows(db, "notify.cluster_alert")
    assert sorted(m.payload["staff_id"] for m in alerts) == sorted([town.lead.id, town.leader.id])
    assert db.session.scalars(select(OutageCluster)).all() == [cluster]

    worker()
    # The link opens a page each can use from WeChat (crews cannot sign in to the console).
    pages = {town.lead.id: "/mp/tasks", town.leader.id: "/dashboard/"}
    for staff_id, openid in people.items():
        (alert,) = [m for m in wechat.inbox(openid) if m.get("title") == "疑似停热预警"]
        shown = card(alert)  # the 疑似停热预警 template: where, how many, since when
        assert (alert["title"], shown["预警区域"], shown["报修数量"]) == ("疑似停热预警", "一号换热站", "25")
        assert alert["url"].endswith(pages[staff_id])
    # The reports were dispatched as usual meanwhile (no outage is known yet).
    assert all(t.state == TicketState.ASSIGNED for t in db.session.scalars(select(Ticket)))


def test_a_new_cluster_only_after_the_previous_one_expired(app, db, make_town):
    town = make_town(inside=25, outside=0)
    threshold = app.config["CLUSTER_THRESHOLD"]
    start = utcnow() - timedelta(hours=3)
    for i, household in enumerate(town.inside[:threshold]):
        _report(household, now=start + timedelta(minutes=i))
    db.session.commit()
    first = db.session.scalar(select(OutageCluster))
    assert first is not None and len(outbox_rows(db, "notify.cluster_alert")) == 2

    # Two hours of quiet: the cluster is over; a new burst is a new cluster with a new alert.
    later = start + timedelta(hours=2)
    for i, household in enumerate(town.inside[threshold:2 * threshold]):
        _report(household, now=later + timedelta(minutes=i))
    db.session.commit()
    db.session.expire_all()
    rows = db.session.scalars(select(OutageCluster).order_by(OutageCluster.id)).all()
    assert [r.status for r in rows] == [ClusterStatus.EXPIRED, ClusterStatus.OPEN]
    assert len(outbox_rows(db, "notify.cluster_alert")) == 4


def test_staff_turn_a_cluster_into_an_outage_in_one_step(app, db, client, make_town, make_staff):
    town = make_town(inside=15, outside=2)
    agent = make_staff(role="agent", password=PASSWORD)
    db.session.commit()
    made = [_report(h) for h in town.inside[:12]]
    accepted = made[0]
    tickets.accept_ticket(accepted, Actor.of_staff(accepted.assignee))  # someone is already on it
    other = _report(town.outside[0])
    db.session.commit()
    cluster = db.session.scalar(select(OutageCluster))

    console = Console(client)
    assert console.login(agent.username).status_code == 302
    page = console.get("/console/clusters").get_data(as_text=True)
    assert "一号换热站" in page and made[5].number in page and "转为停热" in page
    form = {"title": "一号站临时停热", "reason": "一次网阀门故障", "expected_end_at": "2030-01-01T18:00"}
    asked = console.post(f"/console/clusters/{cluster.id}/convert", form)   # first: how many are told
    assert asked.status_code == 200 and "将向 15 户居民发送停热通知" in asked.get_data(as_text=True)
    assert db.session.scalar(select(Outage)) is None
    res = console.post(f"/console/clusters/{cluster.id}/convert", {**form, "confirmed": "15"})
    assert res.status_code == 302

    db.session.expire_all()
    outage = db.session.scalar(select(Outage))
    assert outage.status == OutageStatus.ACTIVE and outage.areas[0].station_id == town.inside_station.id
    assert db.session.get(OutageCluster, cluster.id).status == ClusterStatus.CONVERTED
    linked = db.session.scalars(select(Ticket).where(Ticket.outage_id == outage.id)).all()
    assert len(linked) == 11   # the accepted one stays with its crew member
    assert all(t.state == TicketState.NEW and t.crew_id is None and t.finish_by is None for t in linked)
    assert db.session.get(Ticket, accepted.id).outage_id is None
    assert db.session.get(Ticket, other.id).outage_id is None
    assert [m.payload["change"] for m in outbox_rows(db, "notify.outage")] == ["created"]  # the area is told
    # Later reports there are linked at once, and open no new cluster.
    late = _report(town.inside[13])
    db.session.commit()
    assert late.outage_id == outage.id
    assert db.session.scalar(select(OutageCluster).where(OutageCluster.status == ClusterStatus.OPEN)) is None
    assert "关联报修" in console.get("/console/outages").get_data(as_text=True)
    assert clusters.open_clusters() == []
