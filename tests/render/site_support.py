"""Helpers for the site tests: posts written through the real store, a loopback file server."""

from __future__ import annotations

import functools
import threading
from dataclasses import replace
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from waikan.config import load
from waikan.models import Extracted, Summary
from waikan.workspace import Workspace

BASE_URL = "https://digest.example.org/news"

SUMMARY = (
    "这篇报道描述了第{n}号测试新闻，讲述一座海滨小镇如何修复旧码头并重新向公众开放。",
    "报道指出，修复工程耗时两年，当地居民和游客都对码头的重新开放表示欢迎。",
    "报道还提到，工程资金来自地方政府和社区捐款，维护费用将由小镇议会承担。",
    "这一报道强调了社区合作在保护历史建筑方面的重要作用。",
)


def extracted(n: int, **changes: Any) -> Extracted:
    base = Extracted(
        title=f"Pier number {n} reopens after restoration",
        source=changes.pop("source", "Test Gazette"),
        published=f"2024-03-{1 + n % 28:02d}T08:{n % 60:02d}:00Z",
        caption=f"The restored pier number {n} at dawn. Photo: Test Agency",
        paragraphs=tuple(
            f"Paragraph {k} of story {n}: the pier reopened to walkers and anglers this week."
            for k in range(1, 6)
        ),
        language="en",
        url=f"https://news.example.com/story-{n}",
    )
    return replace(base, **changes)


def summary(n: int, **changes: Any) -> Summary:
    base = Summary(
        paragraphs=tuple(p.format(n=n) for p in SUMMARY),
        backend="openai",
        model="test-model",
        prompt_version="zh-digest-1",
    )
    return replace(base, **changes)


def add_post(ws: Workspace, n: int, *, url: str | None = None, **changes: Any) -> int:
    """One article with its summary, through the store's own API (as the pipeline writes it)."""
    summary_changes = {
        k: changes.pop(k) for k in list(changes) if k in ("title_zh", "paragraphs_zh")
    }
    if "paragraphs_zh" in summary_changes:
        summary_changes["paragraphs"] = summary_changes.pop("paragraphs_zh")
    ex = extracted(n, **changes)
    record = ws.store.add_article(
        url or ex.url or f"https://news.example.com/{n}", ex, raw=f"page {n} {url}".encode()
    )
    ws.store.add_summary(record.id, summary(n, **summary_changes))
    return record.id


def workspace(home: Path, **settings: Any) -> Workspace:
    overrides = {"site.base_url": BASE_URL, "site.images": "false", **settings}
    return Workspace(load(home, env={}, overrides=overrides))


class SiteServer:
    """Serves a built site folder over loopback HTTP, as a static host would."""

    def __init__(self, root: Path) -> None:
        handler = functools.partial(_Quiet, directory=str(root))
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> SiteServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass
