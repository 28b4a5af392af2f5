"""A summary that fails in ``waikan run --distributed`` is tried once and reported once, as
in an inline ``waikan run`` (issue #9): not sent again after the lease, not "still pending".

Real Redis, PostgreSQL, ``waikan worker`` processes and a loopback model. The lease is an
hour: a run that waited one out would not finish within the helper's timeout.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.distributed.cluster import (
    ANSWER,
    API_KEY,
    MODEL,
    Workers,
    cluster_env,
    news_site,
    waikan,
)
from tests.servers.feeds import corpus_pages
from tests.servers.openai_server import FakeLLM
from tests.servers.pages import PageServer

PAGES = 4
WORKERS = 2


@dataclass
class Setup:
    site: PageServer
    llm: FakeLLM
    inline: dict[str, str]
    dist: dict[str, str]
    workers: Workers


@dataclass
class Runs:
    inline: subprocess.CompletedProcess[str]
    dist: subprocess.CompletedProcess[str]
    inline_calls: int
    dist_calls: int


@contextmanager
def setup(tmp_path: Path, pg_url: str, redis_url: str) -> Iterator[Setup]:
    """The same feed added to an inline (SQLite) and a distributed workspace, workers up."""
    with news_site(PAGES) as site, FakeLLM(api_key=API_KEY, model=MODEL, answer=ANSWER) as llm:
        dist = cluster_env(
            tmp_path / "dist",
            pg_url,
            redis_url,
            llm.url,
            WAIKAN_LLM_MAX_RETRIES="1",
            WAIKAN_QUEUE_LEASE="3600",
        )
        inline_url = f"sqlite:///{tmp_path / 'inline.db'}"
        # The same settings; without --distributed the run is inline, on its own store.
        inline = dist | {"WAIKAN_HOME": str(tmp_path / "inline"), "WAIKAN_STORE_URL": inline_url}
        for e in (inline, dist):
            added = waikan(["sources", "add", f"{site.base}/feed.xml", "--backfill", str(PAGES)], e)
            assert added.returncode == 0, added.stderr
        with Workers(dist, WORKERS, log=tmp_path) as pool:
            yield Setup(site, llm, inline, dist, pool)


def run_both(s: Setup) -> Runs:
    before = s.llm.calls
    inline = waikan(["run"], s.inline)
    middle = s.llm.calls
    dist = waikan(["run", "--distributed"], s.dist)
    return Runs(inline, dist, middle - before, s.llm.calls - middle)


def errors(stderr: str, stage: str) -> list[str]:
    """The stage's error lines, article ids and token counts left out (the two stores
    number alike, but which article meets the stop first may differ)."""
    lines = [x for x in stderr.splitlines() if x.startswith(f"waikan: error: {stage}: ")]
    return sorted(re.sub(r"article \d+|~[\d,]+", "#", x) for x in lines)


def ids(stderr: str) -> list[int]:
    found = re.findall(r"^waikan: error: summarize: article (\d+):", stderr, re.M)
    return sorted(int(i) for i in found)


def received(logs: str) -> int:
    """Summarize tasks the workers took: one per article when none was sent again."""
    return len(re.findall(r"Task waikan\.summarize\[[^\]]+\] received", logs))


def make_due(store_url: str) -> None:
    from sqlalchemy import update

    from waikan.store import open_store, schema

    store = open_store(store_url)
    try:
        with store.engine.begin() as c:
            c.execute(
                update(schema.source_state).values(next_poll_at=datetime(2000, 1, 1, tzinfo=UTC))
            )
    finally:
        store.close()


def test_failed_summaries_are_tried_once_and_reported_as_inline(
    tmp_path: Path, pg_url: str, redis_url: str
) -> None:
    with setup(tmp_path, pg_url, redis_url) as s:
        # The feed fails too: a failed poll is done for the run and reported, as inline.
        s.site.routes.pop("/feed.xml")
        for e in (s.inline, s.dist):
            make_due(e["WAIKAN_STORE_URL"])
        s.llm.status = 500  # every answer, every retry
        runs = run_both(s)
        logs = s.workers.log_text()
        r, d = runs.inline, runs.dist
        assert r.returncode == 1, r.stderr
        assert d.returncode == r.returncode, (d.stdout, d.stderr, logs[-3000:])
        assert d.stdout == r.stdout
        assert "still pending" not in d.stderr
        # One try per article, as inline: 1 + llm.max_retries calls each, no copies.
        assert runs.inline_calls == PAGES * 2
        assert runs.dist_calls == runs.inline_calls, logs[-3000:]
        assert received(logs) == PAGES, logs[-3000:]
        assert errors(d.stderr, "summarize") == errors(r.stderr, "summarize")
        assert len(errors(d.stderr, "summarize")) == PAGES
        assert all("answered HTTP 500" in x for x in errors(d.stderr, "summarize"))
        assert len(set(ids(d.stderr))) == PAGES == len(ids(d.stderr))  # each once
        fetch = errors(d.stderr, "fetch")
        assert fetch == errors(r.stderr, "fetch")
        assert len(fetch) == 1 and "/feed.xml" in fetch[0], d.stderr


@pytest.mark.slow
def test_stopping_errors_are_one_line_as_inline(
    tmp_path: Path, pg_url: str, redis_url: str
) -> None:
    """A rejected key, then a spent budget: each dooms every article; the run stops at
    the first, reported once, and later tasks make no call."""
    with setup(tmp_path, pg_url, redis_url) as s:
        s.llm.api_key = "sk-another-key"  # 401: no call can succeed
        runs = run_both(s)
        logs = s.workers.log_text()
        r, d = runs.inline, runs.dist
        assert r.returncode == d.returncode == 1, (d.stderr, logs[-3000:])
        assert d.stdout == r.stdout
        assert 1 <= runs.inline_calls <= 4  # llm.concurrency: requests already sent
        assert 1 <= runs.dist_calls <= WORKERS  # only tasks already at the model
        got = errors(d.stderr, "summarize")
        assert got == errors(r.stderr, "summarize")
        assert len(got) == 1 and "rejected the API key" in got[0], d.stderr
        assert "still pending" not in d.stderr and API_KEY not in d.stderr + logs
        assert received(logs) == PAGES, logs[-3000:]

        s.llm.api_key = API_KEY
        for e in (s.inline, s.dist):
            spend_the_budget(tmp_path, e)
        runs = run_both(s)
        logs = s.workers.log_text()
    r, d = runs.inline, runs.dist
    assert r.returncode == d.returncode == 1, (d.stderr, logs[-3000:])
    assert runs.inline_calls == runs.dist_calls == 0
    assert d.stdout == r.stdout
    got = errors(d.stderr, "summarize")
    assert got == errors(r.stderr, "summarize")
    assert len(got) == 1 and "daily token budget reached" in got[0], d.stderr
    assert "still pending" not in d.stderr
    assert received(logs) == 2 * PAGES, logs[-3000:]


def spend_the_budget(tmp_path: Path, env: dict[str, str]) -> None:
    """Today's token budget (summarize.daily_token_budget) spent, as by earlier runs."""
    from waikan.config import load
    from waikan.summarize.budget import Budget
    from waikan.workspace import Workspace

    ws = Workspace(load(tmp_path / "spend", env=env))
    try:
        Budget(ws.store, ws.config).record(MODEL, int(ws.config["summarize.daily_token_budget"]), 0)
    finally:
        ws.close()


def test_a_failed_summarize_task_leaves_its_line_for_its_run(
    tmp_path: Path, pg_url: str, redis_url: str
) -> None:
    """The task itself (in this process): one try per run, a copy makes no call, an old
    message without a token behaves as before, a stopping error stops the run's others."""
    import redis

    from waikan.config import load
    from waikan.pipeline import ingest_one
    from waikan.queue import tasks
    from waikan.workspace import Workspace

    with FakeLLM(api_key=API_KEY, model=MODEL, answer=ANSWER, status=500) as llm:
        env = {
            "WAIKAN_STORE_URL": pg_url,
            "WAIKAN_QUEUE_URL": redis_url,
            "WAIKAN_LLM_BASE_URL": llm.url,
            "WAIKAN_LLM_MODEL": MODEL,
            "WAIKAN_LLM_API_KEY": API_KEY,
            "WAIKAN_LLM_MAX_RETRIES": "0",
        }
        ws = Workspace(load(tmp_path, env=env))
        client = redis.Redis.from_url(redis_url)
        try:
            ids = []
            for n, body in enumerate(corpus_pages(3)):
                page = tmp_path / f"page{n}.html"
                page.write_bytes(body)
                record = ingest_one(ws, str(page))
                assert record.status == "extracted", record
                ids.append(record.id)
            a, b, c = ids

            assert tasks.summarize(ws, a, 7) == "failed" and llm.calls == 1
            line = client.get(tasks.failed_key(7, a))
            assert line is not None and line.decode().startswith(f"article {a}: LLM endpoint ")
            assert "answered HTTP 500" in line.decode()
            assert 0 < client.ttl(tasks.failed_key(7, a)) <= 86400
            assert tasks.summarize(ws, a, 7) == "failed" and llm.calls == 1  # a copy: no call
            assert tasks.summarize(ws, a, 8) == "failed" and llm.calls == 2  # the next run tries
            assert tasks.summarize(ws, a) == "failed" and llm.calls == 3  # queued before tokens
            assert client.get(tasks.stop_key(7)) is None  # a 500 dooms only its article
            stored = ws.store.article(a)
            assert stored is not None and stored.status == "extracted"

            llm.status, llm.api_key = 200, "sk-another-key"  # 401: every call would fail
            assert tasks.summarize(ws, b, 9) == "failed" and llm.calls == 4
            line = client.get(tasks.failed_key(9, b))
            assert line is not None and "rejected the API key" in line.decode()
            assert API_KEY not in line.decode()
            assert tasks.summarize(ws, c, 9) == "stopped" and llm.calls == 4
            assert client.get(tasks.failed_key(9, c)) == b""  # done for the run, no own line
            # Two stopping errors at once (tasks already at the model): the first keeps its line.
            tasks._record_failure(ws, 10, b, "article b: first", stops=True)
            tasks._record_failure(ws, 10, c, "article c: second", stops=True)
            assert client.get(tasks.failed_key(10, b)) == b"article b: first"
            assert client.get(tasks.failed_key(10, c)) == b""
        finally:
            client.close()
            tasks._backend = None
            ws.close()


def test_an_editors_change_during_the_call_is_a_note_as_inline(
    tmp_path: Path, pg_url: str, redis_url: str
) -> None:
    """The desk rejects an article while the model answers for it: its answer is dropped,
    and ``run --distributed`` says so in the same note as inline, not as an error."""
    from tests.servers.openai_server import message_text

    from waikan.config import load
    from waikan.publish import review
    from waikan.workspace import Workspace

    with setup(tmp_path, pg_url, redis_url) as s:
        store_env: list[dict[str, str]] = []  # the workspace of the run going on
        acted: list[int] = []
        first = threading.Lock()  # the model answers calls in parallel

        def desk_rejects_then_answers(body: dict[str, Any]) -> str:
            with first:
                if len(acted) == len(store_env):
                    return ANSWER
                ws = Workspace(load(tmp_path / "desk", env=store_env[-1]))
                try:
                    text = message_text(body["messages"])
                    found = [a for a in ws.store.articles(status="extracted") if a.title in text]
                    assert found, text[:300]
                    review.reject(ws, found[0].id, "editor", "off-topic")
                    acted.append(found[0].id)
                finally:
                    ws.close()
                return ANSWER

        s.llm.answer = desk_rejects_then_answers
        store_env.append(s.inline)
        inline = waikan(["run"], s.inline)
        store_env.append(s.dist)
        dist = waikan(["run", "--distributed"], s.dist)
        logs = s.workers.log_text()
    assert len(acted) == 2, (acted, inline.stderr, dist.stderr)
    assert inline.returncode == 0, inline.stderr
    assert dist.returncode == inline.returncode, (dist.stderr, logs[-3000:])
    assert dist.stdout == inline.stdout
    notes = [x for x in dist.stderr.splitlines() if x.startswith("waikan: summarize: ")]
    assert len(notes) == 1 and "changed meanwhile" in notes[0], dist.stderr
    assert re.sub(r"article \d+", "#", notes[0]) in re.sub(r"article \d+", "#", inline.stderr)
    assert "waikan: error:" not in dist.stderr + inline.stderr
