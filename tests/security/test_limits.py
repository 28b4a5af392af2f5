"""Resource limits end to end: hostile pages and feeds over loopback, through the CLI.

Each over-limit article is stored ``rejected`` with its reason (``too_large``,
``too_deep``, ``timeout``, ``memory``) and the run goes on; an endless or
compressed-bomb feed is cut at ``fetch.max_feed_bytes`` and reported while
the other sources go on; a source filter cannot backtrack catastrophically.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from tests.conftest import Result, run_proc
from tests.servers.feeds import Served, ago, brotli_bomb, corpus_pages, deflate_bomb, raw, rss
from tests.servers.pages import PageServer, endless, gzip_bomb

ENV = {
    "WAIKAN_FETCH_ALLOW_PRIVATE_NETWORKS": "true",
    "WAIKAN_FETCH_HOST_DELAY": "0",
    "WAIKAN_FETCH_BACKOFF": "0.01",
    "WAIKAN_FETCH_RETRIES": "0",
}

# 100,000 levels of <div>: lxml and any recursive walk of the tree would pay for each.
DEEP = b"<html><body>" + b"<div>" * 100_000 + b"x" + b"</div>" * 100_000 + b"</body></html>"
# 50 MB on one line: regexes over "the rest of the line" see all of it.
HUGE = b"<html><body><p>" + b"word " * (10 * 1024 * 1024) + b"</p></body></html>"
# 1.1 MB of tiny paragraphs: ~10 s of CPU and ~250 MB to extract without limits.
COSTLY = b"<html><body>" + b"<p>word</p>" * 100_000 + b"</body></html>"
# 3.3 MB of them: ~30 s of CPU, against ~0.5 s for the costliest real page beside it.
COSTLIER = b"<html><body>" + b"<p>word</p>" * 300_000 + b"</body></html>"


def deep_json_ld(page: bytes) -> bytes:
    """A real article carrying JSON-LD nested 100,000 levels deep."""
    script = b'<script type="application/ld+json">' + b'{"a":[' * 100_000 + b"]}" * 100_000
    return page.replace(b"</head>", script + b"</script></head>", 1)


def rows(waikan) -> dict[str, dict]:  # type: ignore[no-untyped-def,type-arg]
    listed = [json.loads(line) for line in waikan("list", "--json").out.splitlines()]
    return {r["url"].rsplit("/", 1)[1]: r for r in listed}


def test_hostile_pages_from_a_feed_are_rejected_and_the_run_goes_on(waikan) -> None:  # type: ignore[no-untyped-def]
    good, carrier = corpus_pages(2, offset=30)
    pages = {"deep": DEEP, "huge": HUGE, "costly": COSTLIER, "jsonld": deep_json_ld(carrier)}
    pages["ok"] = good
    # a deadline far from both: the real pages cannot miss it however loaded the machine
    env = ENV | {
        "WAIKAN_FETCH_MAX_BYTES": str(64 * 2**20),
        "WAIKAN_EXTRACT_TIMEOUT": "8",
        "WAIKAN_EXTRACT_MEMORY_MB": "4096",
    }
    with PageServer({f"/{name}": body for name, body in pages.items()}) as srv:
        items = [(f"{srv.base}/{name}", name, ago(1)) for name in pages]
        srv.routes["/feed.xml"] = Served(rss(items), "application/rss+xml")
        added = waikan("sources", "add", f"{srv.base}/feed.xml", "--backfill", "9", env=env)
        assert added.code == 0, added.err
        result = waikan("fetch", env=env)
    assert result.code == 3, result.err  # rejections, no errors
    got = {name: (r["status"], r["reason"]) for name, r in rows(waikan).items()}
    assert got == {
        "deep": ("rejected", "too_deep"),
        "huge": ("rejected", "too_large"),
        "costly": ("rejected", "timeout"),
        "jsonld": ("extracted", None),  # the nesting is skipped, the article is not lost
        "ok": ("extracted", None),
    }
    assert rows(waikan)["jsonld"]["title"]


def test_cpu_and_memory_limits_when_adding_pages(waikan) -> None:  # type: ignore[no-untyped-def]
    (good,) = corpus_pages(1, offset=31)
    with PageServer({"/costly": COSTLY, "/ok": good}) as srv:

        def add(path: str, **settings: str) -> Result:
            result: Result = waikan("add", "--json", f"{srv.base}{path}", env=ENV | settings)
            return result

        timed_out = add("/costly", WAIKAN_EXTRACT_TIMEOUT="1")
        assert timed_out.code == 3, timed_out.err
        assert json.loads(timed_out.out)["reason"] == "timeout"
        srv.routes["/costly2"] = COSTLY + b"<!-- other bytes: not the stored page -->"
        over = add("/costly2", WAIKAN_EXTRACT_MEMORY_MB="64")
        assert over.code == 3, over.err
        assert json.loads(over.out)["reason"] == "memory"
        # the workers those limits killed are replaced: the next page extracts as usual
        fine = add("/ok")
        assert fine.code == 0, fine.err
        assert json.loads(fine.out)["status"] == "extracted"
    assert {r["reason"] for r in rows(waikan).values()} == {"timeout", "memory", None}


def test_add_over_fetch_max_bytes_is_rejected_too_large(waikan, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A file or URL over fetch.max_bytes: a ``too_large`` article, like any rejection of add."""
    from waikan.store import open_store

    env = ENV | {"WAIKAN_FETCH_MAX_BYTES": "100000"}
    big = tmp_path / "big.html"
    big.write_bytes(b"<html><body><p>" + b"word " * 30_000 + b"</p></body></html>")
    bomb = tmp_path / "bomb.html.gz"
    bomb.write_bytes(gzip.compress(b"<p>" + b"a" * 10_000_000))
    with PageServer({"/endless": endless, "/gz": gzip_bomb}) as srv:
        added = {
            name: waikan("add", "--json", str(item), env=env)
            for name, item in [
                ("big", big),
                ("bomb", bomb),
                ("endless", f"{srv.base}/endless"),
                ("gz", f"{srv.base}/gz"),
            ]
        }
        again = waikan("add", "--json", str(big), f"{srv.base}/gz", env=env)
        hits = sorted(srv.hits)
    details = {
        "big": "150,033 bytes is over fetch.max_bytes (100,000)",
        "bomb": "over fetch.max_bytes (100,000) once decompressed",
        "endless": "response larger than fetch.max_bytes (100,000 bytes)",
        "gz": "response larger than fetch.max_bytes (100,000 bytes)",
    }
    got = {}
    for name, result in added.items():
        assert result.code == 3 and result.err == "", (name, result.err)  # a rejection, no error
        got[name] = json.loads(result.out)
        assert got[name]["status"] == "rejected", got[name]
        reason = got[name]["reason"]
        assert reason.startswith("too_large: ") and details[name] in reason, reason
    # adding them again finds the rows: the file is not read, the URL not fetched again
    assert again.code == 3, again.err
    assert [json.loads(line)["id"] for line in again.out.splitlines()] == [
        got["big"]["id"],
        got["gz"]["id"],
    ]
    assert hits == ["/endless", "/gz"]
    store = open_store(f"sqlite:///{home / 'waikan.db'}")  # or its database in pg mode
    try:
        articles = store.articles()
        assert len(articles) == 4
        for article in articles:  # none of their bytes archived
            assert article.raw_id is not None and store.raw_content(article.raw_id) == b""
    finally:
        store.close()


def test_endless_and_bomb_feeds_are_cut_and_other_sources_go_on(waikan) -> None:  # type: ignore[no-untyped-def]
    (page,) = corpus_pages(1, offset=32)
    hostile = {"endless": endless, "gz": gzip_bomb, "br": brotli_bomb, "deflate": deflate_bomb}
    env = ENV | {"WAIKAN_FETCH_MAX_FEED_BYTES": "1000000"}
    with PageServer({"/story": page}) as srv:
        feeds = {name: Served(rss([]), "application/rss+xml", etag=None) for name in hostile}
        feeds["good"] = Served(rss([]), "application/rss+xml", etag=None)
        for name, feed in feeds.items():
            srv.routes[f"/{name}.xml"] = feed
            added = waikan("sources", "add", f"{srv.base}/{name}.xml", "--name", name, env=env)
            assert added.code == 0, added.err
        feeds["good"].set(rss([(f"{srv.base}/story", "Fresh", ago(0.5))]), None)
        for name, route in hostile.items():
            srv.routes[f"/{name}.xml"] = route
        result = waikan("fetch", "--now", env=env)
    assert result.code == 1
    errors = sorted(result.err.splitlines())
    assert len(errors) == len(hostile), result.err
    for line, name in zip(errors, sorted(hostile), strict=True):
        assert line.startswith(f"waikan: error: source {name}: "), line
        assert "larger than fetch.max_feed_bytes" in line, line
    assert {n: (r["status"], r["reason"]) for n, r in rows(waikan).items()} == {
        "story": ("extracted", None)
    }


def test_source_filter_cannot_backtrack_catastrophically(home: Path) -> None:
    """``(a+)+$`` against a run of a's that ends otherwise: 2**n steps for a backtracking engine.

    Real processes with a deadline: were the filter a backtracking one, the run would
    never finish and ``run_proc`` would raise TimeoutExpired instead of hanging the suite.
    """
    page = corpus_pages(1, offset=33)[0]
    run = "a" * 20_000
    with PageServer({"/kept": page, "/dropped": page}) as srv:
        items = [(f"{srv.base}/kept", run + "!", ago(1)), (f"{srv.base}/dropped", run, ago(1))]
        srv.routes["/feed.xml"] = raw(rss(items), "application/rss+xml")

        def waikan(*args: str) -> Result:
            return run_proc(["--home", str(home), *args], env=ENV, timeout=300)

        added = waikan(
            "sources", "add", f"{srv.base}/feed.xml", "--backfill", "9", "--exclude-regex", "(a+)+$"
        )
        assert added.code == 0, added.err
        assert "1 taken now" in added.out, added.out
        fetched = waikan("fetch")
        assert fetched.code == 0, fetched.err
        listed = [json.loads(line) for line in waikan("list", "--json").out.splitlines()]
    assert [(r["url"].rsplit("/", 1)[1], r["status"]) for r in listed] == [("kept", "extracted")]
