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
from waikan.errors import StorageError, StoreError
from waikan.queue import app as queue_app
from waikan.queue import outcomes
from waikan.queue.outcomes import latest_failures, record_outcome, task_counts
from waikan.store import Store, open_store, schema
from waikan.workspace import Workspace

KEY = "sk-outcomes-5ecret"
FULL = "the database refuses writes: disk full"


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

    def store_full(ws: Workspace, t: int) -> str:  # no retry helps: fails at once
        raise StorageError(FULL)

    with pytest.raises(StorageError):
        wrap("waikan.dedupe", store_full, 1_764_000_000_002)
    with pytest.raises(StoreError):  # the last try: a failure, with its line
        wrap("waikan.poll", away, 6, retries=queue_app.RETRIES)

    store = queue_app.workspace().store
    assert task_counts(store, 60) == {
        "waikan.fetch": {"ok": 1, "noop": 1, "failed": 2},
        "waikan.summarize": {"failed": 1, "noop": 2},
        "waikan.poll": {"ok": 1, "retried": 2 + queue_app.RETRIES, "failed": 1},
        "waikan.publish": {"failed": 1},
        "waikan.dedupe": {"failed": 1},
    }
    total, got = latest_failures(store)
    assert total == 4
    assert [(f.task, f.key, f.error) for f in got] == [
        ("waikan.poll", 6, "StoreError: cannot open store: connection refused"),
        (
            "waikan.dedupe",
            1_764_000_000_002,
            "StorageError: the database refuses writes: disk full",
        ),
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


def test_a_crashed_summary_leaves_its_line_for_its_run(
    store_url: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the run reads summaries' failures (Redis, see tasks.failed_key): a crash of
    the task itself is reported once, as a model error is; a full store stops the run."""
    import redis

    from waikan.queue import tasks

    env = {"WAIKAN_STORE_URL": store_url, "WAIKAN_QUEUE_URL": redis_url}
    monkeypatch.setattr(queue_app, "_config", load(tmp_path, env=env))
    monkeypatch.setattr(queue_app, "_ws", None)

    class Self:
        request = type("Request", (), {"retries": 0})()

    def crash(ws: Workspace, i: int, t: int) -> str:
        raise RuntimeError("a bug")

    def full(ws: Workspace, i: int, t: int) -> str:
        raise StorageError(FULL)

    run = queue_app._wrap("waikan.summarize", crash, range(1, 3))
    with pytest.raises(RuntimeError):
        run(Self(), 4, 55)
    run = queue_app._wrap("waikan.summarize", full, range(1, 3))
    with pytest.raises(StorageError):
        run(Self(), 5, 55)
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.get(tasks.failed_key(55, 4)) == b"article 4: RuntimeError: a bug"
        line = b"article 5: StorageError: the database refuses writes: disk full"
        assert client.get(tasks.failed_key(55, 5)) == line
        assert client.get(tasks.stop_key(55)) == line  # the run's later summaries stop
    finally:
        client.close()
        if queue_app._ws is not None:
            queue_app._ws[1].close()


def test_a_stage_waits_out_a_broker_restart_to_say_it_is_done(tmp_path: Path) -> None:
    """dedupe/publish did their work; the broker restarting then costs a wait, not a
    failure (a Celery retry would need the broker itself)."""
    import threading
    import time

    import redis
    from tests.services import RedisServer

    from waikan.queue import tasks

    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        ws = Workspace(load(tmp_path, env={"WAIKAN_QUEUE_URL": server.url()}))
        port = server.port
        server.stop()
        server.port = port
        restart = threading.Timer(2.0, server.start)
        restart.start()
        started = time.monotonic()
        tasks._finished(ws, 1234)
        restart.join()
        assert time.monotonic() - started >= 1.0  # it did wait for the broker
        client = redis.Redis.from_url(server.url())
        assert client.get("waikan:done:1234") == b"1"
        client.close()
        ws.close()
    finally:
        server.stop()


def test_redaction_survives_bad_log_calls_and_escaped_secrets() -> None:
    """A malformed log call is the handler's to report, as without the filter; a secret as
    repr() or JSON escape it (Celery's failure line uses repr) is blanked too."""
    import json

    secret = "pa'ss\\wörd-1"
    redact = queue_app.RedactSecrets(
        sorted({secret, repr(secret)[1:-1], json.dumps(secret)[1:-1]}, key=len, reverse=True)
    )
    bad = logging.LogRecord("x", logging.ERROR, __file__, 1, "%s %s", ("one",), None)
    assert redact.filter(bad)  # no TypeError raised at the log call
    for shown in (repr(ValueError(secret)), json.dumps({"error": secret})):
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "%s", (shown,), None)
        assert redact.filter(record)
        assert "wörd" not in record.getMessage() and "w\\u00f6rd" not in record.getMessage()


def test_secret_values_include_escaped_forms(tmp_path: Path) -> None:
    secret = "pa'ss\\word-1"
    config = load(tmp_path, env={"WAIKAN_LLM_API_KEY": secret})
    values = queue_app.secret_values(config)
    assert secret in values and repr(secret)[1:-1] in values
