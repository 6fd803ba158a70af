"""Refused console forms (issue 17): every field's message in one round, and what was just
picked kept."""
from __future__ import annotations

import html
import json

from sqlalchemy import func, select

from app.models import Outage, OutageArea, OutboxMessage, Role, Ticket


def test_a_new_ticket_names_every_wrong_field_at_once(console, staff, db):
    """The desk's own checks (household, source, number) and the ticket service's (type,
    category, description) in one answer — not one round after the other."""
    console.login(staff(Role.AGENT).username)
    res = console.post("/console/tickets/new", {
        "source": "fax", "type": "wish", "category": "no_heat", "caller_name": "赵先生",
        "caller_phone": "12345", "address": "", "description": "  "})
    page = res.get_data(as_text=True)
    assert res.status_code == 400 and 'class="topbar"' in page
    for field in ("source", "caller_phone", "type", "description"):
        assert f'data-field="{field}"' in page, field
    assert "请选择来源：电话或来访" in page and "工单类型不正确" in page and "请填写问题描述" in page
    assert page.count("请填写问题描述") == 1 and 'value="赵先生"' in page
    assert db.session.scalar(select(func.count(Ticket.id))) == 0


def test_a_refused_outage_update_keeps_the_areas_just_picked(console, staff, db, make_area, make_household):
    _, community, _ = make_area()
    make_household(community=community, building="3")
    make_household(community=community, building="4")
    console.login(staff(Role.AGENT).username)
    res = console.post("/console/outages", {
        "title": "3号楼抢修停热", "kind": "unplanned", "reason": "管道爆裂", "expected_end_at": "2030-01-01T18:00",
        "areas": json.dumps([{"community_id": community.id, "building": "3"}])})
    assert res.status_code == 302
    outage = db.session.scalar(select(Outage))
    picked = [{"station_id": None, "community_id": community.id, "building": "3"},
              {"station_id": None, "community_id": community.id, "building": "4"}]
    res = console.post(f"/console/outages/{outage.id}", {"reason": "扩大范围", "expected_end_at": "2000-01-01T08:00",
                                                        "areas": json.dumps(picked)})
    page = res.get_data(as_text=True)
    assert res.status_code == 400 and 'data-field="expected_end_at"' in page
    start = page.index('name="areas" value=\'') + len('name="areas" value=\'')
    shown = json.loads(html.unescape(page[start:page.index("'", start)]))
    assert sorted(a["building"] for a in shown) == ["3", "4"]
    db.session.expire_all()
    assert [a.building for a in db.session.scalars(select(OutageArea))] == ["3"]  # nothing changed
    assert db.session.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.topic == "notify.outage")) == 1
    # Opened again (not a refusal), the page shows the saved areas.
    page = console.get(f"/console/outages/{outage.id}").get_data(as_text=True)
    start = page.index('name="areas" value=\'') + len('name="areas" value=\'')
    assert [a["building"] for a in json.loads(html.unescape(page[start:page.index("'", start)]))] == ["3"]
