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


def test_counts_per_task_and_outcome(store: Store) -> None:
    for _ in range(3):
        record_outcome(store, "waikan.fetch", "ok")
    record_outcome(store, "waikan.fetch", "noop")
    record_outcome(store, "waikan.fetch", "failed", 12, "RuntimeError: boom\nsecond line\x00")
    record_outcome(store, "waikan.poll", "ok", 3, retries=2)  # ok on its third try
    assert task_counts(store, 60) == {
        "waikan.fetch": {"ok": 3, "noop": 1, "failed": 1},
        "waikan.poll": {"ok": 1, "retried": 2},
    }
    with store.engine.connect() as c:  # one row per minute, task and outcome (upserted)
        rows = c.scalar(text("SELECT count(*) FROM task_stats"))
    assert rows is not None and rows <= 10  # 5 combinations, a minute boundary at most
    # Minutes older than the window are not counted.
    old = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
    with store.engine.begin() as c:
        stats = {"minute": old, "task": "waikan.poll", "outcome": "ok", "count": 7}
        c.execute(insert(schema.task_stats).values(**stats))
    assert task_counts(store, 5)["waikan.poll"] == {"ok": 1, "retried": 2}
    assert task_counts(store, 60)["waikan.poll"] == {"ok": 8, "retried": 2}
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

    class Retry(Exception):
        pass

    class Self:
        """Celery's Task, as _wrap uses it: its request's retries, and retry()."""

        def __init__(self, retries: int) -> None:
            self.request = type("Request", (), {"retries": retries})()

        def retry(self, exc: BaseException, max_retries: int, **_kw: object) -> BaseException:
            # Celery's retry raises Retry, or the error itself once max_retries were made.
            if self.request.retries >= max_retries:
                raise exc
            return Retry(str(exc))

    def call(name: str, fn: Any, *ids: int, retries: int = 0) -> object:
        return queue_app._wrap(name, fn, range(1, 3))(Self(retries), *ids)

    call.Retry = Retry  # type: ignore[attr-defined]

    yield call
    if queue_app._ws is not None:
        queue_app._ws[1].close()


def test_wrap_records_every_outcome(wrap: Any) -> None:
    import redis

    from waikan.queue.tasks import Failed, Partial

    assert wrap("waikan.fetch", lambda ws, i, t: "extracted", 1, 77) == "extracted"
    assert wrap("waikan.fetch", lambda ws, i, t: Partial("failed"), 2, 77) == "failed"
    assert wrap("waikan.fetch", lambda ws, i, t: "busy", 3, 77) == "busy"
    assert wrap("waikan.summarize", lambda ws, i, t: Failed(f"article {i}: HTTP 500"), 4, 9)
    assert wrap("waikan.summarize", lambda ws, i, t: "failed", 4, 9) == "failed"  # a copy
    assert wrap("waikan.summarize", lambda ws, i, t: "kept", 10, 9) == "kept"  # editor's
    assert wrap("waikan.poll", lambda ws, i: "3 new", 11, retries=2) == "3 new"
    line = "2 published, 1 errors"
    assert wrap("waikan.publish", lambda ws, t: Partial(line), 1_764_000_000_001) == line

    def crash(ws: Workspace, i: int, t: int) -> str:
        raise RuntimeError(f"bug with {KEY} in it\nmore lines")

    with pytest.raises(RuntimeError):  # re-raised: Celery logs it, once
        wrap("waikan.fetch", crash, 5, 77)

    def away(ws: Workspace, i: int) -> str:
        raise StoreError("cannot open store: connection refused")

    with pytest.raises(wrap.Retry):  # tried again: no count until it ends
        wrap("waikan.poll", away, 6)
    assert queue_app._ws is None  # closed: the next task opens a new one

    def broker_away(ws: Workspace, t: int) -> str:  # the stage's done key cannot be set
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379.")

    with pytest.raises(wrap.Retry):  # the stage is done: a retry, not a failure
        wrap("waikan.dedupe", broker_away, 1_764_000_000_002)
    with pytest.raises(StoreError):  # the last try: a failure, with its line
        wrap("waikan.poll", away, 6, retries=queue_app.RETRIES)

    store = queue_app.workspace().store
    assert task_counts(store, 60) == {
        "waikan.fetch": {"ok": 1, "noop": 1, "failed": 2},
        "waikan.summarize": {"failed": 1, "noop": 2},
        "waikan.poll": {"ok": 1, "retried": 2 + queue_app.RETRIES, "failed": 1},
        "waikan.publish": {"failed": 1},
    }
    total, got = latest_failures(store)
    assert total == 3
    assert [(f.task, f.key, f.error) for f in got] == [
        ("waikan.poll", 6, "StoreError: cannot open store: connection refused"),
        ("waikan.fetch", 5, "RuntimeError: bug with *** in it"),
        ("waikan.summarize", 4, "article 4: HTTP 500"),
    ]
    # Each kept for the run that sent it: another run's failure is not this run's.
    with store.engine.connect() as c:
        assert outcomes.failures_of_run(c, "waikan.fetch", [5, 2], 77) == {
            5: "RuntimeError: bug with *** in it"
        }
        assert outcomes.failures_of_run(c, "waikan.fetch", [5], 78) == {}
        assert outcomes.failures_of_run(c, "waikan.summarize", [4], 9) == {4: "article 4: HTTP 500"}


def test_a_recording_error_does_not_break_the_task(
    wrap: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = queue_app.workspace().store
    with store.engine.begin() as c:  # a real failure of the write: its table is gone
        c.execute(text("DROP TABLE task_stats"))
    caplog.set_level(logging.WARNING, logger="waikan.queue.app")
    assert wrap("waikan.fetch", lambda ws, i, t: "extracted", 7, 1) == "extracted"

    def crash(ws: Workspace, i: int, t: int) -> str:
        raise ValueError("the real error")

    with pytest.raises(ValueError, match="the real error"):  # not the recording's error
        wrap("waikan.fetch", crash, 8, 1)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0].startswith("waikan.fetch 7: cannot record its outcome (ok): ")
    assert lines[1].startswith("waikan.fetch 8: cannot record its outcome (failed): ")
    assert all("\n" not in x for x in lines)


def test_worker_logs_and_failure_lines_blank_every_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The LLM key, both URL passwords (as written and decoded) and a publisher's secret
    from the environment, in a log line and in its traceback."""
    env = {
        "WAIKAN_LLM_API_KEY": KEY,
        "WAIKAN_STORE_URL": "postgresql+psycopg://waikan:pg%40pass@127.0.0.1/db",
        "WAIKAN_QUEUE_URL": "redis://:redispass@127.0.0.1:6379/0",
    }
    monkeypatch.setenv("WAIKAN_TELEGRAM_BOT_TOKEN", "123456:tg-token-value")
    config = load(tmp_path, env=env)
    secrets = queue_app.secret_values(config)
    assert {KEY, "pg%40pass", "pg@pass", "redispass", "123456:tg-token-value"} <= set(secrets)

    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "key %s, %s", None, None)
    record.args = (KEY, "pg@pass and 123456:tg-token-value")
    try:
        raise RuntimeError(f"boom redispass {KEY}")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    assert queue_app.RedactSecrets(secrets).filter(record)
    text = logging.Formatter().format(record)
    assert "boom *** ***" in text and "key ***, *** and ***" in text, text
    assert not any(s in text for s in secrets), text

    monkeypatch.setattr(queue_app, "_config", config)
    line = queue_app._error_line(ValueError("token 123456:tg-token-value rejected"))
    assert line == "ValueError: token *** rejected"
