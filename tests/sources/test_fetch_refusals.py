"""Which fetch refusals are retried and which fail at once, and filtered rows in one commit.

A robots.txt answering 5xx is a passing state of the site (retried on a later
run, re-read by a long-lived Fetcher); a redirect the guard refuses will never
succeed (``failed`` at once). Loopback PageServer, real CLI, real SQLite store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.engine import Engine
from tests.servers.feeds import Served, ago, corpus_pages, raw, routes_for, rss
from tests.servers.pages import PageServer, redirect
from tests.sources.test_source_policy import ENV, add_feed, stored

from waikan.fetch import Fetcher, FetchSettings, PermanentFetchError, TransientFetchError
from waikan.fetch.guard import Guard
from waikan.store import schema

ALLOW_ALL = b"User-agent: *\nAllow: /\n"


class FlakyRobots:
    """robots.txt answering 503 while ``down``, then an allow-all file."""

    def __init__(self) -> None:
        self.down = True

    def __call__(self, h: BaseHTTPRequestHandler) -> None:
        if self.down:
            raw(b"busy", "text/plain", status=503)(h)
        else:
            raw(ALLOW_ALL, "text/plain")(h)


def test_robots_503_is_retried_on_the_next_run(waikan, home: Path) -> None:  # type: ignore[no-untyped-def]
    pages = corpus_pages(2, offset=50)
    robots = FlakyRobots()
    site = PageServer(routes_for({f"/s{i}": p for i, p in enumerate(pages)}), host="127.0.0.3")
    with site, PageServer({}) as feeds:  # the feed's host answers robots.txt 404: no rules
        site.routes["/robots.txt"] = robots
        items = [(f"{site.base}/s{i}", f"Story {i}", ago(1)) for i in range(2)]
        feeds.routes["/feed.xml"] = Served(rss(items), "application/rss+xml")
        added = waikan("sources", "add", f"{feeds.base}/feed.xml", "--backfill", "9", env=ENV)
        assert added.code == 0, added.err
        first = waikan("fetch", env=ENV | {"WAIKAN_FETCH_RETRIES": "0"})
        assert "robots.txt unavailable" in first.err, first.err
        assert site.hits.count("/robots.txt") == 1  # one read for both articles
        assert not [h for h in site.hits if h.startswith("/s")]  # nothing crawled meanwhile
        got = stored(home)
        assert {r["status"] for r in got.values()} == {"discovered"}, got  # not failed for good
        robots.down = False
        second = waikan("fetch", env=ENV)
        assert second.code == 0, second.err
    got = stored(home)
    assert {r["status"] for r in got.values()} == {"extracted"}, got


def test_robots_cache_entries_expire() -> None:
    """A long-lived Fetcher re-reads robots.txt: 5xx verdicts briefly, real rules daily."""
    page = corpus_pages(1, offset=52)[0]
    robots = FlakyRobots()
    now = [0.0]
    with PageServer(routes_for({"/a": page})) as srv:
        srv.routes["/robots.txt"] = robots
        settings = FetchSettings(host_delay=0.0, retries=0, allow_private=True)

        async def go() -> None:
            async with Fetcher(replace(settings, obey_robots=True)) as fetcher:
                cache = fetcher.robots
                cache._clock = lambda: now[0]
                with pytest.raises(TransientFetchError, match=r"robots\.txt unavailable"):
                    await fetcher.get(f"{srv.base}/a")
                robots.down = False
                now[0] = cache.error_ttl - 1  # still within the 5xx verdict's lifetime
                with pytest.raises(TransientFetchError):
                    await fetcher.get(f"{srv.base}/a")
                now[0] = cache.error_ttl + 1
                assert (await fetcher.get(f"{srv.base}/a")).content == page
                robots.down = True  # real rules are kept for their (long) lifetime
                now[0] += cache.rules_ttl - 1
                assert (await fetcher.get(f"{srv.base}/a")).content == page
                now[0] += 2
                with pytest.raises(TransientFetchError):
                    await fetcher.get(f"{srv.base}/a")

        asyncio.run(go())
        assert srv.hits.count("/robots.txt") == 3
        assert srv.hits.count("/a") == 2


@pytest.fixture
def guard_on_for_127_0_0_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loopback test server is reachable; a hop to 127.0.0.2 meets the guard switched on,
    as when a public server redirects inward."""
    original = Guard.check

    async def check(self: Guard, url: str) -> None:
        self.allow_private = "127.0.0.2" not in url
        await original(self, url)

    monkeypatch.setattr(Guard, "check", check)


@pytest.mark.usefixtures("guard_on_for_127_0_0_2")
def test_refused_redirects_fail_at_once(waikan, home: Path) -> None:  # type: ignore[no-untyped-def]
    with PageServer({}, host="127.0.0.2") as inner, PageServer({}) as srv:
        inner.routes["/admin"] = raw(b"<html><body><p>secret</p></body></html>")
        srv.routes["/go-inner"] = redirect(f"{inner.base}/admin")
        srv.routes["/go-ftp"] = redirect("ftp://files.example/x")
        add_feed(waikan, srv, ["/go-inner", "/go-ftp"])
        result = waikan("fetch", env=ENV)  # fetch.max_attempts is 3: one run must suffice
        assert inner.hits == []
    assert result.code == 1, result.err
    got = stored(home)
    inward, ftp = got[f"{srv.base}/go-inner"], got[f"{srv.base}/go-ftp"]
    assert inward["status"] == "failed" and "loopback" in inward["reason"], inward
    assert ftp["status"] == "failed" and "only http and https" in ftp["reason"], ftp


def test_guard_refusals_are_permanent() -> None:
    from waikan.fetch import BlockedAddressError
    from waikan.fetch.guard import check_scheme

    assert issubclass(BlockedAddressError, PermanentFetchError)
    with pytest.raises(PermanentFetchError, match="only http and https"):
        check_scheme("gopher://x/")


@pytest.fixture
def article_writes() -> Iterator[list[str]]:
    """The status of every INSERT/UPDATE of an article row, as executed."""
    seen: list[str] = []

    def record(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        head = statement.lstrip().upper()
        if head.startswith(("INSERT INTO ARTICLES", "UPDATE ARTICLES")):
            seen.extend(str(p["status"]) for p in context.compiled_parameters if "status" in p)

    event.listen(Engine, "after_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "after_cursor_execute", record)


def test_filtered_local_page_is_never_written_as_extracted(  # type: ignore[no-untyped-def]
    waikan, home: Path, tmp_path: Path, article_writes: list[str]
) -> None:
    folder = tmp_path / "saved"
    folder.mkdir()
    for i, page in enumerate(corpus_pages(2, offset=54)):  # English pages
        (folder / f"p{i}.html").write_bytes(page)
    assert waikan("sources", "add", str(folder), "--language", "es,fr").code == 0
    assert waikan("fetch", env=ENV).code in (0, 3)
    got = stored(home)
    assert len(got) == 2 and {r["status"] for r in got.values()} == {"rejected"}, got
    assert article_writes and "extracted" not in article_writes, article_writes


def test_attempt_and_poll_times_come_from_the_database(  # type: ignore[no-untyped-def]
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker whose clock is an hour slow still stamps the coordinator's (database) time."""
    from waikan.sources import repo as repo_module
    from waikan.store import open_store

    real = datetime.now(UTC)
    monkeypatch.setattr(repo_module, "_now", lambda: real - timedelta(hours=1))
    store = open_store(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        repo = repo_module.SourceRepo(store)
        source = repo.add(
            "http://feeds.example/x.xml", kind="rss", name="x", language=None, settings={}
        )
        repo.record_error(source, "boom", every_minutes=30)
        row = {
            "url": "http://a.example/1",
            "status": "discovered",
            "authors": [],
            "paragraphs": [],
            "word_count": 0,
            "created_at": real,
            "updated_at": real,
        }
        with store.engine.begin() as c:
            key = c.execute(insert(schema.articles).values(**row)).inserted_primary_key
        assert key is not None
        repo.fail_attempt(int(key[0]), "503", max_attempts=3)
        with store.engine.connect() as c:
            stamps = [
                c.scalar(select(schema.source_state.c.last_polled_at)),
                c.scalar(select(schema.fetch_attempts.c.updated_at)),
            ]
    finally:
        store.close()
    for stamp in stamps:
        assert stamp is not None
        aware = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
        assert abs(aware - real) < timedelta(minutes=10), (aware, real)  # not the worker's clock
