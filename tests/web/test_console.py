"""Console pages through the test client: ticket actions, outages, FAQ, reports, failed jobs."""
from __future__ import annotations

import json
from io import BytesIO

from openpyxl import load_workbook
from sqlalchemy import func, select

from app.models import (
    FaqEntry, Outage, OutageStatus, OutboxMessage, Role, Ticket, TicketState, TicketType, utcnow,
)
from app.services.actors import Actor
from app.services.tickets import create_ticket


def _repair(db, agent, household, crew_member=None):
    ticket = create_ticket(Actor.of_staff(agent), type=TicketType.REPAIR, source="staff", description="暖气不热",
                           household=household)
    db.session.commit()
    return ticket


def test_the_queue_filters_by_overdue_type_area_and_search(db, staff, console, make_area, make_household):
    from datetime import timedelta

    agent = staff(Role.AGENT)
    d1, c1, _ = make_area(district="和平区")
    h1 = make_household(community=c1)
    late = create_ticket(Actor.of_staff(agent), type=TicketType.COMPLAINT, source="staff", description="维修人员迟到",
                         household=h1, caller_phone="13911112222")
    late.finish_by = utcnow() - timedelta(hours=1)
    on_time = create_ticket(Actor.of_staff(agent), type=TicketType.INQUIRY, source="staff", description="何时供暖")
    db.session.commit()
    console.login(agent.username)

    def numbers(query):
        html = console.get(f"/console/tickets?{query}").get_data(as_text=True)
        return {t.number for t in (late, on_time) if t.number in html}

    assert numbers("") == {late.number, on_time.number}
    assert numbers("overdue=1") == {late.number}
    assert numbers("type=inquiry") == {on_time.number}
    assert numbers(f"district_id={d1.id}") == {late.number}
    assert numbers("q=13911112222") == {late.number}
    assert numbers("q=何时供暖") == {on_time.number}
    assert numbers("state=closed") == set()


def test_an_agent_reassigns_closes_visits_and_reopens_through_the_ticket_service(
        db, staff, console, make_crew, make_staff, make_area, make_household):
    _, community, station = make_area()
    crew_a = make_crew(stations=[station])
    make_staff(role=Role.CREW_MEMBER, crew=crew_a)
    crew_b = make_crew()
    fitter = make_staff(role=Role.CREW_MEMBER, crew=crew_b, name="孙师傅")
    agent = staff(Role.AGENT)
    ticket = _repair(db, agent, make_household(community=community))
    assert ticket.crew_id == crew_a.id
    console.login(agent.username)
    res = console.post(f"/console/tickets/{ticket.id}/reassign", {"crew_id": crew_b.id, "staff_id": fitter.id,
                                                                  "note": "属二班片区"})
    assert res.status_code == 302
    db.session.expire_all()
    t = db.session.get(Ticket, ticket.id)
    assert (t.crew_id, t.assignee_id, t.events[-1].note) == (crew_b.id, fitter.id, "属二班片区")
    # close needs the crew's reply first: the service refuses, the page says why
    refused = console.post(f"/console/tickets/{ticket.id}/close", {"final_answer": "已修好"})
    assert refused.status_code == 409 and "不能办结" in refused.get_data(as_text=True)
    t.state, t.reply, t.replied_at = TicketState.REPLIED, "已更换阀门", utcnow()
    db.session.commit()
    assert console.post(f"/console/tickets/{ticket.id}/close", {"final_answer": "已为您更换阀门"}).status_code == 302
    assert console.post(f"/console/tickets/{ticket.id}/visit", {"result": "用户表示满意", "satisfied": "yes"}).status_code == 302
    assert console.post(f"/console/tickets/{ticket.id}/reopen", {"reason": "又不热了"}).status_code == 302
    db.session.expire_all()
    t = db.session.get(Ticket, ticket.id)
    assert t.state == TicketState.ASSIGNED and t.visit_result == "用户表示满意"
    assert [e.action for e in t.events][-3:] == ["closed", "visited", "reopened"]
    page = console.get(f"/console/tickets/{ticket.id}").get_data(as_text=True)
    assert "回访" in page and "重新打开" in page and "又不热了" in page


def test_the_outage_picker_counts_households_before_sending(db, staff, console, make_area, make_household):
    _, community, station = make_area()
    for building in ("1", "1", "2"):
        make_household(community=community, building=building)
    agent = staff(Role.AGENT)
    console.login(agent.username)
    url = "/console/areas/affected.json"
    headers = {"X-CSRF-Token": console.token, "Content-Type": "application/json"}
    one_building = json.dumps([{"community_id": community.id, "building": "1"}])
    assert console.client.post(url, data=one_building, headers=headers).get_json() == {"households": 2}
    whole_station = json.dumps([{"station_id": station.id}])
    assert console.client.post(url, data=whole_station, headers=headers).get_json() == {"households": 3}
    assert console.client.post(url, data=whole_station,
                               headers={"Content-Type": "application/json"}).status_code == 400  # no CSRF token


def test_staff_create_update_and_restore_an_outage(db, staff, console, make_area, make_household):
    _, community, _ = make_area()
    make_household(community=community, building="3")
    agent = staff(Role.AGENT)
    console.login(agent.username)
    res = console.post("/console/outages", {
        "title": "3号楼抢修停热", "kind": "unplanned", "reason": "管道爆裂",
        "expected_end_at": "2030-01-01T18:00", "areas": json.dumps([{"community_id": community.id, "building": "3"}])})
    assert res.status_code == 302
    outage = db.session.scalar(select(Outage))
    assert outage.status == OutageStatus.ACTIVE and outage.areas[0].building == "3"
    assert "影响 1 户" in console.get(res.location).get_data(as_text=True)
    assert console.post(f"/console/outages/{outage.id}", {"reason": "更换阀门", "expected_end_at": "2030-01-01T20:00"}).status_code == 302
    assert console.post(f"/console/outages/{outage.id}/restore").status_code == 302
    db.session.expire_all()
    assert db.session.get(Outage, outage.id).status == OutageStatus.RESTORED
    changes = [m.payload["change"] for m in db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.topic == "notify.outage").order_by(OutboxMessage.id))]
    assert changes == ["created", "updated", "restored"]


def test_the_knowledge_base_editor_adds_edits_and_deletes_entries(db, staff, console):
    agent = staff(Role.AGENT)
    console.login(agent.username)
    form = {"question": "暖气漏水怎么办", "answer": "请关闭阀门并拨打热线。", "keywords": "漏水 阀门",
            "category": "维修", "active": "1"}
    assert console.post("/console/faq", form).status_code == 302
    entry = db.session.scalar(select(FaqEntry).where(FaqEntry.question == "暖气漏水怎么办"))  # beside the shipped ones
    assert (entry.question, entry.active) == ("暖气漏水怎么办", True)
    assert console.post("/console/faq", form).status_code == 400  # the same question twice
    assert console.post(f"/console/faq/{entry.id}", {**form, "answer": "请先关闭进水阀。", "active": ""}).status_code == 302
    db.session.expire_all()
    entry = db.session.get(FaqEntry, entry.id)
    assert (entry.answer, entry.active) == ("请先关闭进水阀。", False)
    assert console.post(f"/console/faq/{entry.id}/delete").status_code == 302
    assert db.session.get(FaqEntry, entry.id) is None


def test_reports_show_on_screen_and_download_as_excel(db, staff, console, make_area, make_household):
    agent = staff(Role.AGENT)
    d, c, _ = make_area(district="河北区")
    h = make_household(community=c)
    for kind in (TicketType.REPAIR, TicketType.REPAIR, TicketType.COMPLAINT):
        create_ticket(Actor.of_staff(agent), type=kind, source="staff", description="测试", household=h)
    db.session.commit()
    console.login(agent.username)
    page = console.get("/console/reports").get_data(as_text=True)
    assert "工单总数" in page and "河北区" in page
    res = console.get("/console/reports.xlsx?period=month")
    assert res.status_code == 200 and "attachment" in res.headers["Content-Disposition"]
    wb = load_workbook(BytesIO(res.data))
    assert {"概要", "按类型", "按区域", "满意度", "收费"} <= set(wb.sheetnames)
    by_type = {row[0]: row[1] for row in wb["按类型"].iter_rows(min_row=2, values_only=True)}
    assert by_type["报修"] == 2 and by_type["投诉"] == 1
    areas = list(wb["按区域"].iter_rows(min_row=2, values_only=True))
    assert areas[0][0] == "河北区" and areas[0][2] == 3
    bad = console.get("/console/reports?date_from=2026-12-01&date_to=2026-01-01")
    assert bad.status_code == 200 and "开始日期不能晚于结束日期" in bad.get_data(as_text=True)


def test_failed_jobs_are_listed_and_retried(app, db, redis, staff, console):
    from rq import SimpleWorker

    from app.queue import get_queue

    job = get_queue("default").enqueue("tests.web.test_console.always_fails")  # no retries
    SimpleWorker([get_queue("default")], connection=redis).work(burst=True, with_scheduler=False)
    agent = staff(Role.AGENT)
    console.login(agent.username)
    page = console.get("/console/jobs/failed").get_data(as_text=True)
    assert "always_fails" in page and "供热测试故障" in page
    assert console.post("/console/jobs/failed/retry", {"job_id": job.id, "queue": "default"}).status_code == 302
    assert job.id in get_queue("default").job_ids
    assert "没有失败的任务" in console.get("/console/jobs/failed").get_data(as_text=True)


def always_fails():
    raise RuntimeError("供热测试故障")
