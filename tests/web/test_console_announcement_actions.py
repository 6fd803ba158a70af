"""Console 公告: start, pause, resume and withdraw an announcement from its page (each through
app.services.announcements), and an unknown action is a 404 that changes nothing."""
from __future__ import annotations

from app.extensions import db as _db
from app.models import Announcement, AnnouncementStatus, Role
from app.services import announcements


def _status(announcement_id):
    _db.session.expire_all()
    return _db.session.get(Announcement, announcement_id).status


def test_staff_start_pause_resume_and_withdraw_an_announcement(console, staff, db):
    row = announcements.compose_announcement(title="停水通知", body="明日停水")
    db.session.commit()
    console.login(staff(Role.AGENT).username)
    url = f"/console/announcements/{row.id}"

    assert console.post(f"{url}/launch").status_code == 404
    assert _status(row.id) == AnnouncementStatus.DRAFT
    for action, status in (("start", AnnouncementStatus.SENDING), ("pause", AnnouncementStatus.PAUSED),
                           ("resume", AnnouncementStatus.SENDING)):
        answer = console.post(f"{url}/{action}")
        assert answer.status_code == 302, (action, answer.status_code)
        assert _status(row.id) == status, action
    assert console.post(f"{url}/start").status_code in (302, 409)   # already sending: refused, unchanged
    assert _status(row.id) == AnnouncementStatus.SENDING


def test_a_draft_can_be_withdrawn(console, staff, db):
    row = announcements.compose_announcement(title="停水通知", body="明日停水")
    db.session.commit()
    console.login(staff(Role.AGENT).username)
    assert console.post(f"/console/announcements/{row.id}/cancel").status_code == 302
    assert _status(row.id) == AnnouncementStatus.CANCELLED
