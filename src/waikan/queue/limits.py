"""Per-host politeness shared by every worker, kept in PostgreSQL.

One worker process's :class:`~waikan.fetch.Fetcher` only knows its own
requests; with N workers each honouring ``fetch.per_host`` and
``fetch.host_delay`` alone, a site would see N times the rate. Here a fetch
first takes one of ``per_host`` advisory-lock slots for its host (held on a
session of its own, so a killed worker frees it), then reserves its start time
in ``host_turns`` under a row lock: starts on one host are never closer than
``host_delay``, across all workers together.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import text

from waikan.store import Store

__all__ = ["host_turn"]

SLOTS = 7  # advisory lock namespace of host slots
WAIT = 0.02


def _key(host: str, slot: int) -> int:
    # A signed 32-bit key from the host and slot (pg_try_advisory_lock(int, int)).
    return zlib.crc32(f"{host}#{slot}".encode()) - 2**31


@contextmanager
def host_turn(store: Store, host: str, per_host: int, delay: float) -> Iterator[None]:
    """Wait for a free slot on ``host`` and for its next start time; hold the slot."""
    with store.engine.connect() as c:
        slot = None
        while slot is None:
            for s in range(max(1, per_host)):
                if c.scalar(
                    text("SELECT pg_try_advisory_lock(:n, :k)"), {"n": SLOTS, "k": _key(host, s)}
                ):
                    slot = s
                    break
            c.commit()
            if slot is None:
                time.sleep(WAIT)
        try:
            wait = _reserve(c, host, delay)
            if wait > 0:
                time.sleep(wait)
            yield
        finally:
            c.scalar(text("SELECT pg_advisory_unlock(:n, :k)"), {"n": SLOTS, "k": _key(host, slot)})
            c.commit()


def _reserve(c: object, host: str, delay: float) -> float:
    """Book the host's next start (``delay`` after the last one); seconds to wait for it."""
    from sqlalchemy.engine import Connection

    assert isinstance(c, Connection)
    c.execute(
        text(
            "INSERT INTO host_turns (host, next_at) VALUES (:h, now()) "
            "ON CONFLICT (host) DO NOTHING"
        ),
        {"h": host},
    )
    row = c.execute(
        text(
            "SELECT greatest(next_at, clock_timestamp()) AS start, clock_timestamp() AS now "
            "FROM host_turns WHERE host = :h FOR UPDATE"
        ),
        {"h": host},
    ).one()
    c.execute(
        text("UPDATE host_turns SET next_at = :n WHERE host = :h"),
        {"n": row.start + timedelta(seconds=delay), "h": host},
    )
    c.commit()
    return float((row.start - row.now).total_seconds())
