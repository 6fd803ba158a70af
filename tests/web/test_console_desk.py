"""The desk (issue 17): household search, the customer page, 新建工单, masking, the
personal-data access log, both deadlines in the ticket list, the Excel export, admin pages."""
from __future__ import annotations

from datetime import timedelta
from io import BytesIO

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from app.models import (
    AccessAction, CallLog, CallStatus, PersonalDataAccess, Role, Ticket, TicketSource, TicketState, utcnow,
)
from app.services.actors import Actor
from app.services.tickets import create_ticket


@pytest.fixture()
def city(db, make_area, make_household, make_crew, make_staff):
    """Two households in 幸福里 (one crew serves its station), one elsewhere."""
    _, community, station = make_area(district="和平区", community="幸福里")
    crew = make_crew(name="和平维修一班", stations=[station])
    member = make_staff(role=Role.CREW_MEMBER, crew=crew, name="张志强")
    liu = make_household(community=community, owner_name="刘秀英", owner_phone="13940512234", building="3",
                         unit="2", room="501", account_no="10100006")
    wang = make_household(community=community, owner_name="王建国", owner_phone="024-23456789", building="5",
                          unit="1", room="302", account_no="10100007")
    other = make_household(owner_name="刘德华", owner_phone="13600001111", account_no="20200001")
    db.session.commit()
    return {"liu": liu, "wang": wang, "other": other, "crew": crew, "member": member}


def _accesses(db):
    db.session.expire_all()
    return db.session.scalars(select(PersonalDataAccess).order_by(PersonalDataAccess.id)).all()


def test_household_search_finds_by_account_phone_name_and_address_with_masked_names(console, staff, city):
    console.login(staff(Role.AGENT).username)
    for query, found in [("10100006", "10100006"), ("139 4051 2234", "10100006"), ("2234", "10100006"),
                         ("(024) 2345-6789", "10100007"), ("刘秀英", "10100006"), ("幸福里3号楼2单元501", "10100006"),
                         ("１０１００００７", "10100007")]:
        page = console.get(f"/console/customers?q={query}").get_data(as_text=True)
        assert f'data-account="{found}"' in page, query
    page = console.get("/console/customers?q=刘").get_data(as_text=True)
    assert 'data-account="10100006"' in page and 'data-account="20200001"' in page
    assert "刘**" in page and "139****2234" in page          # masked in the list
    assert "刘秀英" not in page and "13940512234" not in page and "139 4051 2234" not in page
    assert 'data-account="10100007"' not in console.get("/console/customers?q=幸福里3号楼").get_data(as_text=True)


def test_the_customer_page_shows_everything_in_full_and_each_opening_is_logged(console, staff, city, db, clock):
    agent = staff(Role.AGENT, name="李客服")
    liu = city["liu"]
    ticket = create_ticket(Actor.system(), type="repair", source=TicketSource.PHONE, description="暖气不热",
                           category="no_heat", household=liu, caller_phone=liu.owner_phone)
    db.session.add(CallLog(call_id="C-1", caller_phone=liu.owner_phone, status=CallStatus.ANSWERED,
                           started_at=utcnow(), last_event_at=utcnow(), duration_s=95, agent="王芳",
                           recording_url="https://cc.example.com/rec/C-1.mp3", household_id=liu.id))
    db.session.commit()
    console.login(agent.username)
    assert _accesses(db) == []
    res = console.get(f"/console/customers/{liu.id}")
    page = res.get_data(as_text=True)
    assert res.status_code == 200
    assert "刘秀英" in page and "139 4051 2234" in page and "幸福里3号楼2单元501室" in page
    assert ticket.number in page and "https://cc.example.com/rec/C-1.mp3" in page and "1分35秒" in page
    console.get(f"/console/customers/{liu.id}")
    rows = _accesses(db)
    assert [(r.action, r.staff_name, r.household_id, r.subject) for r in rows] == \
        [(AccessAction.VIEW_CUSTOMER, "李客服", liu.id, "户号 10100006")] * 2


def test_a_walk_in_ticket_follows_the_same_rules_as_other_channels_and_records_its_source(console, staff, city, db):
    console.login(staff(Role.AGENT).username)
    liu = city["liu"]
    res = console.post("/console/tickets/new", {
        "household_id": liu.id, "source": "walk_in", "type": "repair", "category": "leak", "priority": "",
        "caller_name": "刘秀英", "caller_phone": "１３９４０５１２２３４", "address": liu.address,
        "description": "暖气片接口漏水"})
    assert res.status_code == 302
    db.session.expire_all()
    t = db.session.scalar(select(Ticket))
    assert (t.source, t.household_id, t.caller_phone, t.priority) == ("walk_in", liu.id, "+8613940512234", "emergency")
    assert (t.state, t.crew_id) == (TicketState.ASSIGNED, city["crew"].id)   # routed like any repair
    assert t.respond_by is not None and t.finish_by is not None
    page = console.get(res.headers["Location"]).get_data(as_text=True)
    assert f"工单 {t.number} 已创建（来访），已派给和平维修一班" in page and "来访" in page


def test_a_refused_new_ticket_keeps_the_input_and_names_each_field_once(console, staff, city, db):
    console.login(staff(Role.AGENT).username)
    res = console.post("/console/tickets/new", {
        "source": "phone", "type": "repair", "category": "no_heat", "caller_name": "赵先生",
        "caller_phone": "12345", "address": "", "description": "家里暖气不热了"})
    page = res.get_data(as_text=True)
    assert res.status_code == 400
    assert 'class="topbar"' in page                       # in the layout, not a bare page
    assert "电话号码格式不正确" in page and 'data-field="caller_phone"' in page
    assert 'value="赵先生"' in page and 'value="12345"' in page and "家里暖气不热了" in page
    assert page.count("电话号码格式不正确") == 1
    res = console.post("/console/tickets/new", {"household_id": city["liu"].id, "source": "phone", "type": "repair",
                                                "category": "no_heat", "description": " "})
    page = res.get_data(as_text=True)
    assert res.status_code == 400 and 'data-field="description"' in page and "请填写问题描述" in page
    assert page.count("请填写问题描述") == 1 and 'name="household_id" value="%d"' % city["liu"].id in page
    assert db.session.scalar(select(func.count(Ticket.id))) == 0


def test_the_ticket_list_flags_and_counts_missed_response_and_finish_deadlines(console, staff, city, db, clock):
    liu, wang = city["liu"], city["wang"]
    late_response = create_ticket(Actor.system(), type="complaint", source="phone", description="没人接单",
                                  household=liu, caller_name="刘秀英", caller_phone=liu.owner_phone,
                                  now=utcnow() - timedelta(days=2))
    late_finish = create_ticket(Actor.system(), type="repair", source="phone", description="修了还没修好",
                                household=wang, now=utcnow() - timedelta(days=10))
    late_finish.state, late_finish.accepted_at = TicketState.IN_PROGRESS, utcnow() - timedelta(days=9)
    on_time = create_ticket(Actor.system(), type="repair", source="phone", description="刚报修", household=wang)
    db.session.commit()
    assert late_response.respond_by < utcnow() and on_time.respond_by > utcnow()
    console.login(staff(Role.AGENT).username)
    page = console.get("/console/tickets").get_data(as_text=True)
    assert "超时未响应 1" in page and "超时未完成 2" in page   # the complaint is past both
    row = page[page.index(f'data-number="{late_finish.number}"'):]
    row = row[:row.index("</tr>")]
    assert "超时未完成" in row and "超时未响应" not in row
    only = console.get("/console/tickets?overdue=response").get_data(as_text=True)
    assert late_response.number in only and late_finish.number not in only and on_time.number not in only
    finish = console.get("/console/tickets?overdue=finish").get_data(as_text=True)
    assert late_finish.number in finish and on_time.number not in finish
    assert "刘**" in page and "139****2234" in page and "刘秀英" not in page and "4051" not in page


def test_the_excel_export_holds_the_filtered_list_masked_and_is_logged(console, staff, city, db, clock):
    agent = staff(Role.AGENT, name="周客服")
    liu = city["liu"]
    for i in range(3):
        create_ticket(Actor.system(), type="inquiry", source="phone", description=f"咨询{i}", household=liu,
                      caller_name="刘秀英", caller_phone=liu.owner_phone)
    create_ticket(Actor.system(), type="repair", source="phone", description="漏水", category="leak",
                  household=city["wang"], now=utcnow() - timedelta(days=3))
    db.session.commit()
    console.login(agent.username)
    res = console.get("/console/tickets.xlsx?type=inquiry")
    assert res.status_code == 200 and "attachment" in res.headers["Content-Disposition"]
    ws = load_workbook(BytesIO(res.data)).active
    header = [c.value for c in ws[2]]
    assert header[:4] == ["工单号", "创建时间", "来源", "类型"] and "超时未响应" in header and "超时未完成" in header
    rows = [[c.value for c in r] for r in ws.iter_rows(min_row=3)]
    assert len(rows) == 3 and {r[3] for r in rows} == {"咨询"}
    assert {r[header.index("来电人")] for r in rows} == {"刘**"}
    assert {r[header.index("联系电话")] for r in rows} == {"139****2234"}
    assert ws.cell(row=3, column=2).number_format == "yyyy-mm-dd hh:mm"
    assert ws.column_dimensions["I"].width >= 30
    assert "类型：咨询" in ws["A1"].value
    late = load_workbook(BytesIO(console.get("/console/tickets.xlsx?overdue=finish").data)).active
    late_rows = [[c.value for c in r] for r in late.iter_rows(min_row=3)]
    assert len(late_rows) == 1 and late_rows[0][header.index("超时未完成")] == "是"
    (first, second) = _accesses(db)
    assert (first.action, first.staff_name, first.rows) == (AccessAction.EXPORT_TICKETS, "周客服", 3)
    assert "类型：咨询" in first.subject and second.rows == 1


def test_admin_pages_are_only_for_admins(console, staff, client):
    agent = staff(Role.AGENT)
    console.login(agent.username)
    page = console.get("/console/tickets").get_data(as_text=True)
    assert 'id="admin-nav"' not in page and "访问记录" not in page and "时限标准" not in page
    assert "疑似停热" in page and "新建工单" in page and "客户查询" in page
    for url in ("/console/staff", "/console/admin/sla", "/console/admin/evidence", "/console/admin/settings",
                "/console/admin/access-log", "/console/templates"):
        assert console.get(url).status_code == 403, url
    assert console.post("/console/admin/settings", {"rate": "10"}).status_code == 403


def test_an_admin_sees_the_admin_menu_and_every_admin_page(console, staff):
    console.login(staff(Role.ADMIN).username)
    page = console.get("/console/tickets").get_data(as_text=True)
    assert 'id="admin-nav"' in page
    for url, text in (("/console/staff", "员工"), ("/console/admin/sla", "时限标准"), ("/console/admin/evidence", "取证规则"),
                      ("/console/admin/settings", "群发速度"), ("/console/admin/access-log", "个人信息访问记录"),
                      ("/console/templates", "消息模板")):
        res = console.get(url)
        assert res.status_code == 200 and text in res.get_data(as_text=True), url


def test_the_access_log_is_filtered_and_paged_for_admins(console, staff, city, db, clock):
    agent = staff(Role.AGENT, name="李客服", username="li_agent")
    other = staff(Role.AGENT, name="王客服", username="wang_agent")
    from app.services import privacy

    for i in range(55):
        privacy.record_access(agent, AccessAction.VIEW_CUSTOMER, household=city["liu"], subject="户号 10100006",
                              now=utcnow() - timedelta(minutes=i))
    privacy.record_access(other, AccessAction.VIEW_CUSTOMER, household=city["wang"], subject="户号 10100007",
                          now=utcnow() - timedelta(days=5))
    privacy.record_access(other, AccessAction.EXPORT_TICKETS, subject="工单列表（未办结（默认））", rows=12)
    db.session.commit()
    console.login(staff(Role.ADMIN).username)
    page = console.get("/console/admin/access-log").get_data(as_text=True)
    assert "共 57 条" in page and page.count('class="access-row"') == 50 and "下一页" in page
    assert console.get("/console/admin/access-log?page=2").get_data(as_text=True).count('class="access-row"') == 7
    page = console.get("/console/admin/access-log?staff=wang_agent").get_data(as_text=True)
    assert "共 2 条" in page and "导出工单列表" in page
    assert "共 1 条" in console.get("/console/admin/access-log?account_no=10100007").get_data(as_text=True)
    day = (utcnow() - timedelta(days=5)).astimezone().date().isoformat()
    page = console.get(f"/console/admin/access-log?date_from={day}&date_to={day}&action=view_customer")
    assert "户号 10100007" in page.get_data(as_text=True)
    bad = console.get("/console/admin/access-log?date_from=2026-13-01").get_data(as_text=True)
    assert "开始日期格式应为" in bad and 'data-field="date_from"' in bad
