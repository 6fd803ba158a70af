"""Console and dashboard sessions live on the server: signing out, a password reset or a
deactivation ends them, and a copied session cookie opens nothing afterwards."""
from __future__ import annotations

from datetime import timedelta

from app.models import Role
from tests.conftest import TEST_NOW
from tests.web.conftest import Console

NEW_PASSWORD = "winter2026heat"


def _cookie(console: Console) -> str:
    return console.client.get_cookie("session").value


def _copy(app, cookie: str):
    """Another browser holding a copy of the session cookie."""
    other = app.test_client()
    other.set_cookie("session", cookie)
    return other


def _signed_in(client, url="/console/tickets") -> bool:
    res = client.get(url)
    assert res.status_code in (200, 302), res.status_code
    return res.status_code == 200


def test_signing_out_ends_the_session_on_the_server(app, staff):
    agent = staff(Role.AGENT)
    console = Console(app.test_client())
    console.login(agent.username)
    copied = _cookie(console)
    assert _signed_in(_copy(app, copied))
    assert console.post("/console/logout").status_code == 302
    assert not _signed_in(console.client)
    assert not _signed_in(_copy(app, copied))   # the old cookie, replayed, opens nothing


def test_signing_out_of_the_dashboard_ends_the_session_too(app, staff):
    leader = staff(Role.LEADER)
    console = Console(app.test_client())
    console.login(leader.username)
    copied = _cookie(console)
    assert _signed_in(_copy(app, copied), "/dashboard/")
    assert console.post("/dashboard/logout").status_code == 200
    assert not _signed_in(_copy(app, copied), "/dashboard/")


def test_signing_in_again_ends_the_browsers_previous_session(app, staff):
    agent = staff(Role.AGENT)
    console = Console(app.test_client())
    console.login(agent.username)
    first = _cookie(console)
    console.login(agent.username)
    assert _cookie(console) != first and _signed_in(console.client)
    assert not _signed_in(_copy(app, first))


def test_a_password_reset_ends_every_session_of_that_person(app, staff, console):
    admin = staff(Role.ADMIN)
    console.login(admin.username)
    agent = staff(Role.AGENT)
    office, home = Console(app.test_client()), Console(app.test_client())
    office.login(agent.username)
    home.login(agent.username)
    assert console.post(f"/console/staff/{agent.id}/password", {"password": NEW_PASSWORD}).status_code == 302
    assert not _signed_in(office.client) and not _signed_in(home.client)
    assert _signed_in(console.client)            # the admin's own session goes on
    assert office.login(agent.username, NEW_PASSWORD).status_code == 302 and _signed_in(office.client)


def test_a_session_ends_by_itself_after_seven_days(app, staff, clock):
    agent = staff(Role.AGENT)
    console = Console(app.test_client())
    console.login(agent.username)
    clock.travel_to(TEST_NOW + timedelta(days=6, hours=23))
    assert _signed_in(console.client)
    clock.travel_to(TEST_NOW + timedelta(days=7, minutes=1))
    assert not _signed_in(console.client)


def test_the_session_cookie_is_http_only_and_same_site(app, staff):
    agent = staff(Role.AGENT)
    console = Console(app.test_client())
    page = console.client.get("/console/login")
    cookie = page.headers.get("Set-Cookie") or ""
    answer = console.login(agent.username)
    cookie = answer.headers.get("Set-Cookie") or cookie
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
