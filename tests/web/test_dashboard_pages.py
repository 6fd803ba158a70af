"""Dashboard pages over HTTP: the signed-in name and logout, list items open the ticket with
its timeline, the wall mode, ``?mode=wall``."""
from __future__ import annotations

from app.models import Role, TicketState
from app.services.actors import Actor
from app.services.tickets import create_ticket


def _leader(console, staff, name="王涛"):
    leader = staff(Role.LEADER, name=name)
    assert console.login(leader.username).status_code == 302
    return leader


def test_the_dashboard_shows_who_is_signed_in_and_a_logout(console, staff):
    _leader(console, staff)
    html = console.get("/dashboard/").get_data(as_text=True)
    assert 'id="signed-in-as">王涛<' in html and 'id="logout"' in html
    assert console.post("/dashboard/logout").status_code == 200
    assert console.get("/dashboard/").status_code == 302  # signed out: back to sign-in


def test_a_list_item_opens_the_ticket_with_its_timeline(console, staff, db, make_household):
    _leader(console, staff)
    agent = staff(Role.AGENT, name="客服小周")
    household = make_household(owner_name="赵敏", owner_phone="13912345678")
    t = create_ticket(Actor.of_staff(agent), type="complaint", source="staff", category="service",
                      description="维修师傅态度不好", household=household, caller_phone="13912345678",
                      caller_name="赵敏")
    db.session.commit()
    listed = console.get("/dashboard/list/complaints").get_data(as_text=True)
    assert f'href="/dashboard/tickets/{t.id}"' in listed
    page = console.get(f"/dashboard/tickets/{t.id}").get_data(as_text=True)
    assert t.number in page and "维修师傅态度不好" in page and 'id="timeline"' in page
    assert "客服小周" in page                   # who created it, in the timeline
    assert "139****5678" in page and "13912345678" not in page and "赵*" in page   # masked
    assert console.get("/dashboard/tickets/999999").status_code == 404


def test_the_wall_mode_renders_big_figures_and_rotating_panels(console, staff):
    _leader(console, staff)
    res = console.get("/dashboard/?mode=wall")
    assert res.status_code == 302 and res.headers["Location"].endswith("/dashboard/wall")
    html = console.get("/dashboard/wall").get_data(as_text=True)
    assert 'class="rotor"' in html and html.count('class="slide"') >= 4
    assert 'mode: "wall"' in html and "rotateSeconds: 15" in html
    assert "/dashboard/stream" in html          # the same live stream as the dashboard


def test_an_agent_cannot_open_the_wall_or_a_ticket_page(console, staff):
    agent = staff(Role.AGENT)
    console.login(agent.username)
    assert console.get("/dashboard/wall").status_code == 403
    assert console.get("/dashboard/tickets/1").status_code == 403


def test_state_labels_are_chinese_on_the_ticket_page(console, staff, db, make_household):
    _leader(console, staff)
    agent = staff(Role.AGENT)
    t = create_ticket(Actor.of_staff(agent), type="repair", source="staff", category="no_heat",
                      description="卧室不热", household=make_household())
    db.session.commit()
    page = console.get(f"/dashboard/tickets/{t.id}").get_data(as_text=True)
    assert TicketState.LABELS[t.state] in page and "响应时限" in page and "办结时限" in page
