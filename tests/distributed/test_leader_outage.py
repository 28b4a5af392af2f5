"""A store outage is reported as one, not as "another scheduler leads" (issue S4).

Real PostgreSQL that refuses connections for a while (a failover, a restart) under a
real ``waikan serve`` process; the SQLite lock file's folder missing, in-process.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url
from tests.conftest import _CLEAN, ROOT
from tests.distributed.test_leader import Serve

from waikan.config import load
from waikan.pipeline import StageReport
from waikan.queue.leader import FileLeader, LeaderUnreachable
from waikan.scheduler import Scheduler
from waikan.workspace import Workspace

SECRET = "s3cret-pw"  # trust auth ignores it; it must never be printed
UNREACHABLE = "waikan serve: waiting: the store is unreachable"


class InlineServe(Serve):
    """``waikan serve --no-web`` with the stages inline (no broker, no workers)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.out, self.err = log.with_suffix(".out"), log.with_suffix(".err")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "waikan", "serve", "--no-web", "--interval", "1"],
            env=_CLEAN | env | {"PYTHONUNBUFFERED": "1"},
            cwd=ROOT,
            stdout=self.out.open("wb"),
            stderr=self.err.open("wb"),
            start_new_session=True,
        )

    def until(self, done: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert self.proc.poll() is None, self.stderr()[-3000:]
            assert time.monotonic() < deadline, self.stderr()[-3000:]
            time.sleep(0.05)


def _refuse(pg_url: str, refuse: bool) -> None:
    """The database takes no connection and every session of it ends, the lock's too."""
    u = make_url(pg_url)
    with psycopg.connect(
        host=u.host, port=u.port, user=u.username, dbname="postgres", autocommit=True
    ) as con:
        con.execute(f'ALTER DATABASE "{u.database}" ALLOW_CONNECTIONS {str(not refuse).lower()}')
        if refuse:
            con.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (u.database,),
            )


def test_serve_says_the_store_is_unreachable_and_leads_again(tmp_path: Path, pg_url: str) -> None:
    url = make_url(pg_url).set(password=SECRET).render_as_string(hide_password=False)
    serve = InlineServe(
        {"WAIKAN_HOME": str(tmp_path / "ws"), "WAIKAN_STORE_URL": url}, tmp_path / "s"
    )
    try:
        serve.until(lambda: "fetch:" in serve.stdout())  # leading, and a tick ran
        _refuse(pg_url, True)
        try:
            serve.until(lambda: UNREACHABLE in serve.stderr())
            waited = serve.stderr().count("waikan serve: waiting")
            time.sleep(3)  # several more attempts (every second) during the outage
            assert serve.stderr().count("waikan serve: waiting") == waited == 1, serve.stderr()
        finally:
            _refuse(pg_url, False)
        serve.until(lambda: serve.stderr().count("waikan serve: leading") == 2)
        ticks = serve.stdout().count("fetch:")
        serve.until(lambda: serve.stdout().count("fetch:") > ticks)  # it ticks again
    finally:
        serve.stop()
    err, out = serve.stderr(), serve.stdout()
    assert serve.proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err and "another scheduler leads" not in err, err
    assert SECRET not in err + out
    assert all(ln.startswith(("waikan serve: ", "waikan: error: ")) for ln in err.splitlines())
    line = next(ln for ln in err.splitlines() if ln.startswith(UNREACHABLE))
    port = make_url(pg_url).port
    assert f"(postgresql+psycopg://postgres:***@127.0.0.1:{port}/" in line, line
    assert "is not currently accepting connections" in line and line.endswith("; trying again")


def test_a_lock_file_out_of_reach_is_reported_once_then_the_scheduler_leads(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "gone"
    leader = FileLeader(folder / "w.db.leader")
    with pytest.raises(LeaderUnreachable, match=r"cannot open .*w\.db\.leader: No such file"):
        leader.lead()
    ws = Workspace(load(tmp_path, env={"WAIKAN_STORE_URL": f"sqlite:///{tmp_path / 'w.db'}"}))
    told: list[object] = []

    def tick(_ws: Workspace, _stop: Callable[[], bool]) -> list[StageReport]:
        told.append("tick")
        return []

    sched = Scheduler(
        ws,
        interval=0.1,
        runner=tick,
        leader=leader,
        on_leading=told.append,
        on_unreachable=told.append,
    )
    sched.retry = 0.05
    back = threading.Timer(0.5, folder.mkdir)  # the folder is back (a remount)
    back.start()
    try:
        assert sched.run(max_ticks=1) == 1
    finally:
        back.cancel()
        ws.close()
    assert len(told) == 3 and "w.db.leader: No such file" in str(told[0]), told
    assert told[1:] == [True, "tick"]
