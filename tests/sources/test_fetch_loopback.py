"""``waikan sources add`` + ``waikan fetch`` against feeds and corpus pages served on loopback."""

from __future__ import annotations

import itertools
import json
import threading
import time
from pathlib import Path

import pytest
from tests.conftest import assert_one_line_error
from tests.servers.feeds import (
    Route,
    Served,
    ago,
    atom,
    brotli_bomb,
    corpus_pages,
    deflate_bomb,
    flaky,
    json_feed,
    raw,
    routes_for,
    rss,
    sitemap,
)
from tests.servers.pages import PageServer, endless, gzip_bomb, redirect, slow

ENV = {
    "WAIKAN_FETCH_ALLOW_PRIVATE_NETWORKS": "true",
    "WAIKAN_FETCH_HOST_DELAY": "0",
    "WAIKAN_FETCH_BACKOFF": "0.01",
}


def add(waikan, url: str, *args: str, env: dict[str, str]) -> int:  # type: ignore[no-untyped-def]
    result = waikan("sources", "add", url, *args, env=env)
    assert result.code == 0, result.err
    return int(result.code)


def rows(waikan) -> list[dict]:  # type: ignore[no-untyped-def]
    return [json.loads(line) for line in waikan("list", "--json").out.splitlines()]


def test_feed_articles_ingested_once_304_and_robots(waikan) -> None:  # type: ignore[no-untyped-def]
    pages = corpus_pages(4)
    with PageServer({}) as srv:
        items = [(f"{srv.base}/a{i}?utm_source=rss#top", f"Story {i}", ago(i)) for i in range(4)]
        items.append((f"{srv.base}/private/x", "Hidden", ago(1)))
        items.append((f"{srv.base}/a0?utm_medium=email", "Story 0 again", ago(1)))
        feed = Served(rss(items), "application/rss+xml")
        srv.routes.update(routes_for({f"/a{i}": p for i, p in enumerate(pages)}))
        srv.routes["/feed.xml"] = feed
        srv.routes["/robots.txt"] = raw(b"User-agent: *\nDisallow: /private/\n", "text/plain")
        srv.routes["/private/x"] = raw(pages[0])

        added = waikan("sources", "add", f"{srv.base}/feed.xml", "--backfill", "10", env=ENV)
        assert added.code == 0, added.err
        assert "Test Wire (rss); 6 items listed, 5 taken now" in added.out

        first = waikan("fetch", env=ENV)
        assert first.code == 1  # the robots.txt refusal is reported
        assert "disallowed by robots.txt" in first.err
        got = rows(waikan)
        assert sorted(r["url"] for r in got) == sorted(
            [f"{srv.base}/a{i}" for i in range(4)] + [f"{srv.base}/private/x"]
        )
        by_url = {r["url"]: r for r in got}
        assert by_url[f"{srv.base}/private/x"]["status"] == "failed"
        assert all(by_url[f"{srv.base}/a{i}"]["status"] == "extracted" for i in range(4))
        assert "/private/x" not in srv.hits
        assert sorted(h for h in srv.hits if h.startswith("/a")) == ["/a0", "/a1", "/a2", "/a3"]

        # The second poll is conditional and answered 304: nothing is fetched again.
        pages_before = [h for h in srv.hits if h.startswith("/a")]
        again = waikan("fetch", "--now", env=ENV)
        assert again.code == 0, again.err
        assert "not modified" in again.out
        assert feed.conditional[-1] == '"v1"' and feed.not_modified == 1
        assert [h for h in srv.hits if h.startswith("/a")] == pages_before
        assert len(rows(waikan)) == 5


def test_last_modified_conditional_get(waikan) -> None:  # type: ignore[no-untyped-def]
    stamp = "Fri, 27 Oct 2023 14:03:40 GMT"
    with PageServer({}) as srv:
        feed = Served(rss([]), "application/rss+xml", etag=None, last_modified=stamp)
        srv.routes["/feed.xml"] = feed
        assert add(waikan, f"{srv.base}/feed.xml", env=ENV) == 0
        result = waikan("fetch", "--now", env=ENV)
        assert result.code == 0 and "not modified" in result.out
    assert feed.since == [None, stamp] and feed.not_modified == 1


def test_new_source_backfill_zero_takes_only_later_items(waikan) -> None:  # type: ignore[no-untyped-def]
    pages = corpus_pages(3, offset=4)
    with PageServer(routes_for({f"/p{i}": p for i, p in enumerate(pages)})) as srv:
        old = [(f"{srv.base}/p0", "Old one", ago(2)), (f"{srv.base}/p1", "Old two", ago(3))]
        feed = Served(atom(old), "application/atom+xml")
        srv.routes["/atom.xml"] = feed
        added = waikan("sources", "add", f"{srv.base}/atom.xml", "--name", "Wire", env=ENV)
        assert added.code == 0, added.err
        assert "2 items listed, 0 taken now" in added.out
        assert waikan("fetch", "--now", env=ENV).code == 0
        assert rows(waikan) == []
        feed.set(atom([(f"{srv.base}/p2", "New one", ago(0.1)), *old]), '"v2"')
        result = waikan("fetch", "--now", env=ENV)
        assert result.code == 0, result.err
        got = rows(waikan)
        assert [(r["url"], r["source"]) for r in got] == [(f"{srv.base}/p2", "Wire")]
        assert "/p0" not in srv.hits and "/p1" not in srv.hits


def test_nul_in_a_feed_is_dropped_not_a_crash(waikan) -> None:  # type: ignore[no-untyped-def]
    """``&#0;`` decodes to NUL, which PostgreSQL text refuses: it was a traceback there."""
    pages = corpus_pages(2)
    with PageServer(routes_for({f"/n{i}": p for i, p in enumerate(pages)})) as srv:
        feed = (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>Nul&#0; Wire</title>'
            f"<item><title>A&#0;</title><link>{srv.base}/n0</link></item>"
            f"<item><title>B</title><link>{srv.base}/n1&#0;</link></item>"
            "</channel></rss>"
        )
        srv.routes["/feed.xml"] = Served(feed.encode(), "application/rss+xml")
        added = waikan("sources", "add", f"{srv.base}/feed.xml", "--backfill", "10", env=ENV)
        assert added.code == 0, added.err
        assert "Nul Wire" in added.out and "1 items listed, 1 taken now" in added.out
        assert waikan("fetch", "--now", env=ENV).code == 0
        got = rows(waikan)
        assert [(r["url"], r["source"]) for r in got] == [(f"{srv.base}/n0", "Nul Wire")]
        assert "/n1" not in srv.hits


def test_max_age_and_filters(waikan) -> None:  # type: ignore[no-untyped-def]
    pages = corpus_pages(3, offset=7)
    with PageServer(routes_for({f"/q{i}": p for i, p in enumerate(pages)})) as srv:
        items = [
            (f"{srv.base}/q0", "Fresh news", ago(1)),
            (f"{srv.base}/q1", "Ancient news", ago(24 * 30)),
            (f"{srv.base}/q2", "Sports roundup", ago(2)),
        ]
        srv.routes["/feed.json"] = Served(json_feed(items), "application/feed+json")
        added = waikan(
            "sources",
            "add",
            f"{srv.base}/feed.json",
            "--backfill",
            "5",
            "--exclude",
            "sports",
            env=ENV,
        )
        assert added.code == 0, added.err
        assert "JSON Wire (jsonfeed); 3 items listed, 1 taken now" in added.out
        assert waikan("fetch", env=ENV).code == 0
        assert [r["url"] for r in rows(waikan)] == [f"{srv.base}/q0"]


def test_body_include_filter_rejects(waikan) -> None:  # type: ignore[no-untyped-def]
    pages = corpus_pages(2, offset=10)
    with PageServer(routes_for({f"/r{i}": p for i, p in enumerate(pages)})) as srv:
        items = [(f"{srv.base}/r{i}", f"Item {i}", ago(1)) for i in range(2)]
        srv.routes["/sitemap.xml"] = Served(sitemap(items), "application/xml")
        added = waikan(
            "sources",
            "add",
            f"{srv.base}/sitemap.xml",
            "--backfill",
            "5",
            "--include-regex",
            "zzqx[0-9]{3}nomatch",
            env=ENV,
        )
        assert added.code == 0, added.err
        result = waikan("fetch", env=ENV)
        assert result.code == 3
        assert {(r["status"], r["reason"]) for r in rows(waikan)} == {("rejected", "filtered")}


def test_sitemap_index(waikan) -> None:  # type: ignore[no-untyped-def]
    pages = corpus_pages(2, offset=12)
    with PageServer(routes_for({f"/s{i}": p for i, p in enumerate(pages)})) as srv:
        index = (
            '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"<sitemap><loc>{srv.base}/news-1.xml</loc></sitemap>"
            f"<sitemap><loc>{srv.base}/news-2.xml.gz</loc></sitemap></sitemapindex>"
        ).encode()
        import gzip

        srv.routes["/index.xml"] = raw(index, "application/xml")
        srv.routes["/news-1.xml"] = raw(sitemap([(f"{srv.base}/s0", "A", ago(1))]), "text/xml")
        srv.routes["/news-2.xml.gz"] = raw(
            gzip.compress(sitemap([(f"{srv.base}/s1", "B", ago(1))])), "application/gzip"
        )
        added = waikan("sources", "add", f"{srv.base}/index.xml", "--backfill", "9", env=ENV)
        assert added.code == 0, added.err
        assert "(sitemap); 2 items listed, 2 taken now" in added.out
        assert waikan("fetch", env=ENV).code == 0
        assert sorted(r["url"] for r in rows(waikan)) == [f"{srv.base}/s0", f"{srv.base}/s1"]


def test_malformed_feed_reported_others_go_on(waikan) -> None:  # type: ignore[no-untyped-def]
    pages = corpus_pages(2, offset=14)
    with PageServer(routes_for({f"/m{i}": p for i, p in enumerate(pages)})) as srv:
        good = Served(rss([]), "application/rss+xml", etag=None)
        bad = Served(rss([]), "application/rss+xml", etag=None)
        srv.routes.update({"/good.xml": good, "/bad.xml": bad})
        assert waikan("sources", "add", f"{srv.base}/good.xml", "--name", "Good", env=ENV).code == 0
        assert waikan("sources", "add", f"{srv.base}/bad.xml", "--name", "Bad", env=ENV).code == 0
        good.set(rss([(f"{srv.base}/m0", "Fresh", ago(0.5))]), None)
        bad.set(b"<rss><channel><item><title>broken &bogus; <<<", None)
        result = waikan("fetch", "--now", env=ENV)
        assert result.code == 1
        errors = result.err.splitlines()
        assert len(errors) == 1 and errors[0].startswith("waikan: error: source Bad: ")
        assert "malformed feed" in errors[0] or "not a feed" in errors[0]
        assert [r["url"] for r in rows(waikan)] == [f"{srv.base}/m0"]
        listed = {
            s["name"]: s
            for s in map(json.loads, waikan("sources", "list", "--json").out.split("\n")[:-1])
        }
        assert listed["Bad"]["last_status"] == "error" and listed["Good"]["last_status"] == "ok"


def test_retries_on_503_and_429(waikan) -> None:  # type: ignore[no-untyped-def]
    pages = corpus_pages(2, offset=16)
    with PageServer({}) as srv:
        srv.routes["/t0"] = flaky([503, 502], pages[0])
        srv.routes["/t1"] = flaky([429], pages[1], retry_after="0")
        items = [(f"{srv.base}/t{i}", f"T{i}", ago(1)) for i in range(2)]
        srv.routes["/feed.xml"] = Served(rss(items), "application/rss+xml")
        assert add(waikan, f"{srv.base}/feed.xml", "--backfill", "2", env=ENV) == 0
        result = waikan("fetch", env=ENV)
        assert result.code == 0, result.err
        assert {r["status"] for r in rows(waikan)} == {"extracted"}
        assert srv.hits.count("/t0") == 3 and srv.hits.count("/t1") == 2


def test_long_retry_after_is_left_for_a_later_run(waikan) -> None:  # type: ignore[no-untyped-def]
    with PageServer({"/busy": flaky([429] * 5, b"", retry_after="3600")}) as srv:
        srv.routes["/feed.xml"] = Served(rss([(f"{srv.base}/busy", "B", ago(1))]), "text/xml")
        assert add(waikan, f"{srv.base}/feed.xml", "--backfill", "1", env=ENV) == 0
        result = waikan("fetch", env=ENV)
        assert srv.hits.count("/busy") == 1  # no retry within the run: an hour is too long
    assert result.code == 1 and "HTTP 429" in result.err
    (row,) = rows(waikan)
    assert row["status"] == "discovered"


def test_down_page_stays_discovered_then_fails(waikan) -> None:  # type: ignore[no-untyped-def]
    env = ENV | {"WAIKAN_FETCH_RETRIES": "0", "WAIKAN_FETCH_MAX_ATTEMPTS": "2"}
    with PageServer({"/down": flaky([503] * 10, b"")}) as srv:
        srv.routes["/feed.xml"] = Served(rss([(f"{srv.base}/down", "D", ago(1))]), "text/xml")
        assert add(waikan, f"{srv.base}/feed.xml", "--backfill", "1", env=env) == 0
        first = waikan("fetch", env=env)
        assert first.code == 1 and "will retry" in first.err
        assert [r["status"] for r in rows(waikan)] == ["discovered"]
        second = waikan("fetch", env=env)
        assert second.code == 1
        assert [(r["status"], "HTTP 503" in r["reason"]) for r in rows(waikan)] == [
            ("failed", True)
        ]


def test_slow_page_times_out_and_stays_discovered(waikan) -> None:  # type: ignore[no-untyped-def]
    env = ENV | {"WAIKAN_FETCH_TIMEOUT": "0.5", "WAIKAN_FETCH_RETRIES": "0"}
    with PageServer({"/slow": slow}) as srv:
        srv.routes["/feed.xml"] = Served(rss([(f"{srv.base}/slow", "S", ago(1))]), "text/xml")
        assert add(waikan, f"{srv.base}/feed.xml", "--backfill", "9", env=env) == 0
        result = waikan("fetch", env=env)
    assert result.code == 1 and "timed out after 0.5 s" in result.err
    (row,) = rows(waikan)
    assert row["status"] == "discovered" and "timed out" in row["reason"]


def test_endless_body_and_bombs_are_cut_and_rejected_for_good(waikan, home: Path) -> None:  # type: ignore[no-untyped-def]
    """Over fetch.max_bytes is the page's fault: ``rejected``/``too_large``, never fetched again."""
    env = ENV | {"WAIKAN_FETCH_MAX_BYTES": "1000000", "WAIKAN_FETCH_RETRIES": "0"}
    routes = {"/endless": endless, "/gz": gzip_bomb, "/br": brotli_bomb, "/deflate": deflate_bomb}
    with PageServer(dict(routes)) as srv:
        items = [(f"{srv.base}{p}", p, ago(1)) for p in routes]
        srv.routes["/feed.xml"] = Served(rss(items), "application/rss+xml")
        assert add(waikan, f"{srv.base}/feed.xml", "--backfill", "9", env=env) == 0
        result = waikan("fetch", env=env)
        pages = sorted(h for h in srv.hits if h in routes)
        again = waikan("fetch", "--now", env=env)
        pages_again = sorted(h for h in srv.hits if h in routes)
    assert result.code == 3 and result.err == "", result.err  # rejections, no errors
    assert again.code == 0 and again.err == "", again.err
    assert pages == sorted(routes) and pages_again == pages  # not retried
    state = {r["url"].rsplit("/", 1)[1]: (r["status"], r["reason"] or "") for r in rows(waikan)}
    assert set(state) == {"endless", "gz", "br", "deflate"}
    for name, (status, reason) in state.items():
        assert status == "rejected", (name, status, reason)
        assert reason.startswith("too_large: ") and "larger than fetch.max_bytes" in reason
    from waikan.store import open_store

    store = open_store(f"sqlite:///{home / 'waikan.db'}")  # or its database in pg mode
    try:
        assert [a.raw_id for a in store.articles()] == [None] * 4  # nothing archived
    finally:
        store.close()


def test_feed_cap_is_max_feed_bytes(waikan) -> None:  # type: ignore[no-untyped-def]
    env = ENV | {"WAIKAN_FETCH_MAX_FEED_BYTES": "2048"}
    with PageServer({}) as srv:
        items = [(f"{srv.base}/x{i}", "x" * 50, ago(1)) for i in range(100)]
        srv.routes["/big.xml"] = Served(rss(items), "application/rss+xml")
        result = waikan("sources", "add", f"{srv.base}/big.xml", env=env)
    assert_one_line_error(result)
    assert "fetch.max_feed_bytes" in result.err
    assert waikan("sources", "list").out == ""


@pytest.mark.parametrize(
    ("encoding", "content_type", "expected"),
    [
        ("gbk", "text/html", "中国外交部长王毅周四在华盛顿与美国国务卿布林肯会谈"),
        ("cp1252", "text/html", "\u201cWe\u2019re at a caf\u00e9,\u201d she said"),
        ("gbk", "text/html; charset=GBK", "中国外交部长王毅周四在华盛顿与美国国务卿布林肯会谈"),
    ],
)
def test_charset_detected_without_header(  # type: ignore[no-untyped-def]
    waikan, home: Path, encoding: str, content_type: str, expected: str
) -> None:
    para = f"<p>{expected} " + " ".join(["word"] * 30) + "</p>"
    html = (
        "<html><head><title>Charset test</title></head><body><article><h1>Charset test</h1>"
        + para * 6
        + "</article></body></html>"
    ).encode(encoding)
    env = ENV | {"WAIKAN_EXTRACT_MIN_WORDS": "0"}
    with PageServer({"/page": raw(html, content_type)}) as srv:
        srv.routes["/feed.xml"] = Served(rss([(f"{srv.base}/page", "C", ago(1))]), "text/xml")
        assert add(waikan, f"{srv.base}/feed.xml", "--backfill", "1", env=env) == 0
        result = waikan("fetch", env=env)
        assert result.code == 0, result.err
    from waikan.store import open_store

    store = open_store(f"sqlite:///{home / 'waikan.db'}")  # or its database in pg mode
    try:
        (article,) = store.articles()
    finally:
        store.close()
    assert expected in article.paragraphs[0]


class HostGate:
    """Wraps every page route of one host: peak requests in flight and request start times."""

    def __init__(self, routes: dict[str, Route], hold: float) -> None:
        self.peak = 0
        self.active = 0
        self.starts: list[float] = []
        self.hold = hold
        self._lock = threading.Lock()
        self.routes = {path: self.wrap(route) for path, route in routes.items()}

    def wrap(self, route: Route) -> Route:
        def answer(h):  # type: ignore[no-untyped-def]
            with self._lock:
                self.active += 1
                self.peak = max(self.peak, self.active)
                self.starts.append(time.monotonic())
            try:
                time.sleep(self.hold)
                route(h)
            finally:
                with self._lock:
                    self.active -= 1

        return answer

    def span(self) -> float:
        return max(self.starts) - min(self.starts)

    def gaps(self) -> list[float]:
        starts = sorted(self.starts)
        return [b - a for a, b in itertools.pairwise(starts)]


def test_per_host_concurrency_limit(waikan) -> None:  # type: ignore[no-untyped-def]
    pages = corpus_pages(6, offset=20)
    gate = HostGate({f"/c{i}": raw(p) for i, p in enumerate(pages)}, hold=0.2)
    with PageServer(dict(gate.routes)) as srv:
        items = [(f"{srv.base}{path}", path, ago(1)) for path in gate.routes]
        srv.routes["/feed.xml"] = Served(rss(items), "application/rss+xml")
        assert add(waikan, f"{srv.base}/feed.xml", "--backfill", "9", env=ENV) == 0
        result = waikan("fetch", env=ENV)
    assert result.code in (0, 3), result.err
    assert len(gate.starts) == 6 and gate.peak == 2  # the default: two at once per host


def test_per_host_minimum_delay(waikan) -> None:  # type: ignore[no-untyped-def]
    pages = corpus_pages(4, offset=20)
    gate = HostGate({f"/e{i}": raw(p) for i, p in enumerate(pages)}, hold=0)
    env = ENV | {"WAIKAN_FETCH_HOST_DELAY": "0.2", "WAIKAN_FETCH_PER_HOST": "4"}
    with PageServer(dict(gate.routes)) as srv:
        items = [(f"{srv.base}{path}", path, ago(1)) for path in gate.routes]
        srv.routes["/feed.xml"] = Served(rss(items), "application/rss+xml")
        assert add(waikan, f"{srv.base}/feed.xml", "--backfill", "9", env=env) == 0
        assert waikan("fetch", env=env).code in (0, 3)
    # Starts are spaced by the client; the server sees them with some scheduling jitter.
    assert len(gate.starts) == 4 and gate.span() >= 0.5 and min(gate.gaps()) >= 0.1, gate.gaps()


def test_robots_txt_request_counts_toward_the_host_delay(waikan) -> None:  # type: ignore[no-untyped-def]
    """robots.txt is a request like any other: the first page waits ``host_delay`` after it."""
    pages = corpus_pages(2, offset=20)
    robots = raw(b"User-agent: *\nAllow: /\n", "text/plain")
    gate = HostGate({"/robots.txt": robots} | {f"/r{i}": raw(p) for i, p in enumerate(pages)}, 0)
    env = ENV | {"WAIKAN_FETCH_HOST_DELAY": "0.3", "WAIKAN_FETCH_PER_HOST": "4"}
    with PageServer(dict(gate.routes)) as srv:
        items = [(f"{srv.base}/r{i}", f"R{i}", ago(1)) for i in range(len(pages))]
        srv.routes["/feed.xml"] = Served(rss(items), "application/rss+xml")
        assert add(waikan, f"{srv.base}/feed.xml", "--backfill", "9", env=env) == 0
        gate.starts.clear()  # the poll's robots.txt; `fetch` is a new process with a new cache
        assert waikan("fetch", env=env).code in (0, 3)
    assert len(gate.starts) == 3, gate.starts  # robots.txt, then the two pages
    assert min(gate.gaps()) >= 0.15, gate.gaps()


def test_robots_crawl_delay_honoured(waikan) -> None:  # type: ignore[no-untyped-def]
    pages = corpus_pages(3, offset=26)
    gate = HostGate({f"/d{i}": raw(p) for i, p in enumerate(pages)}, hold=0)
    with PageServer(dict(gate.routes)) as srv:
        srv.routes["/robots.txt"] = raw(b"User-agent: waikan\nCrawl-delay: 0.3\n", "text/plain")
        items = [(f"{srv.base}{p}", p, ago(1)) for p in gate.routes]
        srv.routes["/feed.xml"] = Served(rss(items), "application/rss+xml")
        assert add(waikan, f"{srv.base}/feed.xml", "--backfill", "9", env=ENV) == 0
        assert waikan("fetch", env=ENV).code in (0, 3)
    assert len(gate.starts) == 3 and gate.span() >= 0.5 and min(gate.gaps()) >= 0.15, gate.gaps()


def test_redirect_to_private_address_refused_with_guard_on(waikan) -> None:  # type: ignore[no-untyped-def]
    """With the guard on, a loopback source is refused before any byte is sent."""
    with PageServer({"/feed.xml": redirect("http://169.254.169.254/latest/")}) as srv:
        result = waikan("sources", "add", f"{srv.base}/feed.xml")
        assert srv.hits == []
    assert_one_line_error(result)
    assert "private address" in result.err
    assert waikan("sources", "list").out == ""
