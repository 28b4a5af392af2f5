"""The leader lock between ``waikan serve`` schedulers: exactly one ticks; a follower takes over.

Real PostgreSQL, Redis and worker processes; the schedulers are real
``waikan serve --distributed`` processes over a loopback news site and model
(those two fault tests run in ``make test-slow``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection
from tests.conftest import _CLEAN, ROOT
from tests.distributed.cluster import (
    API_KEY,
    BASE_ENV,
    HOOK_SECRET,
    MODEL,
    PUBLISHABLE,
    Workers,
    assert_each_post_delivered_once,
    cluster_env,
    news_site,
    publish_to,
    waikan,
)
from tests.servers.openai_server import FakeLLM
from tests.servers.webhook_server import WebhookReceiver

from waikan.queue.leader import FileLeader, PgLeader
from waikan.scheduler import Scheduler
from waikan.store import Store, open_store

PAGES = 12
SERVE = ["serve", "--distributed", "--no-web", "--interval", "1"]
LEASE = float(BASE_ENV["WAIKAN_QUEUE_LEASE"])


# -- the locks themselves ------------------------------------------------------------------


def _end_lock_session(store: Store) -> None:
    """End the session holding the leader's advisory lock, as a crash or restart would."""
    with store.engine.connect() as c:
        c.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND classid = 8 AND granted AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        )
        c.commit()


def test_pg_leader_is_exclusive_and_dies_with_its_session(pg_url: str) -> None:
    store = open_store(pg_url)
    a, b = PgLeader(store), PgLeader(store)
    try:
        assert a.lead() and a.lead()  # taken, then confirmed
        assert not b.lead()
        a.release()
        assert b.lead() and not a.lead()
        # The leader's session ends (a crash, a database restart): the lock goes with it.
        _end_lock_session(store)
        assert a.lead()  # a follower takes over
        assert not b.lead()  # and the old leader learns it no longer leads
    finally:
        a.release()
        b.release()
        store.close()


def test_file_leader_is_exclusive(tmp_path: Path) -> None:
    a, b = FileLeader(tmp_path / "x.leader"), FileLeader(tmp_path / "x.leader")
    assert a.lead() and not b.lead()
    a.release()
    assert b.lead() and not a.lead()
    b.release()


def test_pg_lock_session_has_server_side_keepalives(pg_url: str) -> None:
    """Else the server keeps a cut-off leader's session, and its lock, for ~2 h."""
    store = open_store(pg_url)
    leader = PgLeader(store)
    try:
        assert leader.lead()
        conn = leader._conn
        assert conn is not None
        assert conn.scalar(text("SHOW tcp_keepalives_idle")) == "5"
        assert conn.scalar(text("SHOW tcp_keepalives_interval")) == "2"
        assert conn.scalar(text("SHOW tcp_keepalives_count")) == "3"
        assert conn.scalar(text("SHOW tcp_user_timeout")) == "11000"
    finally:
        leader.release()
        store.close()


def test_pg_leader_closes_its_connection_when_the_lock_query_fails(pg_url: str) -> None:
    store = open_store(pg_url)
    leader = PgLeader(store)
    opened: list[Connection] = []
    real_connect = leader._engine.connect

    def connect() -> Connection:
        """A real connection whose session the server ends before the lock query runs."""
        conn = real_connect()
        opened.append(conn)
        pid = conn.scalar(text("SELECT pg_backend_pid()"))
        conn.commit()
        with store.engine.connect() as c:
            c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            c.commit()
        return conn

    leader._engine.connect = connect  # type: ignore[method-assign]
    try:
        assert not leader.lead()
        assert len(opened) == 1 and opened[0].closed  # closed, not leaked
    finally:
        leader.release()
        store.close()


def test_file_leader_notices_its_lock_file_replaced(tmp_path: Path) -> None:
    """A deleted or replaced lock file must not let a second scheduler lead beside the first."""
    path = tmp_path / "x.leader"
    a, b = FileLeader(path), FileLeader(path)
    assert a.lead()
    path.unlink()  # an operator cleaning up, or a restore of the data folder
    assert b.lead()  # b locks the new file at the path
    assert not a.lead()  # a sees its file is no longer the one at the path, and follows
    b.release()
    assert a.lead()
    replacement = tmp_path / "y.leader"
    replacement.write_bytes(b"")
    replacement.replace(path)
    assert b.lead() and not a.lead()
    b.release()


def test_a_leader_that_loses_its_lock_mid_tick_stops_the_tick(tmp_path: Path, pg_url: str) -> None:
    from waikan.config import load
    from waikan.pipeline import StageReport
    from waikan.workspace import Workspace

    store = open_store(pg_url)
    ws = Workspace(load(tmp_path, env={"WAIKAN_STORE_URL": pg_url}))
    other = PgLeader(store)
    events: list[str] = []

    def runner(_ws: Workspace, should_stop: Callable[[], bool]) -> list[StageReport]:
        events.append("tick")
        _end_lock_session(store)  # a restart, an admin's kill
        deadline = time.monotonic() + 30
        while not should_stop():  # a tick waiting on its workers, as run_distributed does
            assert time.monotonic() < deadline, "the tick went on without the lock"
            time.sleep(0.05)
        events.append("stopped")
        return []

    sched = Scheduler(ws, interval=0.1, runner=runner, leader=PgLeader(store))
    try:
        assert sched.run(max_ticks=1) == 1
        assert events == ["tick", "stopped"]
        assert other.lead()  # nobody else holds the lock: a follower could lead now
    finally:
        other.release()
        ws.close()
        store.close()


def test_a_follower_scheduler_ticks_only_once_the_leader_lets_go(
    tmp_path: Path, pg_url: str
) -> None:
    from waikan.config import load
    from waikan.pipeline import StageReport
    from waikan.workspace import Workspace

    store = open_store(pg_url)
    holder = PgLeader(store)
    assert holder.lead()
    ws = Workspace(load(tmp_path, env={"WAIKAN_STORE_URL": pg_url}))
    changes: list[bool] = []
    ticked_at: list[float] = []

    def runner(_ws: Workspace, _stop: Callable[[], bool]) -> list[StageReport]:
        ticked_at.append(time.monotonic())
        return []

    sched = Scheduler(
        ws, interval=0.1, runner=runner, leader=PgLeader(store), on_leading=changes.append
    )
    sched.retry = 0.05
    released: list[float] = []

    def let_go() -> None:
        released.append(time.monotonic())
        holder.release()

    timer = threading.Timer(1.0, let_go)
    timer.start()
    try:
        assert sched.run(max_ticks=1) == 1  # waits as a follower, then leads and ticks
    finally:
        timer.cancel()
        holder.release()
        ws.close()
        store.close()
    assert changes == [False, True]
    assert len(ticked_at) == 1 and ticked_at[0] > released[0]


# -- real schedulers ---------------------------------------------------------------------


class Serve:
    """One ``waikan serve --distributed --no-web`` process in its own process group."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.out, self.err = log.with_suffix(".out"), log.with_suffix(".err")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "waikan", *SERVE],
            env=_CLEAN | env | {"PYTHONUNBUFFERED": "1"},
            cwd=ROOT,
            stdout=self.out.open("wb"),
            stderr=self.err.open("wb"),
            start_new_session=True,
        )

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def wait_for(self, what: str, timeout: float) -> float:
        """Seconds until ``what`` appears on stderr."""
        started = time.monotonic()
        while what not in self.stderr():
            assert self.proc.poll() is None, self.stderr()[-3000:]
            assert time.monotonic() - started < timeout, self.stderr()[-3000:]
            time.sleep(0.05)
        return time.monotonic() - started

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@contextmanager
def cluster(
    tmp_path: Path, pg_url: str, redis_url: str
) -> Iterator[tuple[dict[str, str], FakeLLM, WebhookReceiver]]:
    """Two workers, a loopback site and model, and a webhook every post goes out to."""
    with (
        news_site(PAGES) as site,
        FakeLLM(api_key=API_KEY, model=MODEL, answer=PUBLISHABLE, delay=0.5) as llm,
        WebhookReceiver(secret=HOOK_SECRET) as hook,
    ):
        env = cluster_env(tmp_path / "ws", pg_url, redis_url, llm.url) | publish_to(
            tmp_path / "ws", hook
        )
        added = waikan(["sources", "add", f"{site.base}/feed.xml", "--backfill", str(PAGES)], env)
        assert added.returncode == 0, added.stderr
        with Workers(env, 2, concurrency=1, log=tmp_path):
            yield env, llm, hook


WAITING = {"discovered", "extracted", "summarized", "approved"}  # a stage, or the webhook


def wait_done(pg_url: str, serve: Serve, timeout: float = 300) -> None:
    """Until a tick of ``serve`` has published and no article waits for a stage."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "publish:" in serve.stdout():
            left = counts(pg_url)["statuses"]
            if not WAITING & set(left):
                return
        assert serve.proc.poll() is None, serve.stderr()[-3000:]
        assert "still pending" not in serve.stderr(), serve.stderr()[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"not done: {counts(pg_url)}\n{serve.stderr()[-3000:]}")


def counts(pg_url: str) -> dict[str, object]:
    store = open_store(pg_url)
    try:
        with store.engine.connect() as c:
            return {
                "statuses": dict(
                    c.execute(text("SELECT status, count(*) FROM articles GROUP BY status")).all()
                ),
                "urls": tuple(
                    c.execute(text("SELECT count(DISTINCT url), count(*) FROM articles")).one()
                ),
                "summaries": max(
                    [
                        n
                        for (n,) in c.execute(
                            text("SELECT count(*) FROM summaries GROUP BY article_id")
                        )
                    ],
                    default=0,
                ),
                "posts": max(
                    [
                        n
                        for (n,) in c.execute(
                            text("SELECT count(*) FROM posts GROUP BY article_id")
                        )
                    ],
                    default=0,
                ),
                "outbox": max(
                    [
                        n
                        for (n,) in c.execute(
                            text("SELECT count(*) FROM outbox GROUP BY article_id, destination")
                        )
                    ],
                    default=0,
                ),
            }
    finally:
        store.close()


def assert_exactly_once(pg_url: str) -> None:
    got = counts(pg_url)
    assert got["urls"] == (PAGES, PAGES), got
    statuses = got["statuses"]
    assert isinstance(statuses, dict) and not WAITING & set(statuses), got
    assert got["summaries"] == 1, got  # one summary per summarized article, never two
    assert got["posts"] == 1 and got["outbox"] == 1, got  # one post, sent to the hook once


@pytest.mark.slow
def test_two_schedulers_started_at_once_one_leads(
    tmp_path: Path, pg_url: str, redis_url: str
) -> None:
    with cluster(tmp_path, pg_url, redis_url) as (env, llm, hook):
        pair = [Serve(env, tmp_path / "serve-a"), Serve(env, tmp_path / "serve-b")]
        try:
            deadline = time.monotonic() + 120
            while not all(("leading" in s.stderr()) != ("waiting" in s.stderr()) for s in pair):
                assert time.monotonic() < deadline, [s.stderr() for s in pair]
                assert all(s.proc.poll() is None for s in pair), [s.stderr() for s in pair]
                time.sleep(0.05)
            leaders = [s for s in pair if "waikan serve: leading" in s.stderr()]
            assert len(leaders) == 1, [s.stderr() for s in pair]
            leader = leaders[0]
            follower = pair[1 - pair.index(leader)]
            wait_done(pg_url, leader)
            calls, sent = llm.calls, len(hook.requests)
            time.sleep(3)  # a few more ticks: nothing left to do, nothing done twice
            assert llm.calls == calls and len(hook.requests) == sent
        finally:
            for s in sorted(pair, key=lambda s: "leading" in s.stderr()):
                s.stop()  # the follower first, or it would take over
    for s in pair:
        assert s.proc.returncode == 0, s.stderr()[-3000:]
    assert "waiting: another scheduler leads" in follower.stderr()
    assert "leading" not in follower.stderr()
    assert follower.stdout() == ""  # the follower neither polled nor enqueued anything
    assert leader.stdout().count("fetch: ") >= 2  # the leader ticked, more than once
    assert_exactly_once(pg_url)
    assert_each_post_delivered_once(hook, pg_url)


@pytest.mark.slow
def test_a_follower_takes_over_when_the_leader_is_killed(
    tmp_path: Path, pg_url: str, redis_url: str
) -> None:
    with cluster(tmp_path, pg_url, redis_url) as (env, llm, hook):
        first = Serve(env, tmp_path / "serve-a")
        first.wait_for("waikan serve: leading", 120)
        second = Serve(env, tmp_path / "serve-b")
        try:
            second.wait_for("waikan serve: waiting", 120)
            deadline = time.monotonic() + 120
            while llm.calls < 2 and time.monotonic() < deadline:  # the leader's tick under way
                time.sleep(0.05)
            assert llm.calls >= 2
            os.killpg(first.proc.pid, signal.SIGKILL)
            first.proc.wait()
            took = second.wait_for("waikan serve: leading", LEASE)
            wait_done(pg_url, second)
        finally:
            first.stop()
            second.stop()
    assert took < LEASE
    assert second.proc.returncode == 0, second.stderr()[-3000:]
    assert_exactly_once(pg_url)
    assert_each_post_delivered_once(hook, pg_url)
