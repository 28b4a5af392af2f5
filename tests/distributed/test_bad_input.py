"""Bad input for the distributed runner: unreachable services, and messages no task can run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis
from tests.conftest import SQLITE_ONLY, assert_one_line_error, run_proc
from tests.distributed.cluster import Workers
from tests.services import free_port


def dead_count(pg_url: str) -> list[tuple[str, str | None]]:
    from sqlalchemy import create_engine, text

    engine = create_engine(pg_url)
    try:
        with engine.connect() as c:
            return [
                (k, t)
                for k, t in c.execute(text("SELECT kind, task FROM dead_letters ORDER BY id"))
            ]
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "command", [["worker"], ["run", "--distributed"], ["serve", "--distributed", "--no-web"]]
)
def test_unreachable_broker_is_one_error(command: list[str], tmp_path: Path, pg_url: str) -> None:
    env = {
        "WAIKAN_HOME": str(tmp_path),
        "WAIKAN_STORE_URL": pg_url,
        "WAIKAN_QUEUE_URL": f"redis://:s3cret@127.0.0.1:{free_port()}/0",
    }
    started = time.monotonic()
    result = run_proc(command, env, timeout=60)
    assert time.monotonic() - started < 50  # no endless retry
    assert_one_line_error(result)
    assert "cannot reach the broker" in result.err and "s3cret" not in result.err


@pytest.mark.parametrize(
    "command", [["worker"], ["run", "--distributed"], ["serve", "--distributed", "--no-web"]]
)
def test_unreachable_database_is_one_error(
    command: list[str], tmp_path: Path, redis_url: str
) -> None:
    env = {
        "WAIKAN_HOME": str(tmp_path),
        "WAIKAN_STORE_URL": f"postgresql+psycopg://u:hunter2@127.0.0.1:{free_port()}/db",
        "WAIKAN_QUEUE_URL": redis_url,
    }
    result = run_proc(command, env, timeout=60)
    assert_one_line_error(result)
    assert "cannot open store" in result.err and "hunter2" not in result.err


@SQLITE_ONLY  # its SQLite store is the point: pg mode would map it to PostgreSQL
def test_distributed_needs_queue_url_and_postgresql(tmp_path: Path, redis_url: str) -> None:
    no_queue = run_proc(["run", "--distributed"], {"WAIKAN_HOME": str(tmp_path)})
    assert_one_line_error(no_queue)
    assert "queue.url" in no_queue.err
    sqlite = run_proc(["worker"], {"WAIKAN_HOME": str(tmp_path), "WAIKAN_QUEUE_URL": redis_url})
    assert_one_line_error(sqlite)
    assert "PostgreSQL" in sqlite.err


def test_bad_messages_are_dead_lettered_and_worker_goes_on(
    tmp_path: Path, pg_url: str, redis_url: str
) -> None:
    from kombu import Connection

    env = {"WAIKAN_HOME": str(tmp_path), "WAIKAN_STORE_URL": pg_url, "WAIKAN_QUEUE_URL": redis_url}
    from waikan.config import load
    from waikan.queue import make_app
    from waikan.store import open_store

    open_store(pg_url).close()  # migrated before the worker starts: the test reads the table
    client = redis.Redis.from_url(redis_url)
    with Workers(env, 1, log=tmp_path) as pool:
        cfg = load(str(tmp_path), overrides={"store.url": pg_url, "queue.url": redis_url})
        app = make_app(cfg)
        client.lpush("waikan", b"\x00 this is not json {")  # garbage straight into the list
        with Connection(redis_url) as conn:  # a well-formed envelope around a broken body
            conn.Producer().publish(
                b'{"broken": ',
                routing_key="waikan",
                content_type="application/json",
                content_encoding="utf-8",
                serializer=None,
            )
        app.send_task("waikan.no_such_task", args=[1])
        app.send_task("waikan.fetch", args=["not-an-id"])
        app.send_task("waikan.summarize", args=[1, 2, 3])
        app.send_task("waikan.fetch", kwargs={"article": 1})
        deadline = time.monotonic() + 90
        while len(dead_count(pg_url)) < 6 and time.monotonic() < deadline:
            time.sleep(0.2)
        got = dead_count(pg_url)
        # The worker is still there and still working: one more bad message is handled.
        assert all(p.poll() is None for p in pool.procs), pool.log_text()[-3000:]
        app.send_task("waikan.publish", args=[0])
        while len(dead_count(pg_url)) < 7 and time.monotonic() < deadline:
            time.sleep(0.2)
        final = dead_count(pg_url)
        status = run_proc(["status", "--json"], env)
        app.close()
    assert sorted(got) == sorted(
        [
            ("undecodable", None),
            ("undecodable", None),
            ("unknown", "waikan.no_such_task"),
            ("invalid", "waikan.fetch"),
            ("invalid", "waikan.summarize"),
            ("invalid", "waikan.fetch"),
        ]
    ), pool.log_text()[-3000:]
    assert final[-1] == ("invalid", "waikan.publish")
    assert status.code == 0, status.err
    shown = json.loads(status.out)
    assert shown["dead_letters"] == 7 and len(shown["workers"]) == 1
    assert shown["queued"] == 0
    assert "dead letter" in pool.log_text()


def test_status_without_a_queue(waikan) -> None:  # type: ignore[no-untyped-def]
    shown = waikan("status")
    assert shown.code == 0, shown.err
    assert "queue: not configured" in shown.out and "dead letters: 0" in shown.out


def test_distributed_run_without_workers_is_one_error(
    waikan, pg_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from waikan.queue import coordinator

    monkeypatch.setattr(coordinator, "WORKER_WAIT", 2.0)
    result = waikan(
        "run", "--distributed", env={"WAIKAN_STORE_URL": pg_url, "WAIKAN_QUEUE_URL": redis_url}
    )
    assert_one_line_error(result)
    assert "no waikan worker answered" in result.err
