"""Per-source body policy and language, robots.txt on redirect hops, ``waikan add`` of a WARC.

Everything runs against corpus pages served by PageServer on loopback (or a
WARC file on disk), through the real CLI and a real SQLite store.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import text
from tests.conftest import assert_one_line_error
from tests.servers.feeds import Served, ago, corpus_pages, raw, routes_for, rss
from tests.servers.pages import PageServer, redirect
from tests.sources.test_sources_cli import write_warc

from waikan.extract import extract
from waikan.models import Extracted, Status
from waikan.sources.article import SourcePolicy
from waikan.sources.repo import SourceRecord
from waikan.store import open_store

ENV = {
    "WAIKAN_FETCH_ALLOW_PRIVATE_NETWORKS": "true",
    "WAIKAN_FETCH_HOST_DELAY": "0",
    "WAIKAN_FETCH_BACKOFF": "0.01",
}


def stored(home: Path) -> dict[str, dict[str, Any]]:
    """Article rows by URL, from the workspace's store (its database in pg mode)."""
    store = open_store(f"sqlite:///{home / 'waikan.db'}")
    try:
        with store.engine.connect() as c:
            q = text("select url, status, reason, language, paragraphs from articles")
            rows = c.execute(q).mappings().all()
    finally:
        store.close()
    def paras(v: Any) -> Any:  # a JSON column: text on SQLite, decoded on PostgreSQL
        return json.loads(v) if isinstance(v, str) else v

    return {r["url"]: dict(r) | {"paragraphs": paras(r["paragraphs"])} for r in rows}


def add_feed(waikan, srv: PageServer, paths: list[str], *args: str) -> None:  # type: ignore[no-untyped-def]
    items = [(f"{srv.base}{p}", f"Story {p}", ago(1)) for p in paths]
    srv.routes["/feed.xml"] = Served(rss(items), "application/rss+xml")
    added = waikan("sources", "add", f"{srv.base}/feed.xml", "--backfill", "9", *args, env=ENV)
    assert added.code == 0, added.err


def test_body_none_never_fetches_the_page(waikan, home: Path) -> None:  # type: ignore[no-untyped-def]
    pages = corpus_pages(2, offset=40)
    with PageServer(routes_for({f"/n{i}": p for i, p in enumerate(pages)})) as srv:
        add_feed(waikan, srv, ["/n0", "/n1"], "--body", "none", "--language", "en")
        result = waikan("fetch", env=ENV)
        assert result.code == 0, result.err
        assert not [h for h in srv.hits if h.startswith("/n")]  # the pages were never requested
    got = stored(home)
    assert len(got) == 2
    for path in ("/n0", "/n1"):
        row = got[f"{srv.base}{path}"]
        assert row["status"] == "extracted", row
        assert row["paragraphs"] == [f"About Story {path}"]  # the feed's own summary
        assert row["language"] == "en"  # declared by the source


def test_body_first_n_keeps_the_first_paragraphs(waikan, home: Path) -> None:  # type: ignore[no-untyped-def]
    pages = corpus_pages(2, offset=42)
    with PageServer(routes_for({f"/f{i}": p for i, p in enumerate(pages)})) as srv:
        add_feed(waikan, srv, ["/f0", "/f1"], "--body", "first_n", "--first-n", "2")
        assert waikan("fetch", env=ENV).code in (0, 3)
    got = stored(home)
    for i, page in enumerate(pages):
        full = extract(page, url=f"{srv.base}/f{i}")
        row = got[f"{srv.base}/f{i}"]
        assert len(full.paragraphs) > 2
        assert row["paragraphs"] == list(full.paragraphs[:2]), row


def test_source_language_rejects_pages_in_another(waikan, home: Path) -> None:  # type: ignore[no-untyped-def]
    pages = corpus_pages(2, offset=44)  # English pages
    with PageServer(routes_for({f"/l{i}": p for i, p in enumerate(pages)})) as srv:
        add_feed(waikan, srv, ["/l0", "/l1"], "--language", "es,fr")
        result = waikan("fetch", env=ENV)
        assert result.code == 3, result.err  # rejected pages are reported by the exit code
    got = stored(home)
    assert {r["status"] for r in got.values()} == {"rejected"}
    assert all(r["reason"].startswith("language: the page is en") for r in got.values()), got


def test_robots_rechecked_when_a_redirect_changes_host(waikan, home: Path) -> None:  # type: ignore[no-untyped-def]
    page_ok, page_hidden = corpus_pages(2, offset=46)
    with PageServer({}) as other, PageServer({}) as srv:
        other.routes["/robots.txt"] = raw(b"User-agent: *\nDisallow: /private/\n", "text/plain")
        other.routes["/private/x"] = raw(page_hidden)
        other.routes["/public/y"] = raw(page_ok)
        srv.routes["/go-hidden"] = redirect(f"{other.base}/private/x")
        srv.routes["/go-ok"] = redirect(f"{other.base}/public/y")
        add_feed(waikan, srv, ["/go-hidden", "/go-ok"])
        result = waikan("fetch", env=ENV)
        assert "/private/x" not in other.hits  # refused before the request
        assert "/robots.txt" in other.hits and "/public/y" in other.hits
    assert result.code == 1
    assert f"redirected to {other.base}/private/x, disallowed by robots.txt" in result.err
    got = stored(home)
    assert got[f"{srv.base}/go-hidden"]["status"] == "failed"
    assert got[f"{srv.base}/go-ok"]["status"] == "extracted"


def test_add_warc_file(waikan, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pages = corpus_pages(3, offset=48)
    warc = tmp_path / "cc-news.warc.gz"
    write_warc(warc, [(f"https://news.example/w{i}?utm_source=x", p) for i, p in enumerate(pages)])
    result = waikan("add", str(warc), "--json")  # the guard is on: no network would pass
    assert result.code in (0, 3), result.err
    lines = [json.loads(line) for line in result.out.splitlines()]
    assert [r["url"] for r in lines] == [f"https://news.example/w{i}" for i in range(3)]
    assert sorted(stored(home)) == [f"https://news.example/w{i}" for i in range(3)]
    again = waikan("add", str(warc))  # stored once: the same rows come back
    assert again.code in (0, 3) and len(stored(home)) == 3


def test_add_truncated_warc_is_a_one_line_error(waikan, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pages = corpus_pages(3, offset=48)
    warc = tmp_path / "cut.warc.gz"
    write_warc(warc, [(f"https://news.example/t{i}", p) for i, p in enumerate(pages)], cut=300)
    result = waikan("add", str(warc))
    assert_one_line_error(result)
    assert "truncated or corrupt WARC file after 2 pages" in result.err
    assert len(stored(home)) == 2  # the whole records before the cut are kept
    bogus = tmp_path / "notes.warc"
    bogus.write_bytes(b"this is not a WARC file\n")
    bad = waikan("add", str(bogus))
    assert_one_line_error(bad)
    assert "no HTML response records" in bad.err


def test_policy_declares_or_checks_the_language() -> None:
    source = SourceRecord(
        1,
        "Wire",
        "http://x.test/feed",
        "rss",
        "en-GB, es",
        {"body_policy": "first_n", "first_n": 1},
    )
    policy = SourcePolicy.of(source)
    page = Extracted("T", "Wire", None, None, ("one two", "three four"))
    got, status, reason = policy.apply(page)
    assert (got.language, got.paragraphs, status, reason) == ("en-GB", ("one two",), None, None)
    got, status, _ = policy.apply(replace(page, language="es_MX"))
    assert (got.language, status) == ("es_MX", None)  # a primary subtag the source declares
    _, status, reason = policy.apply(replace(page, language="fr"))
    assert status == Status.REJECTED and reason == "language: the page is fr, the source en-GB,es"
    short = replace(page, language="fr", reject_reason="too_short")
    assert policy.apply(short) == (short, None, None)  # extraction's own verdict stands
