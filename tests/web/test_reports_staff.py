"""Reports per crew and per agent (客服满意度统计) on hand-checkable data, and the Excel file:
number formats, column widths and native charts, opened with openpyxl."""
from __future__ import annotations

import itertools
from datetime import date, timedelta
from io import BytesIO

import pytest
from openpyxl import load_workbook

from app.models import CallLog, Role, Ticket, TicketEvent, TicketState
from app.services import reports

_n = itertools.count(1)


@pytest.fixture()
def now(clock):
    return clock.utcnow()


@pytest.fixture()
def params(now):
    today = date(2026, 11, 25)
    return reports.ReportParams(today - timedelta(days=6), today, "day")


@pytest.fixture()
def ticket(db, now):
    def make(*, by=None, phone_agent=None, created=timedelta(hours=30), **kw):
        n = next(_n)
        at = now - created
        t = Ticket(number=f"RS{n:06d}", source="staff" if by else "phone", type=kw.pop("type", "repair"),
                   description="暖气不热", state=kw.pop("state", TicketState.CLOSED), created_at=at, updated_at=at, **kw)
        t.events.append(TicketEvent(action="created", to_state="new", actor_kind="staff" if by else "phone",
                                    actor_staff_id=by.id if by else None, actor_name=by.name if by else phone_agent,
                                    created_at=at))
        db.session.add(t)
        db.session.flush()
        return t

    return make


def _h(n):
    return timedelta(hours=n)


def test_per_crew_volume_response_on_time_and_satisfaction(db, ticket, make_crew, params, now):
    one, two = make_crew(name="和平维修一班"), make_crew(name="铁西维修二班")
    base = now - _h(30)
    # 一班: accepted on time / late; finished on time / late; ratings 5 and 3
    ticket(crew_id=one.id, respond_by=base + _h(1), accepted_at=base + timedelta(minutes=30),
           finish_by=base + _h(10), replied_at=base + _h(5), closed_at=base + _h(6), rating=5, rated_at=base + _h(7))
    ticket(crew_id=one.id, respond_by=base + _h(1), accepted_at=base + timedelta(minutes=90),
           finish_by=base + _h(10), replied_at=base + _h(12), closed_at=base + _h(13), rating=3, rated_at=base + _h(14))
    ticket(crew_id=two.id, respond_by=base + _h(1), state=TicketState.ASSIGNED, finish_by=base + _h(10))
    ticket(crew_id=one.id, created=timedelta(days=20))   # before the range
    rows = {r["name"]: r for r in reports.crew_report(params)}
    a = rows["和平维修一班"]
    assert (a["count"], a["closed"]) == (2, 2)
    assert a["response_minutes"] == 60.0                 # (30 + 90) / 2
    assert a["response_on_time_rate"] == 0.5 and a["finish_on_time_rate"] == 0.5
    assert a["repair_hours"] == 8.5                      # (5 + 12) / 2
    assert (a["rating"], a["satisfied_rate"]) == (4.0, 0.5)
    b = rows["铁西维修二班"]
    assert (b["count"], b["response_on_time_rate"], b["rating"]) == (1, None, None)


def test_per_agent_tickets_calls_and_ivr_ratings(db, ticket, staff, params, now):
    zhou = staff(Role.AGENT, name="客服小周")
    base = now - _h(30)
    ticket(by=zhou, finish_by=base + _h(10), replied_at=base + _h(2), rating=5, rated_at=base + _h(3))
    ticket(by=zhou, finish_by=base + _h(10), replied_at=base + _h(20), rating=2, rated_at=base + _h(21))
    ticket(phone_agent="王芳", finish_by=base + _h(10), replied_at=base + _h(3))

    def call(cid, agent, ring, rating=None, on_ticket=False):
        started = now - _h(5)
        db.session.add(CallLog(call_id=cid, caller_phone="+8613800000001", status="hangup", agent=agent,
                               started_at=started, answered_at=started + timedelta(seconds=ring), duration_s=120,
                               last_event_at=started, rating=rating, rated_at=started + _h(1) if rating else None,
                               rating_on_ticket=on_ticket))

    call("w1", "王芳", 10, rating=4)
    call("w2", "王芳", 30, rating=5, on_ticket=True)     # counted once, on its ticket
    call("w3", "王芳", 20)
    db.session.flush()
    rows = {r["name"]: r for r in reports.agent_report(params)}
    z, w = rows["客服小周"], rows["王芳"]
    assert (z["count"], z["finish_on_time_rate"], z["rating"], z["calls"]) == (2, 0.5, 3.5, 0)
    assert (z["all_rated"], z["all_satisfied_rate"]) == (2, 0.5)
    assert (w["count"], w["calls"], w["ring_seconds"], w["talk_seconds"]) == (1, 3, 20, 120)
    assert (w["call_rating"], w["call_rated"], w["all_rated"], w["all_satisfied_rate"]) == (4.0, 1, 1, 1.0)


def test_the_excel_file_has_formats_widths_and_native_charts(db, ticket, make_crew, staff, params, now):
    crew = make_crew(name="和平维修一班")
    zhou = staff(Role.AGENT, name="客服小周")
    base = now - _h(30)
    ticket(by=zhou, crew_id=crew.id, respond_by=base + _h(1), accepted_at=base + _h(0.5), finish_by=base + _h(10),
           replied_at=base + _h(5), rating=4, rated_at=base + _h(6))
    data = reports.report_workbook(reports.full_report(params))
    wb = load_workbook(BytesIO(data))
    crews = wb["班组统计"]
    headers = [c.value for c in crews[1]]
    rate = crews.cell(row=2, column=headers.index("响应及时率") + 1)
    assert rate.value == 1.0 and rate.number_format == "0.0%"
    assert crews.column_dimensions["A"].width >= 14           # 和平维修一班: six CJK characters
    assert len(crews._charts) == 1
    agents = wb["客服统计"]
    assert [c.value for c in agents[2]][:2] == ["客服小周", 1]
    assert agents.cell(row=2, column=2).number_format == "#,##0"
    assert len(agents._charts) == 1
    assert len(wb["按类型"]._charts) == 1 and len(wb["满意度"]._charts) == 1
    assert len(wb[f"按时间（{reports.PERIODS['day']}）"]._charts) == 1


def test_money_is_in_yuan_with_thousands_separators(db, make_household, make_season, params):
    from decimal import Decimal

    from app.models import Bill, BillStatus

    season = make_season()
    h = make_household()
    db.session.add(Bill(household_id=h.id, season_id=season.id, area_m2=Decimal(100), unit_price_fen=100,
                        amount_fen=123456789, paid_fen=61728394, status=BillStatus.PARTIAL))
    db.session.flush()
    wb = load_workbook(BytesIO(reports.report_workbook(reports.full_report(params))))
    fees = wb["收费"]
    due, paid, rate = fees.cell(row=2, column=2), fees.cell(row=2, column=3), fees.cell(row=2, column=4)
    assert (due.value, due.number_format) == (1234567.89, "#,##0.00")
    assert paid.value == 617283.94 and rate.number_format == "0.0%" and rate.value == pytest.approx(0.5, abs=1e-4)
    assert fees.column_dimensions["B"].width >= len("1,234,567.89")
    assert len(wb["收费按区县"]._charts) == 1


def test_the_report_page_covers_any_date_range(console, staff, db):
    agent = staff(Role.AGENT)
    console.login(agent.username)
    res = console.get("/console/reports?date_from=2025-11-01&date_to=2026-03-31&period=month")
    html = res.get_data(as_text=True)
    assert res.status_code == 200 and 'id="report-crews"' in html and 'id="report-agents"' in html
    assert 'id="chart-period"' in html and "js/reports.js" in html
    assert "2025-11" in html and "2026-03" in html
    xlsx = console.get("/console/reports.xlsx?date_from=2025-11-01&date_to=2026-03-31&period=month")
    assert xlsx.status_code == 200 and load_workbook(BytesIO(xlsx.data))["客服统计"]
