"""Desk pages at scale: each page with 100,000 articles as a ratio to the same page with 1,000.

usage: python bench/bench_desk.py [--small N] [--large N] [--repeats N]

Pages: the review queue unfiltered, filtered (source and status), its last
page, an article page and the dashboard, rendered in-process through the real
app (routing, auth by API token, SQL, templates) over a real SQLite store.
Both stores hold about 100 new articles a day, so the dashboard's window
holds as many rows in each. Target: every ratio <= 2 (keyset pagination and
indexes, no full scans). Exit status 1 when a target is missed.

Also measured, without a target: the sources page and ``/metrics``, whose
per-status and per-kind counts grow with the store (grouped index scans).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

TARGET_RATIO = 2.0
STATUSES = ("summarized", "needs_review", "approved", "published", "rejected")


def seed(home: Path, n: int) -> tuple[object, str, int]:
    """A workspace with ``n`` articles, summaries, posts, findings and outbox rows."""
    from sqlalchemy import insert

    from waikan.config import load
    from waikan.store import schema
    from waikan.web import accounts
    from waikan.workspace import Workspace

    rnd = random.Random(7)
    ws = Workspace(load(home, env={}))
    store = ws.store
    now = datetime.now(UTC)
    days = max(1, n // 100)
    paras = [f"Paragraph {k}: officials said the talks would resume next week." for k in range(6)]
    zh = ["这篇报道描述了会谈的进展。", "报道指出，官员表示会谈将于下周恢复。"]
    with store.engine.begin() as c:
        c.execute(
            insert(schema.sources),
            [
                {
                    "id": i,
                    "name": f"Source {i}",
                    "url": f"https://s{i}.example/feed",
                    "kind": "rss",
                    "settings": {},
                    "created_at": now,
                }
                for i in range(1, 21)
            ],
        )
        for start in range(1, n + 1, 5000):
            ids = range(start, min(n, start + 4999) + 1)
            arts, sums, posts, finds, outs = [], [], [], [], []
            for i in ids:
                created = now - timedelta(days=days * (n - i) / n, minutes=rnd.random())
                src = 1 + i % 20
                status = rnd.choice(STATUSES)
                arts.append(
                    {
                        "id": i,
                        "url": f"https://s{src}.example/a/{i}",
                        "source_id": src,
                        "source_name": f"Source {src}",
                        "status": status,
                        "title": f"Story {i}",
                        "published": (created - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "authors": [],
                        "paragraphs": paras,
                        "language": "en",
                        "word_count": 60,
                        "created_at": created,
                        "updated_at": created,
                    }
                )
                sums.append(
                    {
                        "id": i,
                        "article_id": i,
                        "backend": "openai",
                        "model": "m",
                        "paragraphs": zh,
                        "is_excerpt": False,
                        "tokens_in": 900,
                        "tokens_out": 300,
                        "created_at": created,
                    }
                )
                posts.append(
                    {
                        "id": i,
                        "article_id": i,
                        "summary_id": i,
                        "revision": 1,
                        "created_at": created,
                        "updated_at": created,
                    }
                )
                if status == "needs_review":
                    finds.append(
                        {
                            "summary_id": i,
                            "article_id": i,
                            "kind": "number",
                            "message": "number: figure 5 is not in the article",
                        }
                    )
                if status == "published":
                    outs.append(
                        {
                            "article_id": i,
                            "revision": 1,
                            "destination": "hook",
                            "status": "sent",
                            "remote": {},
                            "attempts": 1,
                            "created_at": created,
                            "updated_at": created,
                            "sent_at": created,
                        }
                    )
            c.execute(insert(schema.articles), arts)
            c.execute(insert(schema.summaries), sums)
            c.execute(insert(schema.posts), posts)
            if finds:
                c.execute(insert(schema.summary_findings), finds)
            if outs:
                c.execute(insert(schema.outbox), outs)
        c.execute(
            insert(schema.llm_spend),
            [
                {
                    "day": (now - timedelta(days=d)).date().isoformat(),
                    "model": "m",
                    "calls": 100,
                    "cached": 0,
                    "tokens_in": 90000,
                    "tokens_out": 30000,
                    "cost": 1.5,
                }
                for d in range(min(days, 30))
            ],
        )
    with store.engine.connect() as c:
        c.exec_driver_sql("ANALYZE")
    accounts.add_user(store, "bench", "admin", "bench-password")
    return ws, accounts.issue_token(store, "bench"), n // 2


def pages(mid: int) -> dict[str, str]:
    return {
        "queue": "/desk/queue",
        "queue filtered": "/desk/queue?status=approved&source=Source+7",
        "queue last page": "/desk/queue?last=1",
        "article": f"/desk/articles/{mid}",
        "dashboard": "/desk/dashboard",
        "sources": "/desk/sources",
        "metrics": "/metrics",
    }


UNTARGETED = frozenset({"sources", "metrics"})


def measure(
    stores: dict[int, tuple[object, str, int]], repeats: int
) -> dict[int, dict[str, float]]:
    """Median time per page and store; requests alternate between the stores."""
    import gc

    from starlette.testclient import TestClient

    from waikan.web.app import create_app

    clients = {}
    for n, (ws, token, _mid) in stores.items():
        app = create_app(ws)  # type: ignore[arg-type]
        clients[n] = TestClient(app, headers={"authorization": f"Bearer {token}"})
    times: dict[int, dict[str, list[float]]] = {n: {} for n in stores}
    for name in pages(0):
        for n, client in clients.items():
            path = pages(stores[n][2])[name]
            for _ in range(3):  # warm-up: templates compile, caches fill
                assert client.get(path).status_code == 200, path
        for _ in range(repeats):
            for n, client in clients.items():
                path = pages(stores[n][2])[name]
                gc.collect()
                started = time.perf_counter()
                r = client.get(path)
                times[n].setdefault(name, []).append(time.perf_counter() - started)
                assert r.status_code == 200
    return {n: {k: statistics.median(v) for k, v in t.items()} for n, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=1_000)
    ap.add_argument("--large", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=21)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        stores = {}
        for n in (args.small, args.large):
            started = time.perf_counter()
            stores[n] = seed(Path(tmp) / f"ws{n}", n)
            print(f"seeded {n} articles in {time.perf_counter() - started:.1f} s")
        results = measure(stores, args.repeats)
    worst = 0.0
    print(f"{'page':18} {args.small:>9} {args.large:>9}  ratio")
    for name in pages(0):
        small, large = results[args.small][name], results[args.large][name]
        ratio = large / small
        if name in UNTARGETED:
            verdict = "(no target)"
        else:
            worst = max(worst, ratio)
            verdict = "MET" if ratio <= TARGET_RATIO else "NOT MET"
        print(f"{name:18} {small * 1000:7.1f}ms {large * 1000:7.1f}ms  {ratio:5.2f} {verdict}")
    print(f"worst ratio {worst:.2f}  target <= {TARGET_RATIO}")
    return 0 if worst <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
