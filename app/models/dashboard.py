"""Indexes the leader dashboard reads through (migration 0006_web).

Declared here, against the ticket table, so the metadata matches the migrated schema: each
dashboard figure is an index range over a recent time window or over the open backlog,
never a scan of the whole history (app/services/metrics.py, bench/dashboard).
"""
from __future__ import annotations

from sqlalchemy import Index

from app.models.ticket import Ticket

DASHBOARD_INDEXES = (
    Index("ix_ticket_updated_at", Ticket.updated_at),    # change stamp: max(updated_at)
    Index("ix_ticket_accepted_at", Ticket.accepted_at),  # first response in the window
    Index("ix_ticket_replied_at", Ticket.replied_at),    # repair time in the window
    Index("ix_ticket_rated_at", Ticket.rated_at),        # satisfaction in the window
    # The open backlog (open, overdue, emergency, each crew's load) read from the index alone:
    # SQLite assumes the five open states hold 5/7 of the table and would otherwise scan it.
    Index("ix_ticket_backlog", Ticket.state, Ticket.finish_by, Ticket.priority, Ticket.crew_id),
)
