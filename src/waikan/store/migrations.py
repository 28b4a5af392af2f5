"""Append-only list of migrations; applied names are recorded in ``migrations``.

Never edit or reorder an entry that has shipped: add a new one. A migration
that adds a column checks for it first, so a fresh database (whose first
migration already creates the current tables) and an old one converge.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select

from waikan.store import schema

Migration = Callable[[Connection], None]


def m001_initial(conn: Connection) -> None:
    schema.metadata.create_all(conn, tables=list(schema.V1_TABLES))


MIGRATIONS: tuple[tuple[str, Migration], ...] = (("m001_initial", m001_initial),)


def migrate(conn: Connection) -> list[str]:
    """Apply pending migrations inside the caller's transaction; return their names."""
    schema.migrations.create(conn, checkfirst=True)
    done = set(conn.scalars(select(schema.migrations.c.name)))
    applied = []
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        fn(conn)
        conn.execute(insert(schema.migrations).values(name=name, applied_at=datetime.now(UTC)))
        applied.append(name)
    return applied
