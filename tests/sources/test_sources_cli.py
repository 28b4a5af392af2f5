"""``waikan sources`` commands, OPML, WARC and folder sources, ``run`` and ``serve``; bad input."""

from __future__ import annotations

import gzip
import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.conftest import _CLEAN, ROOT, assert_one_line_error
from tests.servers.feeds import Served, ago, corpus_pages, raw, routes_for, rss
from tests.servers.pages import PageServer
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

ENV = {"WAIKAN_FETCH_ALLOW_PRIVATE_NETWORKS": "true", "WAIKAN_FETCH_HOST_DELAY": "0"}

OPML = b"""<?xml version="1.0"?>
<opml version="2.0"><head><title>My feeds</title></head><body>
  <outline text="World">
    <outline type="rss" text="Reuters World" xmlUrl="https://feeds.example.com/world.xml?utm_source=x"/>
    <outline type="rss" text="BBC" title="BBC News" xmlUrl="https://feeds.bbci.co.uk/news/rss.xml"
             category="/uk,europe"/>
  </outline>
  <outline type="rss" text="NPR" xmlUrl="https://feeds.npr.org/1001/rss.xml"/>
  <outline type="rss" text="Bad scheme" xmlUrl="ftp://example.com/feed"/>
</body></opml>"""


def write_warc(path: Path, pages: list[tuple[str, bytes]], *, cut: int = 0) -> None:
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True)
    for url, body in pages:
        headers = StatusAndHeaders(
            "200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1"
        )
        record = writer.create_warc_record(
            url, "response", payload=io.BytesIO(body), http_headers=headers
        )
        writer.write_record(record)
    data = buf.getvalue()
    path.write_bytes(data[: len(data) - cut] if cut else data)


def rows(waikan) -> list[dict]:  # type: ignore[no-untyped-def]
    return [json.loads(line) for line in waikan("list", "--json").out.splitlines()]


def sources(waikan) -> list[dict]:  # type: ignore[no-untyped-def]
    return [json.loads(line) for line in waikan("sources", "list", "--json").out.splitlines()]


def test_opml_import_export_roundtrip(waikan, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "feeds.opml").write_bytes(OPML)
    result = waikan("sources", "import-opml", str(tmp_path / "feeds.opml"))
    assert result.code == 0
    assert "imported 3 sources" in result.out and "1 skipped" in result.out
    assert "only http and https" in result.err
    got = {s["url"]: s for s in sources(waikan)}
    assert set(got) == {
        "https://feeds.example.com/world.xml",
        "https://feeds.bbci.co.uk/news/rss.xml",
        "https://feeds.npr.org/1001/rss.xml",
    }
    assert got["https://feeds.bbci.co.uk/news/rss.xml"]["tags"] == ["World", "uk", "europe"]
    assert got["https://feeds.bbci.co.uk/news/rss.xml"]["name"] == "BBC News"
    # importing again adds nothing
    assert (
        "imported 0 sources" in waikan("sources", "import-opml", str(tmp_path / "feeds.opml")).out
    )
    out = tmp_path / "out.opml"
    assert waikan("sources", "export-opml", "-o", str(out)).code == 0
    from waikan.sources.opml import parse_opml

    back = {f.url: f for f in parse_opml(out.read_bytes(), "out")}
    assert set(back) == set(got)
    assert back["https://feeds.bbci.co.uk/news/rss.xml"].tags == ("World", "uk", "europe")
    assert waikan("sources", "export-opml").out.startswith("<?xml")


def test_sources_remove_keeps_articles(waikan, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pages = corpus_pages(1, offset=40)
    with PageServer(routes_for({"/x": pages[0]})) as srv:
        srv.routes["/feed.xml"] = Served(rss([(f"{srv.base}/x", "X", ago(1))]), "text/xml")
        assert (
            waikan("sources", "add", f"{srv.base}/feed.xml", "--backfill", "1", env=ENV).code == 0
        )
        assert waikan("fetch", env=ENV).code == 0
    assert waikan("sources", "remove", "1").code == 0
    assert sources(waikan) == []
    assert len(rows(waikan)) == 1
    assert_one_line_error(waikan("sources", "remove", "1"))


def test_warc_source_needs_no_network(waikan, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pages = corpus_pages(3, offset=30)
    warc = tmp_path / "cc-news.warc.gz"
    write_warc(warc, [(f"https://news.example/{i}", p) for i, p in enumerate(pages)])
    added = waikan("sources", "add", str(warc))
    assert added.code == 0, added.err
    assert "(warc)" in added.out
    first = waikan("fetch")  # the guard is on: any network access would be refused
    assert first.code in (0, 3), first.err
    got = rows(waikan)
    assert sorted(r["url"] for r in got) == [f"https://news.example/{i}" for i in range(3)]
    assert waikan("fetch", "--now").code == 0
    assert len(rows(waikan)) == 3  # a second poll stores nothing twice


def test_truncated_warc_reported(waikan, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pages = corpus_pages(3, offset=30)
    warc = tmp_path / "cut.warc.gz"
    write_warc(warc, [(f"https://news.example/{i}", p) for i, p in enumerate(pages)], cut=300)
    assert waikan("sources", "add", str(warc)).code == 0
    result = waikan("fetch")
    assert_one_line_error(result)
    assert "truncated or corrupt WARC" in result.err
    assert len(rows(waikan)) == 2  # the whole records before the cut are kept


def test_folder_source(waikan, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "saved"
    folder.mkdir()
    for i, page in enumerate(corpus_pages(2, offset=33)):
        (folder / f"p{i}.html.gz").write_bytes(gzip.compress(page))
    assert waikan("sources", "add", str(folder), "--name", "Saved").code == 0
    assert waikan("fetch").code in (0, 3)
    assert len(rows(waikan)) == 2
    (folder / "p9.html").write_bytes(corpus_pages(1, offset=35)[0])
    assert waikan("fetch", "--now").code in (0, 3)
    assert len(rows(waikan)) == 3
    # a file over fetch.max_bytes is the file's fault: rejected too_large once, no error
    (folder / "huge.html").write_bytes(b"<p>" + b"x" * 4096 + b"</p>")
    result = waikan("fetch", "--now", env=ENV | {"WAIKAN_FETCH_MAX_BYTES": "2048"})
    assert result.code == 3 and not result.err, result.err
    huge = [r for r in rows(waikan) if r["url"].endswith("/huge.html")]
    assert [(r["status"], r["reason"].split(":")[0]) for r in huge] == [("rejected", "too_large")]
    assert waikan("fetch", "--now").code in (0, 3)  # seen: not read again
    assert len(rows(waikan)) == 4


def test_run_all_stages_once(waikan) -> None:  # type: ignore[no-untyped-def]
    pages = corpus_pages(2, offset=36)
    with PageServer(routes_for({f"/r{i}": p for i, p in enumerate(pages)})) as srv:
        srv.routes["/feed.xml"] = Served(rss([]), "application/rss+xml")
        env = ENV | {"WAIKAN_SOURCES_EVERY": "0.01"}
        assert waikan("sources", "add", f"{srv.base}/feed.xml", env=env).code == 0
        time.sleep(1)  # the source is due again
        items = [(f"{srv.base}/r{i}", f"R{i}", ago(0.2)) for i in range(2)]
        srv.routes["/feed.xml"] = Served(rss(items), "application/rss+xml", etag='"v2"')
        result = waikan("run", env=env)
        assert result.code in (0, 3), result.err
    lines = result.out.splitlines()
    assert lines[0].startswith("fetch: ")
    assert any(line.startswith("summarize: ") for line in lines)
    statuses = {r["status"] for r in rows(waikan)}
    assert statuses & {"summarized", "approved", "published", "duplicate", "rejected"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--type", "gopher", "https://example.com/feed"], "unknown source type 'gopher'"),
        (["file:///etc/passwd"], "only http and https"),
        (["ftp://example.com/feed.xml"], "only http and https"),
        (["gopher://example.com/1"], "only http and https"),
        (["data:text/xml,<rss/>"], "only http and https"),
        (["--include-regex", "(a)\\1", "https://example.com/f"], "invalid RE2 pattern"),
    ],
)
def test_bad_source_input(waikan, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    result = waikan("sources", "add", *args)
    assert_one_line_error(result)
    assert message in result.err
    assert sources(waikan) == []


def test_feed_url_returning_html(waikan) -> None:  # type: ignore[no-untyped-def]
    page = (
        b'<html><head><link rel="alternate" type="application/rss+xml" href="/rss"></head></html>'
    )
    with PageServer({"/news": raw(page)}) as srv:
        result = waikan("sources", "add", f"{srv.base}/news", env=ENV)
    assert_one_line_error(result)
    assert "is an HTML page, not a feed" in result.err and "/rss" in result.err
    assert sources(waikan) == []


def test_opml_not_xml(waikan, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "feeds.opml"
    bad.write_text("this is { not xml")
    result = waikan("sources", "import-opml", str(bad))
    assert_one_line_error(result)
    assert "not an OPML file" in result.err
    (tmp_path / "rss.opml").write_bytes(rss([]))
    wrong = waikan("sources", "import-opml", str(tmp_path / "rss.opml"))
    assert_one_line_error(wrong)
    assert "root element is <rss>" in wrong.err
    assert_one_line_error(waikan("sources", "import-opml", str(tmp_path / "missing.opml")))


def test_serve_polls_and_stops_on_sigterm(home: Path) -> None:
    pages = corpus_pages(1, offset=38)
    with PageServer(routes_for({"/s0": pages[0]})) as srv:
        feed = Served(rss([]), "application/rss+xml", etag=None)
        srv.routes["/feed.xml"] = feed
        env = _CLEAN | ENV | {"WAIKAN_SOURCES_EVERY": "0.01"}
        base = [sys.executable, "-m", "waikan", "--home", str(home)]
        add = subprocess.run([*base, "sources", "add", f"{srv.base}/feed.xml"], env=env, cwd=ROOT)
        assert add.returncode == 0
        proc = subprocess.Popen(
            [*base, "serve", "--interval", "0.2", "--no-web"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            feed.set(rss([(f"{srv.base}/s0", "S0", ago(0.1))]), None)
            deadline = time.monotonic() + 60
            while "/s0" not in srv.hits and time.monotonic() < deadline:
                time.sleep(0.1)
            assert "/s0" in srv.hits
            time.sleep(0.5)
        finally:
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped" in err and "Traceback" not in err
    listed = subprocess.run(
        [*base, "list", "--json"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert [json.loads(line)["url"] for line in listed.stdout.splitlines()] == [f"{srv.base}/s0"]
