"""A loopback news site, a loopback model and ``waikan worker`` processes for queue tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import _CLEAN, ROOT
from tests.servers.feeds import ago, corpus_pages, routes_for, rss
from tests.servers.pages import PageServer
from tests.servers.webhook_server import WebhookReceiver

API_KEY = "sk-queue-test-5eed"
MODEL = "deepseek-chat"
ANSWER = "\n\n".join(
    [
        "这篇报道介绍了事件的经过、各方的表态以及接下来可能出现的发展。",
        "报道还援引了当地官员和专家的说法，解释了事件对普通民众的影响。",
    ]
)
# Four paragraphs of 200-700 Chinese characters with no figure, date or name: the guard
# accepts it for every page news_site serves, so each summary costs one call and its
# post goes out (ANSWER is flagged, retried once and left for review: nothing is sent).
PUBLISHABLE = "\n\n".join(
    [
        "这篇报道介绍了事件的经过，各方围绕当前局势进行了坦率的交谈，会谈气氛总体平稳，"
        "参与者都表现出继续沟通的意愿，并希望尽快找到妥善的解决办法。",
        "报道回顾了事件的背景：相关各方的关系近来有所波动，外界普遍关注高层接触能否为缓和紧张局势"
        "创造条件，并为今后的合作奠定基础。",
        "报道还援引了当地官员和专家的说法，解释了事件对普通民众的影响，官员们交换了对若干共同关切问题"
        "的看法，同意保持沟通渠道畅通，避免误判。",
        "报道最后指出，持续对话对于管控分歧和增进互信具有重要意义，即使存在分歧，各方仍然重视通过"
        "协商途径解决问题，局势的发展值得继续关注。",
    ]
)
HOOK_SECRET = "hook-secret-c1u5ter"
BASE_ENV = {
    "WAIKAN_FETCH_ALLOW_PRIVATE_NETWORKS": "true",
    "WAIKAN_FETCH_HOST_DELAY": "0",
    "WAIKAN_FETCH_BACKOFF": "0.01",
    "WAIKAN_SOURCES_MAX_ITEMS": "1000",
    "WAIKAN_QUEUE_LEASE": "20",
    "WAIKAN_QUEUE_VISIBILITY_TIMEOUT": "10",
}


def site_routes(base: str, n: int, hosts: list[str] | None = None) -> dict[str, Any]:
    """``n`` article pages (every 25th is an exact copy of the one before) and /feed.xml.

    ``hosts`` (base URLs each serving these routes): page ``i`` is listed on
    ``hosts[i % len(hosts)]``, so per-host politeness is spread as on a real site mix.
    """
    pages = corpus_pages(min(n, 200))
    routes: dict[str, bytes] = {}
    for i in range(n):
        body = pages[i % len(pages)]
        if i % 25 == 24:
            body = pages[(i - 1) % len(pages)]  # a second URL for the same page
        routes[f"/news/{i}"] = body
    bases = hosts or [base]
    items = [(f"{bases[i % len(bases)]}/news/{i}", f"Story {i}", ago(i / 60)) for i in range(n)]
    out: dict[str, Any] = routes_for(routes)
    out["/feed.xml"] = lambda h: _send(h, rss(items), "application/rss+xml")
    return out


def _send(h: Any, body: bytes, ctype: str) -> None:
    h.send_response(200)
    h.send_header("Content-Type", ctype)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


@contextmanager
def news_site(n: int, first_hits: dict[str, float] | None = None) -> Iterator[PageServer]:
    """``first_hits``: filled with each path's first request time (``time.monotonic()``)."""
    with PageServer({}) as srv:
        routes = site_routes(srv.base, n)
        if first_hits is not None:
            routes = {path: _timed(path, route, first_hits) for path, route in routes.items()}
        srv.routes.update(routes)
        yield srv


def _timed(path: str, route: Any, first_hits: dict[str, float]) -> Any:
    def answer(h: Any) -> None:
        first_hits.setdefault(path, time.monotonic())
        route(h)

    return answer


def publish_to(home: Path, hook: WebhookReceiver) -> dict[str, str]:
    """Give the workspace at ``home`` one destination, the loopback ``hook``; the
    environment its secret needs. Written before the first command: one is kept."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "waikan.toml").write_text(
        f'[publish.hook]\ntype = "webhook"\nurl = "{hook.url}"\nretry_backoff = 0.01\n',
        encoding="utf-8",
    )
    return {"WAIKAN_WEBHOOK_SECRET": HOOK_SECRET}


def cluster_env(
    home: Path, store_url: str, queue_url: str, llm_url: str, **extra: str
) -> dict[str, str]:
    """The environment of a test cluster's commands: workspace ``home``, the store, the
    broker, the loopback model (MODEL, API_KEY) and BASE_ENV; ``extra`` settings last
    (e.g. ``WAIKAN_QUEUE_LEASE="3"``), so they override BASE_ENV's."""
    return (
        BASE_ENV
        | {
            "WAIKAN_HOME": str(home),
            "WAIKAN_STORE_URL": store_url,
            "WAIKAN_QUEUE_URL": queue_url,
            "WAIKAN_LLM_BASE_URL": llm_url,
            "WAIKAN_LLM_MODEL": MODEL,
            "WAIKAN_LLM_API_KEY": API_KEY,
        }
        | extra
    )


def assert_each_post_delivered_once(hook: WebhookReceiver, store_url: str) -> None:
    """Every request the receiver got is counted, repeats included (it never merges them):
    each published post arrived exactly once, and every summarized post was published."""
    from sqlalchemy import text

    from waikan.store import open_store

    store = open_store(store_url)
    try:
        with store.engine.connect() as c:
            rows = c.execute(text("SELECT id, url, status FROM articles")).all()
            summarized = {a for (a,) in c.execute(text("SELECT DISTINCT article_id FROM posts"))}
    finally:
        store.close()
    published = {(i, url) for i, url, status in rows if status == "published"}
    got = Counter((r["json"]["post"]["id"], r["json"]["post"]["url"]) for r in hook.requests)
    assert all(r["verified"] and r["status"] == 204 for r in hook.requests), hook.requests[:3]
    assert {e for e, n in got.items() if n > 1} == set(), got  # no post twice
    assert set(got) == published, (sorted(got), sorted(published))  # every post once
    assert published and {i for i, _u in published} == summarized, (published, summarized)


def waikan(
    args: list[str], env: dict[str, str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "waikan", *args],
        env=_CLEAN | env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


class Workers:
    """``count`` real ``waikan worker`` processes, each in its own process group."""

    def __init__(
        self, env: dict[str, str], count: int, concurrency: int = 1, log: Path | None = None
    ) -> None:
        self.env = env
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        for i in range(count):
            path = (log or Path("/tmp")) / f"worker{i}.log"
            self.logs.append(path)
            self.procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "waikan",
                        "worker",
                        "-c",
                        str(concurrency),
                        "--name",
                        f"w{i}-{os.getpid()}@test",
                    ],
                    env=_CLEAN | env,
                    stdout=subprocess.DEVNULL,
                    stderr=path.open("wb"),
                    cwd=ROOT,
                    start_new_session=True,
                )
            )

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def snapshot(store_url: str) -> dict[str, Any]:
    """The store's outcome keyed by URL: status, duplicate_of (as a URL), summary, outbox."""
    from sqlalchemy import text

    from waikan.store import open_store

    store = open_store(store_url)
    try:
        with store.engine.connect() as c:
            urls = dict(c.execute(text("SELECT id, url FROM articles")).all())
            rows = c.execute(
                text("SELECT id, url, status, reason, duplicate_of FROM articles")
            ).all()
            outbox = sorted(
                (urls[a], r, d, s)
                for a, r, d, s in c.execute(
                    text("SELECT article_id, revision, destination, status FROM outbox")
                ).all()
            )
            posts = c.execute(text("SELECT article_id, revision FROM posts")).all()
        articles = {}
        for i, url, status, reason, dup in rows:
            summary = store.current_summary(i)
            articles[url] = {
                "status": status,
                "reason": reason,
                "duplicate_of": urls.get(dup),
                "summary": list(summary.paragraphs) if summary else None,
                "summaries": len(store.summaries_of(i)),
            }
        return {
            "articles": articles,
            "outbox": outbox,
            "posts": sorted((urls[a], r) for a, r in posts),
        }
    finally:
        store.close()


def dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=1, sort_keys=True)[:5000]
