"""``waikan run --distributed`` on real Redis, PostgreSQL and two worker processes."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.distributed.cluster import (
    ANSWER,
    API_KEY,
    MODEL,
    Workers,
    cluster_env,
    dump,
    news_site,
    snapshot,
    waikan,
)
from tests.servers.openai_server import FakeLLM


def compare_inline_and_distributed(
    tmp_path: Path, pg_url: str, redis_url: str, pages: int, workers: int
) -> None:
    with news_site(pages) as site, FakeLLM(api_key=API_KEY, model=MODEL, answer=ANSWER) as llm:
        dist = cluster_env(tmp_path / "dist", pg_url, redis_url, llm.url)
        feed = f"{site.base}/feed.xml"
        inline_home = tmp_path / "inline"
        inline_url = f"sqlite:///{tmp_path / 'inline.db'}"
        # The same settings; without --distributed the run is inline, on its own store.
        inline = dist | {"WAIKAN_HOME": str(inline_home), "WAIKAN_STORE_URL": inline_url}
        added = waikan(["sources", "add", feed, "--backfill", str(pages)], inline)
        assert added.returncode == 0, added.stderr
        ran = waikan(["run"], inline)
        assert ran.returncode in (0, 3), ran.stderr
        inline_calls = llm.calls

        added = waikan(["sources", "add", feed, "--backfill", str(pages)], dist)
        assert added.returncode == 0, added.stderr
        with Workers(dist, workers, log=tmp_path) as pool:
            ran_d = waikan(["run", "--distributed"], dist)
            logs = pool.log_text()
        assert ran_d.returncode == ran.returncode, (ran_d.stdout, ran_d.stderr, logs[-3000:])
        assert ran_d.stdout == ran.stdout, (ran.stdout, ran_d.stdout)
        assert llm.calls - inline_calls == inline_calls  # one model call per summary, no more

    want, got = snapshot(inline_url), snapshot(pg_url)
    assert len(want["articles"]) == pages
    statuses = {a["status"] for a in want["articles"].values()}
    assert "duplicate" in statuses and statuses & {"summarized", "needs_review", "published"}
    assert got == want, dump({"want": want, "got": got})
    assert all(a["summaries"] <= 1 for a in got["articles"].values())


def test_distributed_run_equals_inline(tmp_path: Path, pg_url: str, redis_url: str) -> None:
    compare_inline_and_distributed(tmp_path, pg_url, redis_url, pages=30, workers=2)


@pytest.mark.slow
def test_distributed_run_equals_inline_300_pages(
    tmp_path: Path, pg_url: str, redis_url: str
) -> None:
    compare_inline_and_distributed(tmp_path, pg_url, redis_url, pages=300, workers=4)
