"""Faults during a distributed run: killed workers, a Redis restart, a PostgreSQL restart.

Each run must end with every article exactly once, one summary per summarized
article, each post at the loopback webhook exactly once (no post twice, none lost),
and model calls <= articles + tasks killed mid-call.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.conftest import _CLEAN, ROOT
from tests.distributed.cluster import (
    API_KEY,
    BASE_ENV,
    HOOK_SECRET,
    MODEL,
    PUBLISHABLE,
    Workers,
    assert_each_post_delivered_once,
    news_site,
    publish_to,
    waikan,
)
from tests.servers.openai_server import FakeLLM
from tests.servers.webhook_server import WebhookReceiver
from tests.services import PgServer, RedisServer

pytestmark = pytest.mark.slow

PAGES = 40


@pytest.fixture
def own_pg() -> Iterator[PgServer]:
    server = PgServer(Path(tempfile.mkdtemp(prefix="waikan-pg-fault-")))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")  # no persistence: a restart loses the queue
    server.start()
    try:
        yield server
    finally:
        server.stop()


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


Fault = Callable[[Workers, RedisServer, PgServer], int]


def run_with_fault(
    tmp_path: Path, pg: PgServer, rs: RedisServer, fault: Fault, lease: float | None = None
) -> None:
    pg_url = pg.new_database()
    with (
        news_site(PAGES) as site,
        FakeLLM(api_key=API_KEY, model=MODEL, answer=PUBLISHABLE, delay=1.0) as llm,
        WebhookReceiver(secret=HOOK_SECRET) as hook,
    ):
        env = (
            BASE_ENV
            | publish_to(tmp_path / "ws", hook)
            | {
                "WAIKAN_HOME": str(tmp_path / "ws"),
                "WAIKAN_STORE_URL": pg_url,
                "WAIKAN_QUEUE_URL": rs.url(),
                "WAIKAN_LLM_BASE_URL": llm.url,
                "WAIKAN_LLM_MODEL": MODEL,
                "WAIKAN_LLM_API_KEY": API_KEY,
            }
        )
        if lease is not None:
            env["WAIKAN_QUEUE_LEASE"] = f"{lease:g}"
        added = waikan(["sources", "add", f"{site.base}/feed.xml", "--backfill", str(PAGES)], env)
        assert added.returncode == 0, added.stderr
        with Workers(env, 2, concurrency=2, log=tmp_path) as pool:
            coordinator = subprocess.Popen(
                [sys.executable, "-m", "waikan", "run", "--distributed"],
                env=_CLEAN | env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            deadline = time.monotonic() + 300
            while llm.calls < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
            kills = fault(pool, rs, pg)
            out, err = coordinator.communicate(timeout=400)
            logs = pool.log_text()
        assert coordinator.returncode in (0, 3), (out, err, logs[-4000:])
        assert "Traceback" not in err, err
        calls = llm.calls

    from sqlalchemy import text

    from waikan.store import open_store

    store = open_store(pg_url)
    with store.engine.connect() as c:
        statuses = dict(
            c.execute(text("SELECT status, count(*) FROM articles GROUP BY status")).all()
        )
        per_article = c.execute(
            text("SELECT article_id, count(*) FROM summaries GROUP BY article_id")
        ).all()
        revisions = c.execute(text("SELECT max(revision) FROM posts")).scalar()
        urls = c.execute(text("SELECT count(DISTINCT url), count(*) FROM articles")).one()
    store.close()
    assert urls == (PAGES, PAGES)
    assert "extracted" not in statuses and "discovered" not in statuses, statuses
    summarized = sum(n for s, n in statuses.items() if s not in ("duplicate", "rejected", "failed"))
    assert all(n == 1 for _a, n in per_article) and revisions == 1
    assert len(per_article) == summarized
    # The guard passes the answer: one call per summary, plus those of killed tasks.
    assert calls <= summarized + kills, (calls, summarized, kills)
    assert_each_post_delivered_once(hook, pg_url)


def test_pool_child_killed_mid_task(
    tmp_path: Path, own_pg: PgServer, own_redis: RedisServer
) -> None:
    def kill_child(pool: Workers, _rs: RedisServer, _pg: PgServer) -> int:
        child = children(pool.procs[0].pid)[0]
        os.kill(child, signal.SIGKILL)
        return 1

    run_with_fault(tmp_path, own_pg, own_redis, kill_child)


def test_whole_worker_killed(tmp_path: Path, own_pg: PgServer, own_redis: RedisServer) -> None:
    def kill_group(pool: Workers, _rs: RedisServer, _pg: PgServer) -> int:
        os.killpg(pool.procs[0].pid, signal.SIGKILL)
        return 2  # its two pool processes may each have been mid-call

    started = time.monotonic()
    run_with_fault(tmp_path, own_pg, own_redis, kill_group)
    assert time.monotonic() - started < 400


def test_redis_restarted_without_persistence(
    tmp_path: Path, own_pg: PgServer, own_redis: RedisServer
) -> None:
    def restart(pool: Workers, rs: RedisServer, _pg: PgServer) -> int:
        port = rs.port
        rs.stop()
        rs.port = port
        rs.start()
        return 4  # tasks in flight when the broker went away may run again

    run_with_fault(tmp_path, own_pg, own_redis, restart)


def test_redis_down_for_a_while(tmp_path: Path, own_pg: PgServer, own_redis: RedisServer) -> None:
    """An outage, not a quick restart: the coordinator's sends and checks fail for seconds.

    The lease (2 s) is shorter than the outage, so the coordinator sends again into it.
    """

    def outage(pool: Workers, rs: RedisServer, _pg: PgServer) -> int:
        rs.stop()
        time.sleep(5)
        rs.start()  # same port
        return 4  # tasks in flight when the broker went away may run again

    run_with_fault(tmp_path, own_pg, own_redis, outage, lease=2)


def test_postgresql_restarted(tmp_path: Path, own_pg: PgServer, own_redis: RedisServer) -> None:
    def restart(_pool: Workers, _rs: RedisServer, pg: PgServer) -> int:
        pg.restart()
        return 4  # calls whose summary could not be written are paid again

    run_with_fault(tmp_path, own_pg, own_redis, restart)
