"""Feeds, sitemaps and misbehaving answers for the loopback PageServer (tests of sources)."""

from __future__ import annotations

import functools
import gzip
import json
import threading
import zlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"

Route = Callable[[BaseHTTPRequestHandler], None]


def corpus_pages(n: int, offset: int = 0) -> list[bytes]:
    """``n`` real news pages from ../shared/corpus (naeb-dev), decompressed."""
    paths = sorted((CORPUS / "naeb-dev" / "html").glob("*.html.gz"))[offset : offset + n]
    assert len(paths) == n, f"corpus has {len(paths)} pages, {n} wanted"
    return [gzip.decompress(p.read_bytes()) for p in paths]


def ago(hours: float) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours)


def rss(items: Sequence[tuple[str, str, datetime | None]], title: str = "Test Wire") -> bytes:
    """RSS 2.0 with (link, title, published) items."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rss version="2.0"><channel>',
        f"<title>{escape(title)}</title><link>http://example.invalid/</link>",
    ]
    for link, item_title, published in items:
        date = f"<pubDate>{format_datetime(published)}</pubDate>" if published else ""
        parts.append(
            f"<item><title>{escape(item_title)}</title><link>{escape(link)}</link>"
            f"<guid>{escape(link)}</guid>{date}<description>About {escape(item_title)}"
            "</description></item>"
        )
    parts.append("</channel></rss>")
    return "\n".join(parts).encode()


def atom(items: Sequence[tuple[str, str, datetime | None]], title: str = "Atom Wire") -> bytes:
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        f"<title>{escape(title)}</title><id>urn:test</id><updated>2023-10-27T00:00:00Z</updated>",
    ]
    for link, item_title, published in items:
        stamp = (published or ago(1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        parts.append(
            f"<entry><title>{escape(item_title)}</title>"
            f'<link rel="alternate" href="{escape(link)}"/>'
            f"<id>{escape(link)}</id><updated>{stamp}</updated><published>{stamp}</published>"
            "</entry>"
        )
    parts.append("</feed>")
    return "\n".join(parts).encode()


def json_feed(items: Sequence[tuple[str, str, datetime | None]], title: str = "JSON Wire") -> bytes:
    return json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": title,
            "items": [
                {
                    "id": link,
                    "url": link,
                    "title": t,
                    **({"date_published": p.isoformat()} if p else {}),
                }
                for link, t, p in items
            ],
        }
    ).encode()


def sitemap(items: Sequence[tuple[str, str, datetime | None]]) -> bytes:
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">',
    ]
    for link, title, published in items:
        stamp = (published or ago(1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        parts.append(
            f"<url><loc>{escape(link)}</loc><news:news><news:publication>"
            "<news:name>Test</news:name><news:language>en</news:language></news:publication>"
            f"<news:publication_date>{stamp}</news:publication_date>"
            f"<news:title>{escape(title)}</news:title></news:news></url>"
        )
    parts.append("</urlset>")
    return "\n".join(parts).encode()


class Served:
    """A mutable answer: body, content type and ETag; answers 304 to a matching If-None-Match.

    Records the conditional headers of every request in ``conditional``.
    """

    def __init__(
        self,
        body: bytes,
        content_type: str,
        etag: str | None = '"v1"',
        last_modified: str | None = None,
    ) -> None:
        self.body = body
        self.content_type = content_type
        self.etag = etag
        self.last_modified = last_modified
        self.conditional: list[str | None] = []
        self.since: list[str | None] = []
        self.not_modified = 0

    def set(self, body: bytes, etag: str | None) -> None:
        self.body, self.etag = body, etag

    def __call__(self, h: BaseHTTPRequestHandler) -> None:
        sent = h.headers.get("If-None-Match")
        since = h.headers.get("If-Modified-Since")
        self.conditional.append(sent)
        self.since.append(since)
        fresh = (self.etag and sent == self.etag) or (
            not self.etag and self.last_modified and since == self.last_modified
        )
        if fresh:
            self.not_modified += 1
            h.send_response(304)
            if self.etag:
                h.send_header("ETag", self.etag)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        h.send_response(200)
        h.send_header("Content-Type", self.content_type)
        if self.etag:
            h.send_header("ETag", self.etag)
        if self.last_modified:
            h.send_header("Last-Modified", self.last_modified)
        h.send_header("Content-Length", str(len(self.body)))
        h.end_headers()
        h.wfile.write(self.body)


def raw(body: bytes, content_type: str = "text/html", status: int = 200, **headers: str) -> Route:
    def answer(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        for key, value in headers.items():
            h.send_header(key.replace("_", "-"), value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return answer


def flaky(failures: Sequence[int], then: bytes, retry_after: str | None = None) -> Route:
    """Answer each status of ``failures`` in turn (503, 429…), then 200 with ``then``."""
    left = list(failures)
    lock = threading.Lock()

    def answer(h: BaseHTTPRequestHandler) -> None:
        with lock:
            status = left.pop(0) if left else 200
        if status != 200:
            h.send_response(status)
            if retry_after is not None:
                h.send_header("Retry-After", retry_after)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        raw(then, "text/html; charset=utf-8")(h)

    return answer


class Concurrency:
    """Wraps a route and records the most requests it ever had in flight at once."""

    def __init__(self, route: Route, hold: float = 0.05) -> None:
        self.route = route
        self.hold = hold
        self.active = 0
        self.peak = 0
        self.starts: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, h: BaseHTTPRequestHandler) -> None:
        import time

        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
            self.starts.append(time.monotonic())
        try:
            time.sleep(self.hold)
            self.route(h)
        finally:
            with self._lock:
                self.active -= 1


@functools.cache
def _bomb(kind: str) -> bytes:
    import brotli

    zeros = b"\0" * (64 * 1024 * 1024)
    return brotli.compress(zeros, quality=5) if kind == "br" else zlib.compress(zeros, 9)


def brotli_bomb(h: BaseHTTPRequestHandler) -> None:
    """64 MiB of zeros, a few KiB on the wire (Content-Encoding: br)."""
    body = _bomb("br")
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Content-Encoding", "br")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def deflate_bomb(h: BaseHTTPRequestHandler) -> None:
    body = _bomb("deflate")
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Content-Encoding", "deflate")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def routes_for(pages: dict[str, bytes]) -> dict[str, Any]:
    return {path: raw(body, "text/html; charset=utf-8") for path, body in pages.items()}
