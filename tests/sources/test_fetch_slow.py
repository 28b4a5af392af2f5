"""Long trials (make test-slow): kill -9 during ``waikan fetch``, and a 10,000-item feed."""

from __future__ import annotations

import gzip
import json
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import _CLEAN, PG_MODE, ROOT
from tests.servers.feeds import CORPUS, Served, ago, raw, rss
from tests.servers.pages import PageServer

pytestmark = pytest.mark.slow

ENV = _CLEAN | {
    "WAIKAN_FETCH_ALLOW_PRIVATE_NETWORKS": "true",
    "WAIKAN_FETCH_HOST_DELAY": "0",
    "WAIKAN_FETCH_PER_HOST": "8",
}


def corpus(n: int) -> list[bytes]:
    paths = sorted(CORPUS.glob("*/html/*.html.gz"))
    return [gzip.decompress(paths[i % len(paths)].read_bytes()) for i in range(n)]


def waikan(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "waikan", "--home", str(home), *args],
        env=ENV,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def store_rows(home: Path, query: str) -> list[tuple[Any, ...]]:
    """Rows of the workspace's store: its SQLite file, or its database in pg mode."""
    from sqlalchemy import text

    from waikan.store import open_store

    store = open_store(f"sqlite:///{home / 'waikan.db'}", create=False)
    try:
        with store.engine.connect() as c:
            return [tuple(r) for r in c.execute(text(query))]
    finally:
        store.close()


def test_kill_9_during_fetch_loses_and_repeats_nothing(tmp_path: Path) -> None:
    pages = corpus(300)
    routes = {f"/n/{i}": raw(p, "text/html; charset=utf-8") for i, p in enumerate(pages)}
    rng = random.Random(4)
    started = time.monotonic()
    with PageServer(routes) as srv:
        urls = [f"{srv.base}/n/{i}" for i in range(300)]
        srv.routes["/feed.xml"] = Served(
            rss([(u, f"Story {i}", ago(1)) for i, u in enumerate(urls)]), "application/rss+xml"
        )
        kills = 0
        for trial in range(3):  # 3 workspaces x 4 kills: 12 kills at random moments
            home = tmp_path / f"t{trial}"
            added = waikan(home, "sources", "add", f"{srv.base}/feed.xml", "--backfill", "300")
            assert added.returncode == 0, added.stderr
            for _kill in range(4):
                proc = subprocess.Popen(
                    [sys.executable, "-m", "waikan", "--home", str(home), "fetch"],
                    env=ENV,
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(rng.uniform(0.3, 6.0))  # start-up, poll, fetching, storing
                proc.kill()
                proc.wait()
                kills += 1
                if not PG_MODE:  # the file itself; PostgreSQL has no file of ours to check
                    with sqlite3.connect(home / "waikan.db") as db:
                        assert db.execute("pragma integrity_check").fetchone() == ("ok",)
            final = waikan(home, "fetch")
            assert final.returncode in (0, 3), final.stderr
            got = store_rows(home, "select url, status, raw_id from articles")
            stored = [u for u, _s, _r in got]
            assert sorted(stored) == sorted(urls), f"trial {trial}: missing or repeated"
            assert all(s not in ("discovered", "fetched") for _u, s, _r in got), trial
            assert all(r is not None for _u, s, r in got if s == "extracted"), trial
    print(f"crash trials: {kills} kills over 3 x 300 pages in {time.monotonic() - started:.0f} s")


def test_feed_of_10000_items_memory(tmp_path: Path) -> None:
    """Discovery and fetch of a 10,000-item feed; the child's peak RSS stays under 300 MB."""
    n = 10_000
    page = b"<html><head><title>t</title></head><body><p>short page</p></body></html>"
    home = tmp_path / "ws"
    with PageServer({}) as srv:
        for i in range(n):
            srv.routes[f"/i/{i}"] = page
        items = [(f"{srv.base}/i/{i}", f"Item {i} " + "x" * 80, ago(1)) for i in range(n)]
        srv.routes["/feed.xml"] = Served(rss(items), "application/rss+xml")
        # VmHWM, not ru_maxrss: Linux carries a parent's peak RSS into ru_maxrss across
        # fork and exec, so a child of a large pytest process would report the parent's peak.
        script = (
            "import sys\ncode = 0\n"
            "from waikan.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
            "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM:')]\n"
            "print(json.dumps({'rss_kb': int(hwm[0].split()[1]), 'code': code}), file=sys.stderr)\n"
        )
        script = "import json\n" + script
        for args in (["sources", "add", f"{srv.base}/feed.xml", "--backfill", str(n)], ["fetch"]):
            proc = subprocess.run(
                [sys.executable, "-c", script, "--home", str(home), *args],
                env=ENV | {"WAIKAN_FETCH_PER_HOST": "16"},
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=900,
            )
            assert proc.stderr.strip(), proc.stdout[-2000:]
            stats = json.loads(proc.stderr.strip().splitlines()[-1])
            print(args[0], stats)
            assert stats["code"] in (0, 3), proc.stderr[-2000:]
            assert stats["rss_kb"] < 300 * 1024, stats
    [(count,)] = store_rows(home, "select count(*) from articles")
    [(pending,)] = store_rows(home, "select count(*) from articles where status='discovered'")
    assert count == n and pending == 0
