"""Host turns: one key per host, Retry-After holding the whole host, and the workers'
shared turns (real PostgreSQL) surviving cancellation without leaking a slot."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from tests.servers.pages import PageServer

from waikan.fetch import Fetcher, FetchSettings
from waikan.fetch.robots import RobotsCache, host_key, origin_of

SETTINGS = FetchSettings(
    allow_private=True, host_delay=0.0, per_host=2, retries=1, backoff=0.01, obey_robots=False
)


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("http://Example.COM/a", "example.com"),
        ("http://example.com:80/a", "example.com"),
        ("https://example.com:443/a", "example.com"),
        ("https://example.com:8443/a", "example.com:8443"),
        ("http://example.com./a", "example.com"),
        ("http://bob:s3cret@example.com/a", "example.com"),
        ("http://bücher.example/a", "xn--bcher-kva.example"),
        ("http://[::1]:8080/a", "[::1]:8080"),
    ],
)
def test_one_key_per_host_without_credentials(url: str, key: str) -> None:
    assert host_key(url) == key
    assert origin_of(url).endswith("://" + key)


class Stamped:
    """/busy answers 429 (Retry-After: 1) once, then 200; /other records when it starts."""

    def __init__(self) -> None:
        self.busy_at: list[float] = []
        self.other_at: list[float] = []

    def routes(self) -> dict[str, Any]:
        def busy(h: Any) -> None:
            self.busy_at.append(time.monotonic())
            first = len(self.busy_at) == 1
            h.send_response(429 if first else 200)
            if first:
                h.send_header("Retry-After", "1")
            h.send_header("Content-Length", "2")
            h.end_headers()
            h.wfile.write(b"ok")

        def other(h: Any) -> None:
            self.other_at.append(time.monotonic())
            h.send_response(200)
            h.send_header("Content-Length", "2")
            h.end_headers()
            h.wfile.write(b"ok")

        return {"/busy": busy, "/other": other}


async def _busy_then_other(base: str, first: Fetcher, second: Fetcher) -> None:
    async def other() -> None:
        await asyncio.sleep(0.3)  # after the 429 came back
        await second.get(f"{base}/other")

    await asyncio.gather(first.get(f"{base}/busy"), other())


def test_retry_after_holds_the_whole_host_in_one_process() -> None:
    stamped = Stamped()
    with PageServer(stamped.routes()) as srv:

        async def go() -> None:
            async with Fetcher(SETTINGS) as f:
                await _busy_then_other(srv.base, f, f)

        asyncio.run(go())
    assert len(stamped.busy_at) == 2 and len(stamped.other_at) == 1
    # A free slot is not enough: the host asked for a second of quiet.
    assert stamped.other_at[0] - stamped.busy_at[0] >= 0.9


def test_retry_after_holds_the_host_for_every_worker(pg_url: str) -> None:
    from waikan.queue.limits import SharedTurns
    from waikan.store import open_store

    store = open_store(pg_url)
    stamped = Stamped()
    try:
        with PageServer(stamped.routes()) as srv:

            async def go() -> None:
                # Two workers' fetchers: the second learns of the Retry-After via PostgreSQL.
                async with (
                    Fetcher(SETTINGS, turns=SharedTurns(store, 2)) as one,
                    Fetcher(SETTINGS, turns=SharedTurns(store, 2)) as two,
                ):
                    await _busy_then_other(srv.base, one, two)

            asyncio.run(go())
    finally:
        store.close()
    assert len(stamped.busy_at) == 2 and len(stamped.other_at) == 1
    assert stamped.other_at[0] - stamped.busy_at[0] >= 0.9


def _slot_locks(store: Any) -> int:
    from waikan.queue.limits import SLOTS

    with store.engine.connect() as c:
        return int(
            c.scalar(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND classid = :n AND granted"
                ),
                {"n": SLOTS},
            )
        )


def test_cancelled_turns_leave_no_slot_and_no_connection_behind(pg_url: str) -> None:
    """Cancels land while the turn connects, waits for the slot, books or runs."""
    from waikan.queue.limits import SharedTurns
    from waikan.store import open_store

    store = open_store(pg_url)
    turns = SharedTurns(store, 1)
    rng = random.Random(7)
    surprises: list[BaseException] = []

    async def one(cancel_after: float) -> None:
        async def body() -> None:
            async with turns.turn("host.example", 0.0):
                await asyncio.sleep(0.005)

        task = asyncio.create_task(body())
        await asyncio.sleep(cancel_after)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        except BaseException as exc:
            surprises.append(exc)

    async def go() -> None:
        # Several at once, so some wait for the only slot when they are cancelled.
        for _ in range(40):
            await asyncio.gather(*(one(rng.uniform(0.0, 0.012)) for _ in range(4)))
        async with asyncio.timeout(10):  # and the slot is free for the next one
            async with turns.turn("host.example", 0.0):
                pass

    try:
        asyncio.run(go())
        assert surprises == []
        assert _slot_locks(store) == 0
        assert store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        turns.close()
        store.close()


@contextmanager
def _counting(store: Any) -> Iterator[list[int]]:
    """How many turns hold a slot at once, sampled from pg_locks."""
    seen: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            seen.append(_slot_locks(store))
            time.sleep(0.01)

    t = threading.Thread(target=sample)
    t.start()
    try:
        yield seen
    finally:
        stop.set()
        t.join()


def test_many_concurrent_turns_wait_without_exhausting_the_pool(pg_url: str) -> None:
    """More turns than the store's connection pool: the excess waits its turn, none fails."""
    from waikan.queue.limits import SharedTurns
    from waikan.store import open_store

    store = open_store(pg_url)
    turns = SharedTurns(store, 2)

    async def go() -> None:
        async def one(i: int) -> None:
            async with turns.turn(f"h{i % 30}.example", 0.0):
                await asyncio.sleep(0.05)

        await asyncio.gather(*(one(i) for i in range(60)))

    try:
        with _counting(store) as seen:
            asyncio.run(go())
        assert 0 < max(seen) <= 8  # MAX_TURNS in one process
        assert store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        turns.close()
        store.close()


def test_robots_txt_store_fault_is_ours_not_the_sites() -> None:
    """A database error inside robots.txt's turn raises; it is not cached as 'unavailable'."""
    calls = 0

    async def getter(_url: str) -> tuple[int, bytes]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        return 200, b"User-agent: *\nDisallow: /private\n"

    cache = RobotsCache(getter)

    async def go() -> None:
        with pytest.raises(OperationalError):
            await cache.rules("http://example.com/a")
        rules = await cache.rules("http://example.com/a")  # read again, not a cached verdict
        assert rules.allowed("http://example.com/a", "waikan")
        assert not rules.allowed("http://example.com/private", "waikan")

    asyncio.run(go())
    assert calls == 2


def test_a_turn_cancelled_just_after_its_thread_took_the_slot_frees_it(pg_url: str) -> None:
    """The race the shielding is for: the thread holds the slot when the cancel lands."""
    from waikan.queue.limits import SharedTurns
    from waikan.store import open_store

    store = open_store(pg_url)
    turns = SharedTurns(store, 1)
    took = threading.Event()
    real_try = turns._try_slot

    def slow_try(conn: Any, host: str) -> bool:
        got = real_try(conn, host)
        took.set()
        time.sleep(0.3)  # the slot is held; the caller is cancelled meanwhile
        return got

    turns._try_slot = slow_try  # type: ignore[method-assign]

    async def go() -> None:
        async def body() -> None:
            async with turns.turn("host.example", 0.0):
                raise AssertionError("the body never runs: the turn was cancelled")

        task = asyncio.create_task(body())
        while not took.is_set():
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        asyncio.run(go())
        assert _slot_locks(store) == 0
        assert store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        turns.close()
        store.close()
