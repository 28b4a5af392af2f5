"""Per-host politeness shared by every worker, kept in PostgreSQL.

One worker process's :class:`~waikan.fetch.Fetcher` only knows its own
requests; with N workers each honouring ``fetch.per_host`` and the host's
delay alone, a site would see N times the rate. :class:`SharedTurns` is the
fetcher's turn hook on workers: every request (each redirect hop, retry,
robots.txt and feed poll, keyed by its own host) first takes one of
``per_host`` advisory-lock slots for its host, then books its start in
``host_turns`` under a row lock, so starts on one host are never closer than
the delay the previous request asked for (``fetch.host_delay``, or the
robots.txt Crawl-delay when longer), across all workers together.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.engine import Connection

from waikan.store import Store

__all__ = ["SharedTurns"]

SLOTS = 7  # advisory lock namespace of host slots
WAIT = 0.02


def _key(host: str, slot: int) -> int:
    # A signed 32-bit key from the host and slot (pg_try_advisory_lock(int, int)).
    return zlib.crc32(f"{host}#{slot}".encode()) - 2**31


class SharedTurns:
    """``Fetcher(settings, turn=SharedTurns(store, per_host))``: host turns for all workers."""

    def __init__(self, store: Store, per_host: int) -> None:
        self.store = store
        self.per_host = max(1, per_host)

    @asynccontextmanager
    async def __call__(self, host: str, delay: float) -> AsyncIterator[None]:
        # The database calls block, so they run in a thread: other requests of this
        # process (a poll's, a fetch's robots.txt) go on meanwhile.
        conn = await asyncio.to_thread(self.store.engine.connect)
        try:
            while not await asyncio.to_thread(self._try_slot, conn, host):
                await asyncio.sleep(WAIT)
            wait = await asyncio.to_thread(_reserve, conn, host, delay)
            if wait > 0:
                await asyncio.sleep(wait)
            yield
        finally:
            # Session locks outlive a pooled connection's return: free them all (the
            # connection is this turn's alone), even when cancelled mid-try.
            await asyncio.to_thread(_release, conn)

    def _try_slot(self, conn: Connection, host: str) -> bool:
        for slot in range(self.per_host):
            if conn.scalar(
                text("SELECT pg_try_advisory_lock(:n, :k)"), {"n": SLOTS, "k": _key(host, slot)}
            ):
                conn.commit()
                return True
        conn.commit()
        return False


def _release(conn: Connection) -> None:
    try:
        conn.rollback()
        conn.execute(text("SELECT pg_advisory_unlock_all()"))
        conn.commit()
    finally:
        conn.close()


def _reserve(conn: Connection, host: str, delay: float) -> float:
    """Book the host's next start (``delay`` after this one); seconds to wait for this one."""
    conn.execute(
        text(
            "INSERT INTO host_turns (host, next_at) VALUES (:h, now()) "
            "ON CONFLICT (host) DO NOTHING"
        ),
        {"h": host},
    )
    row = conn.execute(
        text(
            "SELECT greatest(next_at, clock_timestamp()) AS start, clock_timestamp() AS now "
            "FROM host_turns WHERE host = :h FOR UPDATE"
        ),
        {"h": host},
    ).one()
    conn.execute(
        text("UPDATE host_turns SET next_at = :n WHERE host = :h"),
        {"n": row.start + timedelta(seconds=delay), "h": host},
    )
    conn.commit()
    return float((row.start - row.now).total_seconds())
