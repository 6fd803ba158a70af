"""住户 in the console over real HTTP (the app on a real port, ``live_app``): the same search as
新建工单, filters (区域/小区, 换热站, 状态, 欠费, 已绑定微信), pages, masking, empty states, the
Excel export in the import template (the same rows as ``flask export-households``, importing
back), who may export and the access log; one browser run at 1920 px."""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from io import BytesIO

import pytest
import requests
from openpyxl import load_workbook
from sqlalchemy import select

from app.imports.households import TEMPLATE_HEADER, import_households
from app.models import AccessAction, Bill, BillStatus, Household, HouseholdStatus, PersonalDataAccess, Role
from app.services import customers
from tests.web.conftest import PASSWORD, browser_login, csrf_from, screenshot

WALL = {"width": 1920, "height": 1080}


class HttpConsole:
    """A staff member signed in to the console of the live app, through requests."""

    def __init__(self, base: str):
        self.base = base
        self.http = requests.Session()

    def login(self, username: str) -> HttpConsole:
        page = self.http.get(f"{self.base}/console/login", timeout=30).text
        res = self.http.post(f"{self.base}/console/login", data={
            "username": username, "password": PASSWORD, "csrf_token": csrf_from(page)},
            allow_redirects=False, timeout=30)
        assert res.status_code == 302, res.text
        return self

    def get(self, path: str, **params) -> requests.Response:
        return self.http.get(f"{self.base}{path}", params=params, timeout=60)

    def page(self, **params) -> str:
        res = self.get("/console/households", **params)
        assert res.status_code == 200, res.text
        return res.text


def accounts(html: str) -> list[str]:
    return re.findall(r'class="household-row" data-account="([^"]+)"', html)


def total(html: str) -> int:
    return int(re.search(r'id="household-total">(\d+)<', html).group(1))


@pytest.fixture()
def as_staff(live_app, staff):
    def sign_in(role=Role.AGENT, **kw) -> HttpConsole:
        return HttpConsole(live_app.url).login(staff(role, **kw).username)
    return sign_in


@pytest.fixture()
def town(db, clock, make_area, make_household, make_season, make_wechat_user):
    """Two districts, three communities, two stations; arrears past due, a bill not yet due,
    a 报停 and a 销户 household, bindings."""
    _, xfl, east = make_area(district="和平区", community="幸福里", station="东区换热站")
    _, jsl, west = make_area(district="和平区", community="建设里", station="西区换热站")
    _, hxy, _ = make_area(district="沈河区", community="和谐苑")
    liu = make_household(community=xfl, owner_name="刘秀英", owner_phone="13940512234", building="3", unit="2",
                         room="501", account_no="10100006")
    wang = make_household(community=xfl, owner_name="王建国", owner_phone="024-23456789", building="5", unit="1",
                          room="302", account_no="10100007", status=HouseholdStatus.SUSPENDED)
    zhao = make_household(community=jsl, owner_name="赵丽", owner_phone="13600002222", building="1", unit="1",
                          room="101", account_no="10200001")
    sun = make_household(community=jsl, station=east, owner_name="孙强", owner_phone="13600003333", building="2",
                         unit="1", room="201", account_no="10200002", status=HouseholdStatus.CLOSED)
    liu2 = make_household(community=hxy, owner_name="刘德华", owner_phone="13600001111", building="8", unit="3",
                          room="602", account_no="20200001")
    past = make_season(code="2025-2026", due_on=date(2025, 11, 30), starts_on=date(2025, 11, 15),
                       ends_on=date(2026, 3, 15))
    current = make_season()   # due 2026-11-30: after the clock's today, so not arrears yet
    for h, season, paid in ((liu, past, 0), (zhao, past, 50000), (sun, past, 214800), (liu2, current, 0)):
        db.session.add(Bill(household_id=h.id, season_id=season.id, area_m2=h.area_m2, unit_price_fen=2400,
                            amount_fen=214800, paid_fen=paid,
                            status=BillStatus.PAID if paid == 214800 else BillStatus.PARTIAL if paid else BillStatus.UNPAID))
    make_wechat_user(household=liu)
    make_wechat_user(household=liu)
    make_wechat_user(household=zhao)
    db.session.commit()
    return {"xfl": xfl, "jsl": jsl, "hxy": hxy, "east": east, "west": west, "liu": liu, "wang": wang, "zhao": zhao,
            "sun": sun, "liu2": liu2}


def test_the_search_is_the_new_ticket_search_and_the_list_is_masked(as_staff, town):
    agent = as_staff(Role.AGENT)
    for query in ("10100006", "1010", "139 4051 2234", "2234", "(024) 2345-6789", "刘", "幸福里3号楼2单元501", "１０１００００７"):
        html = agent.page(q=query)
        expected = [h.account_no for h in customers.search_households(query)]
        assert expected and accounts(html) == expected, query
    html = agent.page(q="刘")
    assert accounts(html) == ["10100006", "20200001"]
    assert "刘**" in html and "139****2234" in html                     # masked, as in every list
    assert "刘秀英" not in html and "13940512234" not in html and "139 4051 2234" not in html
    assert f'href="/console/customers/{town["liu"].id}"' in html        # the row opens the customer page


def test_filters_by_area_station_status_arrears_and_wechat_binding(as_staff, town):
    agent = as_staff(Role.AGENT)
    t = town
    cases = [
        ({}, ["10100006", "10100007", "10200001", "10200002", "20200001"]),
        ({"district_id": t["xfl"].district_id}, ["10100006", "10100007", "10200001", "10200002"]),
        ({"district_id": t["xfl"].district_id, "community_id": t["jsl"].id}, ["10200001", "10200002"]),
        ({"station_id": t["east"].id}, ["10100006", "10100007", "10200002"]),   # 孙强 differs from his community
        ({"status": "active"}, ["10100006", "10200001", "20200001"]),
        ({"status": "suspended"}, ["10100007"]),
        ({"arrears": "yes"}, ["10100006", "10200001"]),       # past due; 20200001's bill is not due yet
        ({"arrears": "no"}, ["10100007", "10200002", "20200001"]),
        ({"bound": "yes"}, ["10100006", "10200001"]),
        ({"bound": "no"}, ["10100007", "10200002", "20200001"]),
        ({"arrears": "yes", "bound": "yes", "q": "刘"}, ["10100006"]),
    ]
    for params, expected in cases:
        html = agent.page(**params)
        assert accounts(html) == expected, params
        assert total(html) == len(expected), params
    html = agent.page(arrears="yes")
    rows = dict(re.findall(r'data-account="([^"]+)">(.*?)</tr>', html, re.S))
    assert "2,148.00 元" in rows["10100006"] and "1,648.00 元" in rows["10200001"]   # past-due principal
    assert "已绑定 2 人" in rows["10100006"] and "已绑定 2 人" not in rows["10200001"]


def test_a_filter_outside_its_choices_is_shown_next_to_the_field(as_staff, town):
    agent = as_staff(Role.AGENT)
    html = agent.page(status="gone", bound="maybe")
    assert 'data-field="status"' in html and 'data-field="bound"' in html
    assert accounts(html) == [] and "筛选条件有误" in html


def test_pages_of_twenty_by_account_number_keep_the_filters(db, as_staff, make_area, make_household):
    _, community, _ = make_area(district="和平区", community="长青园")
    _, other, _ = make_area(district="沈河区", community="别处")
    for n in range(45):
        make_household(community=community, account_no=f"3{n:07d}", building="1", unit="1", room=f"{n + 101}")
    make_household(community=other, account_no="30000099")
    db.session.commit()
    agent = as_staff(Role.AGENT)
    first = agent.page(community_id=community.id)
    assert total(first) == 45 and accounts(first) == [f"3{n:07d}" for n in range(20)]
    assert 'id="page-at">1 / 3<' in first and "上一页" not in first
    next_link = re.search(r'href="([^"]+)" id="page-next"', first).group(1).replace("&amp;", "&")
    assert f"community_id={community.id}" in next_link
    third = agent.page(community_id=community.id, page=3)
    assert accounts(third) == [f"3{n:07d}" for n in range(40, 45)] and "下一页" not in third
    assert accounts(agent.page(community_id=community.id, page=99)) == accounts(third)   # past the end: the last


def test_empty_states_say_why_the_list_is_empty(db, as_staff, make_area):
    agent = as_staff(Role.AGENT)
    assert "还没有住户" in agent.page() and total(agent.page()) == 0
    html = agent.page(q="不存在的人")
    assert "没有符合条件的住户" in html and "还没有住户" not in html


def _sheet(content: bytes) -> list[tuple]:
    return list(load_workbook(BytesIO(content), read_only=True).active.values)


def test_an_admins_export_is_the_cli_file_for_the_filter_and_imports_back(db, as_staff, town, runner, tmp_path):
    admin = as_staff(Role.ADMIN, name="系统管理员")
    html = admin.page(district_id=town["xfl"].district_id, arrears="no")
    assert "导出Excel（2 户）" in html                                  # the count before downloading
    res = admin.get("/console/households.xlsx", district_id=town["xfl"].district_id, arrears="no")
    assert res.status_code == 200 and res.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in res.headers["Content-Disposition"] and res.headers["X-Row-Count"] == "2"
    sheet = _sheet(res.content)

    cli_file = tmp_path / "all.xlsx"
    assert runner.invoke(args=["export-households", str(cli_file)]).exit_code == 0
    everyone = _sheet(cli_file.read_bytes())
    assert sheet[0] == everyone[0] == TEMPLATE_HEADER
    assert sheet[1:] == [row for row in everyone[1:] if row[0] in ("10100007", "10200002")]
    assert sheet[1] == ("10100007", "和平区", "幸福里", "5", "1", "302", "东区换热站", 89.5, "王建国", "024-2345 6789",
                        "报停")

    # Round trip: a household edited after the export goes back to what the file holds.
    db.session.expire_all()
    wang = db.session.scalar(select(Household).where(Household.account_no == "10100007"))
    wang.owner_name, wang.status = "王某", HouseholdStatus.ACTIVE
    db.session.commit()
    exported = tmp_path / "console.xlsx"
    exported.write_bytes(res.content)
    result = import_households(exported)
    assert (result.errors, result.created, result.updated, result.unchanged) == ([], 0, 1, 1)
    db.session.commit()
    db.session.expire_all()
    wang = db.session.scalar(select(Household).where(Household.account_no == "10100007"))
    assert (wang.owner_name, wang.status) == ("王建国", HouseholdStatus.SUSPENDED)

    logged = db.session.scalars(select(PersonalDataAccess)).all()
    assert [(a.action, a.staff_name, a.rows, a.detail) for a in logged] == [
        (AccessAction.EXPORT_HOUSEHOLDS, "系统管理员", 2, {"district_id": str(town["xfl"].district_id), "arrears": "no"})]
    assert logged[0].subject == "住户名单（区域：和平区；欠费：否）"
    log_page = admin.get("/console/admin/access-log").text
    assert "导出住户名单" in log_page and "住户名单（区域：和平区；欠费：否）" in log_page


def test_agents_and_leaders_see_the_list_but_may_not_export(db, as_staff, town):
    for role in (Role.AGENT, Role.LEADER):
        person = as_staff(role)
        html = person.page()
        assert total(html) == 5 and 'id="export-households"' not in html and "仅管理员可导出" in html
        res = person.get("/console/households.xlsx")
        assert res.status_code == 403 and "openxmlformats" not in res.headers.get("Content-Type", "")
    assert db.session.scalars(select(PersonalDataAccess)).all() == []


def test_a_signed_out_visitor_is_sent_to_sign_in(live_app, town):
    res = requests.get(f"{live_app.url}/console/households.xlsx", allow_redirects=False, timeout=30)
    assert res.status_code == 302 and "/console/login" in res.headers["Location"]


def test_a_bad_filter_is_refused_rather_than_exporting_everyone(db, as_staff, town):
    admin = as_staff(Role.ADMIN)
    res = admin.get("/console/households.xlsx", status="gone")
    assert res.status_code in (400, 422) and "openxmlformats" not in res.headers.get("Content-Type", "")
    assert db.session.scalars(select(PersonalDataAccess)).all() == []


def test_an_admin_filters_counts_and_downloads_at_1920(app, db, live_app, staff, open_page, town):
    admin = staff(Role.ADMIN, name="系统管理员")
    page = open_page(WALL)
    browser_login(page, live_app.url, admin.username)
    page.click("#nav-households")
    page.wait_for_selector("#household-table")
    assert page.text_content("#household-total") == "5"
    page.select_option("#arrears", "yes")
    page.click("#household-filters button[type=submit]")
    page.wait_for_selector("#household-total:text('2')")
    assert page.eval_on_selector_all(".household-row", "rows => rows.map(r => r.dataset.account)") == \
        ["10100006", "10200001"]
    assert "刘**" in page.text_content("#household-table")
    page.click("#filter-help summary")
    assert "已过缴费截止日" in page.text_content("#filter-help")
    screenshot(page, "console-households-1920")
    assert page.text_content("#export-households") == "导出Excel（2 户）"
    with page.expect_download() as info:
        page.click("#export-households")
    content = open(info.value.path(), "rb").read()
    assert [row[0] for row in _sheet(content)[1:]] == ["10100006", "10200001"]
    page.click(".household-row[data-account='10100006'] a")
    page.wait_for_selector("#customer-facts")
    assert page.text_content("#owner-name") == "刘秀英"


def test_more_households_than_the_web_export_allows_are_refused_with_the_cli_named(db, as_staff, town, monkeypatch):
    from app.web import console_households
    monkeypatch.setattr(console_households, "EXPORT_MAX_ROWS", 4)
    admin = as_staff(Role.ADMIN)
    html = admin.page()
    assert total(html) == 5 and 'id="export-households"' not in html and 'id="export-too-many"' in html
    res = admin.get("/console/households.xlsx")
    assert res.status_code in (400, 422) and "flask export-households" in res.text
    assert "openxmlformats" not in res.headers.get("Content-Type", "")
    res = admin.get("/console/households.xlsx", status="active")   # narrowed: 3 households
    assert res.status_code == 200 and res.headers["X-Row-Count"] == "3"
    assert db.session.scalars(select(PersonalDataAccess.rows)).all() == [3]
