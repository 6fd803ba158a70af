"""Small database helpers shared by services (PostgreSQL in production, SQLite for the demo)."""
from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite

from app.extensions import db

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def insert_or_skip(table, *, conflict: list[str]):
    """``INSERT ... ON CONFLICT (conflict) DO NOTHING`` for the current database.

    Deduplicating at the boundary with a unique constraint (DESIGN §5) instead of a
    read-then-write; add ``.values(...)`` and ``.returning(...)`` to learn what was inserted.
    """
    dialect = db.engine.dialect.name
    if dialect not in _INSERTS:  # pragma: no cover - we ship PostgreSQL and SQLite only
        raise NotImplementedError(f"unsupported database {dialect}")
    return _INSERTS[dialect](table).on_conflict_do_nothing(index_elements=conflict)


def insert_or_update(table, *, conflict: list[str], set_: dict):
    """``INSERT ... ON CONFLICT (conflict) DO UPDATE SET set_`` — one statement (and one row
    lock) where insert-if-missing then update would take two."""
    dialect = db.engine.dialect.name
    if dialect not in _INSERTS:  # pragma: no cover
        raise NotImplementedError(f"unsupported database {dialect}")
    return _INSERTS[dialect](table).on_conflict_do_update(index_elements=conflict, set_=set_)
