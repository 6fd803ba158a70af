"""Console sign-in limits (app/services/staff_auth.py on app/services/attempts.py): per
client address, counted exactly under concurrency; strangers cannot lock a staff member out."""
from __future__ import annotations

import threading

import requests

from app.models import Role
from tests.web.conftest import PASSWORD, Console, csrf_from


def _client(app, address: str) -> Console:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return Console(client)


def test_forty_concurrent_wrong_passwords_from_one_address_are_checked_eight_times(staff, live_app):
    username = staff(Role.AGENT).username
    sessions = []
    for _ in range(40):
        session = requests.Session()
        page = session.get(live_app.url + "/console/login", timeout=30).text
        sessions.append((session, csrf_from(page)))
    start = threading.Barrier(40, timeout=60)
    statuses, lock = [], threading.Lock()

    def sign_in(session, token):
        start.wait()
        answer = session.post(live_app.url + "/console/login", allow_redirects=False, timeout=60, data={
            "username": username, "password": "wrong-password", "csrf_token": token})
        with lock:
            statuses.append(answer.status_code)

    threads = [threading.Thread(target=sign_in, args=pair, daemon=True) for pair in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(statuses) == [401] * 8 + [429] * 32


def test_a_stranger_cannot_lock_a_staff_member_out(app, staff):
    agent = staff(Role.AGENT)
    stranger = _client(app, "203.0.113.66")
    answers = [stranger.login(agent.username, f"guess{i}").status_code for i in range(20)]
    assert answers == [401] * 8 + [429] * 12
    # The per-address limit still stops the stranger, even with the right password ...
    assert stranger.login(agent.username).status_code == 429
    # ... while the staff member signs in from their own computer at once.
    assert _client(app, "198.51.100.7").login(agent.username).status_code == 302


def test_a_forged_forwarded_for_header_does_not_reset_the_strangers_limit(app, staff):
    agent = staff(Role.AGENT)
    stranger = _client(app, "203.0.113.67")
    answers = []
    for i in range(10):
        stranger.client.environ_base["HTTP_X_FORWARDED_FOR"] = f"10.0.0.{i}"
        answers.append(stranger.login(agent.username, "guess").status_code)
    assert answers == [401] * 8 + [429] * 2


def test_after_many_failures_a_username_slows_down_those_who_failed_only(app, staff):
    agent = staff(Role.AGENT)
    for i in range(8):                            # eight guessers, one wrong password each
        assert _client(app, f"203.0.113.{i + 1}").login(agent.username, "guess").status_code == 401
    again = _client(app, "203.0.113.1").login(agent.username)
    assert again.status_code == 429 and "该账号近期登录失败次数过多" in again.get_data(as_text=True)
    assert _client(app, "198.51.100.8").login(agent.username).status_code == 302


def test_the_staff_members_own_typos_are_forgiven_when_they_sign_in(app, staff):
    agent = staff(Role.AGENT)
    office = _client(app, "198.51.100.9")
    for _ in range(7):
        assert office.login(agent.username, "typo").status_code == 401
    assert office.login(agent.username, PASSWORD).status_code == 302
    for _ in range(7):                            # a fresh budget: the typos were forgiven
        assert _client(app, "198.51.100.9").login(agent.username, "typo").status_code == 401
