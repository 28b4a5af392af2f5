"""Per-host politeness shared by every worker, kept in PostgreSQL.

One worker process's :class:`~waikan.fetch.Fetcher` only knows its own
requests; with N workers each honouring ``fetch.per_host`` and the host's
delay alone, a site would see N times the rate. :class:`SharedTurns` is the
fetcher's turns on workers: every request (each redirect hop, retry,
robots.txt and feed poll, keyed by its own host) first takes one of
``per_host`` advisory-lock slots for its host, then books its start in
``host_turns`` under a row lock, so starts on one host are never closer than
the delay the previous request asked for (``fetch.host_delay``, or the
robots.txt Crawl-delay when longer), across all workers together. A
``Retry-After`` a host sends pushes its next start for every worker.
"""

from __future__ import annotations

import asyncio
import threading
import zlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import Connection

from waikan.store import Store

__all__ = ["SharedTurns"]

SLOTS = 7  # advisory lock namespace of host slots
# Seconds between a waiting turn's tries for a slot: doubling from WAIT up to MAX_WAIT, so
# many processes waiting on one busy host do not flood PostgreSQL.
WAIT = 0.02
MAX_WAIT = 0.2
# Turns in progress at once in one process: each holds a pooled connection and, while
# it waits for a slot, a thread (the store's pool has 5 + 10 connections).
MAX_TURNS = 8

T = TypeVar("T")


def _key(host: str, slot: int) -> int:
    # A signed 32-bit key from the host and slot (pg_try_advisory_lock(int, int)).
    return zlib.crc32(f"{host}#{slot}".encode()) - 2**31


class _Abandoned(Exception):
    """The turn was cancelled while it waited for a slot."""


class SharedTurns:
    """``Fetcher(settings, turns=SharedTurns(store, per_host))``: host turns for all workers."""

    def __init__(self, store: Store, per_host: int) -> None:
        self.store = store
        self.per_host = max(1, per_host)
        # Its own threads: blocked slot waits never starve the loop's default executor.
        self._threads = ThreadPoolExecutor(MAX_TURNS, thread_name_prefix="waikan-turn")
        self._gate: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._gate is None or self._gate[0] is not loop:
            self._gate = (loop, asyncio.Semaphore(MAX_TURNS))
        return self._gate[1]

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, fn, *args)

    @asynccontextmanager
    async def turn(self, host: str, delay: float) -> AsyncIterator[None]:
        async with self._semaphore():
            stop = threading.Event()
            job = asyncio.ensure_future(self._run(self._acquire, host, delay, stop))
            try:
                conn, wait = await asyncio.shield(job)
            except asyncio.CancelledError:
                # The thread may still be taking a slot on its connection: let it
                # finish (told to stop), then free what it took. Never two threads
                # on one connection.
                stop.set()
                await _settle(job)
                raise
            try:
                if wait > 0:
                    await asyncio.sleep(wait)
                yield
            finally:
                # Shielded: a cancel here still lets the release finish in its thread.
                await asyncio.shield(self._run(_release, conn))

    async def hold_off(self, host: str, seconds: float) -> None:
        """No worker starts a request to ``host`` for ``seconds`` (the host's Retry-After)."""
        await asyncio.shield(self._run(self._push, host, seconds))

    def close(self) -> None:
        self._threads.shutdown(wait=False)

    # -- in the turn threads ------------------------------------------------------------
    def _acquire(self, host: str, delay: float, stop: threading.Event) -> tuple[Connection, float]:
        conn = self.store.engine.connect()
        try:
            pause = WAIT
            while not self._try_slot(conn, host):
                if stop.wait(pause):
                    raise _Abandoned
                pause = min(pause * 2, MAX_WAIT)
            if stop.is_set():
                raise _Abandoned
            return conn, _reserve(conn, host, delay)
        except BaseException:
            _release(conn)
            raise

    def _try_slot(self, conn: Connection, host: str) -> bool:
        for slot in range(self.per_host):
            if conn.scalar(
                text("SELECT pg_try_advisory_lock(:n, :k)"), {"n": SLOTS, "k": _key(host, slot)}
            ):
                conn.commit()
                return True
        conn.commit()
        return False

    def _push(self, host: str, seconds: float) -> None:
        with self.store.engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO host_turns (host, next_at) "
                    "VALUES (:h, clock_timestamp() + :s * interval '1 second') "
                    "ON CONFLICT (host) DO UPDATE SET next_at = "
                    "greatest(host_turns.next_at, excluded.next_at)"
                ),
                {"h": host, "s": seconds},
            )


async def _settle(job: asyncio.Future[tuple[Connection, float]]) -> None:
    """Wait for a cancelled turn's acquiring thread; release a slot it took meanwhile."""
    try:
        conn, _wait = await job
    except BaseException:
        return  # it failed or was abandoned: _acquire released its connection itself
    await asyncio.to_thread(_release, conn)


def _release(conn: Connection) -> None:
    # Session locks outlive a pooled connection's return: free them all (the connection
    # is this turn's alone).
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
