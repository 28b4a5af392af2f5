"""A named lock held until the caller's transaction ends, for writers in many processes."""

from __future__ import annotations

import zlib

from sqlalchemy import Connection, delete, false, text

from waikan.store import schema

__all__ = ["store_lock"]

LOCKS = 9  # advisory lock namespace (queue tasks use 1-5, host slots 7, the leader 8)


def store_lock(c: Connection, name: str) -> None:
    """Serialize writers on ``name`` until ``c``'s transaction ends: a transaction-level
    advisory lock on PostgreSQL (no table needed), the database write lock on SQLite
    (taken by a write that changes nothing; others wait for it, busy_timeout)."""
    if c.dialect.name == "postgresql":
        key = zlib.crc32(name.encode()) - 2**31
        c.execute(text("SELECT pg_advisory_xact_lock(:n, :k)"), {"n": LOCKS, "k": key})
    else:
        c.execute(delete(schema.migrations).where(false()))
