"""Task outcomes in the store (issue #9): per-minute counts, failures kept and pruned, and
a recording that fails never failing the task. SQLite and PostgreSQL (``store_url``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, text

from waikan.config import load
from waikan.errors import StoreError
from waikan.queue import app as queue_app
from waikan.queue import outcomes
from waikan.queue.outcomes import latest_failures, record_outcome, task_counts
from waikan.store import Store, open_store, schema
from waikan.workspace import Workspace

KEY = "sk-outcomes-5ecret"


@pytest.fixture
def store(store_url: str) -> Any:
    s = open_store(store_url)
    yield s
    s.close()


def hour_ago() -> datetime:
    return datetime.now(UTC) - timedelta(hours=1)


def test_counts_per_task_and_outcome(store: Store) -> None:
    for _ in range(3):
        record_outcome(store, "waikan.fetch", "ok")
    record_outcome(store, "waikan.fetch", "noop")
    record_outcome(store, "waikan.fetch", "failed", 12, "RuntimeError: boom\nsecond line\x00")
    record_outcome(store, "waikan.poll", "retried", 3)
    assert task_counts(store, hour_ago()) == {
        "waikan.fetch": {"ok": 3, "noop": 1, "failed": 1},
        "waikan.poll": {"retried": 1},
    }
    with store.engine.connect() as c:  # one row per minute, task and outcome (upserted)
        rows = c.scalar(text("SELECT count(*) FROM task_stats"))
    assert rows is not None and rows <= 8  # 4 combinations, a minute boundary at most
    # Minutes older than the window are not counted.
    assert task_counts(store, datetime.now(UTC) + timedelta(minutes=2)) == {}
    total, got = latest_failures(store)
    assert total == 1 and len(got) == 1
    assert (got[0].task, got[0].key, got[0].error) == ("waikan.fetch", 12, "RuntimeError: boom")


def test_failures_are_pruned(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outcomes, "KEEP", 3)
    monkeypatch.setattr(outcomes, "_pruned", {})  # no prune of an engine before this one
    old = datetime.now(UTC) - timedelta(days=outcomes.STATS_DAYS, hours=1)
    with store.engine.begin() as c:
        c.execute(insert(schema.task_failures).values(at=old, task="waikan.poll", key=1, error="x"))
        minute = old.replace(second=0, microsecond=0)
        stats = {"minute": minute, "task": "waikan.poll", "outcome": "ok", "count": 5}
        c.execute(insert(schema.task_stats).values(**stats))
    record_outcome(store, "waikan.fetch", "failed", 100, "first")
    total, got = latest_failures(store, limit=10)
    assert total == 1 and [f.key for f in got] == [100]  # the week-old one went
    for key in range(101, 106):
        record_outcome(store, "waikan.fetch", "failed", key, f"error {key}")
    total, got = latest_failures(store, limit=10)
    assert total == 3 and [f.key for f in got] == [105, 104, 103]  # the newest KEEP
    with store.engine.connect() as c:  # week-old minutes pruned (this process's first prune)
        outcomes_left = set(c.scalars(select(schema.task_stats.c.task)))
    assert outcomes_left == {"waikan.fetch"}
    # A large key: a run's token (milliseconds since 1970 plus a counter).
    record_outcome(store, "waikan.dedupe", "failed", 1_764_000_000_123, "stuck")
    assert latest_failures(store, limit=1)[1][0].key == 1_764_000_000_123


@pytest.fixture
def wrap(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``app._wrap`` on a workspace of ``store_url`` (the app configured as in a worker)."""
    env = {"WAIKAN_STORE_URL": store_url, "WAIKAN_LLM_API_KEY": KEY}
    config = load(tmp_path, env=env)
    monkeypatch.setattr(queue_app, "_config", config)
    monkeypatch.setattr(queue_app, "_ws", None)

    class Self:
        def retry(self, exc: BaseException, **_kw: object) -> BaseException:
            return exc  # Celery's retry raises Retry: the task raises what it returns

    def call(name: str, fn: Any, *ids: int) -> object:
        return queue_app._wrap(name, fn, range(1, 3))(Self(), *ids)

    yield call
    if queue_app._ws is not None:
        queue_app._ws[1].close()


def test_wrap_records_every_outcome(wrap: Any) -> None:
    from waikan.queue.tasks import Failed

    assert wrap("waikan.fetch", lambda ws, i: "extracted", 1) == "extracted"
    assert wrap("waikan.fetch", lambda ws, i: "failed", 2) == "failed"  # the article's status
    assert wrap("waikan.fetch", lambda ws, i: "busy", 3) == "busy"
    assert wrap("waikan.summarize", lambda ws, i, t: Failed(f"article {i}: HTTP 500"), 4, 9)
    assert wrap("waikan.summarize", lambda ws, i, t: "failed", 4, 9) == "failed"  # a copy

    def crash(ws: Workspace, i: int) -> str:
        raise RuntimeError(f"bug with {KEY} in it\nmore lines")

    with pytest.raises(RuntimeError):  # re-raised: Celery logs it, once
        wrap("waikan.fetch", crash, 5)

    def away(ws: Workspace, i: int) -> str:
        raise StoreError("cannot open store: connection refused")

    with pytest.raises(StoreError):
        wrap("waikan.poll", away, 6)
    assert queue_app._ws is None  # closed: the next task opens a new one

    store = queue_app.workspace().store
    assert task_counts(store, hour_ago()) == {
        "waikan.fetch": {"ok": 2, "noop": 1, "failed": 1},
        "waikan.summarize": {"failed": 1, "noop": 1},
        "waikan.poll": {"retried": 1},
    }
    total, got = latest_failures(store)
    assert total == 2
    assert [(f.task, f.key, f.error) for f in got] == [
        ("waikan.fetch", 5, "RuntimeError: bug with *** in it"),
        ("waikan.summarize", 4, "article 4: HTTP 500"),
    ]


def test_a_recording_error_does_not_break_the_task(
    wrap: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = queue_app.workspace().store
    with store.engine.begin() as c:  # a real failure of the write: its table is gone
        c.execute(text("DROP TABLE task_stats"))
    caplog.set_level(logging.WARNING, logger="waikan.queue.app")
    assert wrap("waikan.fetch", lambda ws, i: "extracted", 7) == "extracted"

    def crash(ws: Workspace, i: int) -> str:
        raise ValueError("the real error")

    with pytest.raises(ValueError, match="the real error"):  # not the recording's error
        wrap("waikan.fetch", crash, 8)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0].startswith("waikan.fetch 7: cannot record its outcome (ok): ")
    assert lines[1].startswith("waikan.fetch 8: cannot record its outcome (failed): ")
    assert all("\n" not in x for x in lines)
