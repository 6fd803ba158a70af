"""Forget ended sessions — periodic.

Mini-program login families and console sessions that ended (signed out, revoked, past their
end) more than ``app.services.sessions.PURGE_AFTER`` ago are deleted; until then they stay
for inquiries (who was signed in, why it ended). Safe to run twice.
"""
from __future__ import annotations

import logging

from app.extensions import db
from app.services.sessions import purge_ended_sessions

log = logging.getLogger(__name__)


def purge_sessions() -> dict[str, int]:
    counts = purge_ended_sessions()
    db.session.commit()
    if any(counts.values()):
        log.info("sessions: purged %s", counts)
    return counts
