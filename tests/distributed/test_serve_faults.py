"""A long-running ``waikan serve --distributed`` outlives failed ticks (issue 9).

A tick that raises, a broken source row, a database that refuses connections for a
tick and a broker down when work starts must each cost one error line (or a wait),
never the process: the next tick runs and the work is done once. Real PostgreSQL, a Redis
of this test's own (stopped and started), a ``waikan worker`` process and a real
``waikan serve`` over a loopback news site and model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url
from tests.distributed.cluster import (
    ANSWER,
    API_KEY,
    MODEL,
    Workers,
    cluster_env,
    news_site,
    waikan,
)
from tests.distributed.test_leader import Serve, counts, wait_done
from tests.servers.openai_server import FakeLLM
from tests.services import throwaway_redis

from waikan.config import load
from waikan.errors import StorageError
from waikan.pipeline import StageReport
from waikan.scheduler import Scheduler, run_stages
from waikan.sources.repo import SourceRepo
from waikan.store import open_store
from waikan.workspace import Workspace

PAGES = 4
BAD_SETTINGS = "UPDATE sources SET settings = '\"hand-edited\"'"  # JSON, but not an object
# The line each tick prints for the source whose row is hand-edited; the others run.
BROKEN = "waikan: error: fetch: source 1: settings is not a JSON object"
REFUSED = "waikan: error: distributed: "  # a broker or database fault, caught by the runner


# -- the scheduler loop, in-process --------------------------------------------------------


def test_a_broken_source_row_is_one_line_per_tick_and_every_stage_runs(tmp_path: Path) -> None:
    """A source row the code cannot use (hand-edited settings) costs that source, not the tick."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    ws = Workspace(load(tmp_path, env={"WAIKAN_STORE_URL": url}))
    try:
        repo = SourceRepo(ws.store)
        repo.add("http://127.0.0.1:9/feed.xml", kind="rss", name=None, language=None, settings={})
        with ws.store.engine.begin() as c:
            c.exec_driver_sql(BAD_SETTINGS)
        ticks: list[list[StageReport]] = []
        sched = Scheduler(ws, interval=0.1, runner=run_stages, on_tick=ticks.append)
        assert sched.run(max_ticks=2) == 2
    finally:
        ws.close()
    assert len(ticks) == 2
    for reports in ticks:
        assert [(r.stage, len(r.errors)) for r in reports] == [
            ("fetch", 1),
            ("dedupe", 0),
            ("summarize", 0),
            ("publish", 0),
        ]
        assert reports[0].errors[0].startswith(BROKEN.removeprefix("waikan: error: fetch: "))


def test_a_tick_that_raises_unexpectedly_is_one_error_and_the_loop_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in a stage (an exception nobody foresaw) fails the real inline tick, not the loop."""

    def buggy(_ws: Workspace) -> StageReport:
        return {}["missing"]  # type: ignore[no-any-return]

    monkeypatch.setattr("waikan.scheduler.STAGES", (("buggy", buggy),))
    ws = Workspace(load(tmp_path, env={"WAIKAN_STORE_URL": f"sqlite:///{tmp_path / 'w.db'}"}))
    ticks: list[list[StageReport]] = []
    try:
        sched = Scheduler(ws, interval=0.1, runner=run_stages, on_tick=ticks.append)
        assert sched.run(max_ticks=2) == 2  # not an exception: both ticks ran
    finally:
        ws.close()
    assert [[(r.stage, r.errors) for r in reports] for reports in ticks] == [
        [("tick", ["KeyError: 'missing'"])]
    ] * 2


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), SystemExit(1), StorageError("disk full")])
def test_interrupts_exits_and_storage_errors_still_stop_the_loop(
    tmp_path: Path, exc: BaseException
) -> None:
    """A second signal, an exit, a full disk (the inline rule): the scheduler stops, as before."""
    ws = Workspace(load(tmp_path, env={"WAIKAN_STORE_URL": f"sqlite:///{tmp_path / 'w.db'}"}))
    ran: list[int] = []

    def runner(_ws: Workspace, _stop: Callable[[], bool]) -> list[StageReport]:
        ran.append(1)
        raise exc

    try:
        with pytest.raises(type(exc)):
            Scheduler(ws, interval=0.1, runner=runner).run(max_ticks=3)
    finally:
        ws.close()
    assert ran == [1]


# -- a real serve --distributed ------------------------------------------------------------


def _admin(pg_url: str) -> psycopg.Connection[tuple[object, ...]]:
    u = make_url(pg_url)
    return psycopg.connect(
        host=u.host, port=u.port, user=u.username, dbname="postgres", autocommit=True
    )


def _refuse_connections(pg_url: str, refuse: bool) -> None:
    """The database takes no new connection (as in a failover); open sessions but the
    leader's lock session end, so the scheduler's next tick needs a connection it cannot get."""
    db = make_url(pg_url).database
    with _admin(pg_url) as con:
        con.execute(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS {str(not refuse).lower()}')
        if refuse:
            con.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                "AND pid NOT IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' "
                "AND classid = 8 AND granted)",
                (db,),
            )


def _wait_count(serve: Serve, what: str, at_least: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while serve.stderr().count(what) < at_least:
        assert serve.proc.poll() is None, serve.stderr()[-3000:]
        assert time.monotonic() < deadline, serve.stderr()[-3000:]
        time.sleep(0.05)


def _quiet_stdout(serve: Serve, quiet: float, timeout: float = 120) -> str:
    """``serve``'s stdout once it has not changed for ``quiet`` seconds (no tick printing)."""
    deadline = time.monotonic() + timeout
    last, since = serve.stdout(), time.monotonic()
    while time.monotonic() - since < quiet:
        assert serve.proc.poll() is None, serve.stderr()[-3000:]
        assert time.monotonic() < deadline, serve.stdout()[-3000:]
        time.sleep(0.1)
        now = serve.stdout()
        if now != last:
            last, since = now, time.monotonic()
    return last


@pytest.mark.slow
def test_serve_distributed_outlives_failed_ticks(tmp_path: Path, pg_url: str) -> None:
    with (
        throwaway_redis("waikan-redis-serve-") as broker,
        news_site(PAGES) as site,
        FakeLLM(api_key=API_KEY, model=MODEL, answer=ANSWER, delay=0.2) as llm,
    ):
        # A lease of 3 s: a poll sent into the outage is sent again soon after.
        env = cluster_env(tmp_path / "ws", pg_url, broker.url(), llm.url, WAIKAN_QUEUE_LEASE="3")
        added = waikan(["sources", "add", f"{site.base}/feed.xml", "--backfill", str(PAGES)], env)
        assert added.returncode == 0, added.stderr
        store = open_store(pg_url)
        with store.engine.begin() as c:
            c.exec_driver_sql(BAD_SETTINGS)  # every tick now reports the source, skipped
        with Workers(env, 1, log=tmp_path):
            serve = Serve(env, tmp_path / "serve")
            try:
                # 1. A broken source row: one line a tick, and the loop goes on.
                _wait_count(serve, BROKEN, 2)
                # 2. The database refuses connections: the tick is one line; the next one runs.
                _refuse_connections(pg_url, True)
                try:
                    _wait_count(serve, REFUSED, 1, timeout=60)
                finally:
                    _refuse_connections(pg_url, False)
                seen = serve.stderr().count(BROKEN)
                _wait_count(serve, BROKEN, seen + 1)  # a later tick reached the store again
                published = [ln for ln in serve.stdout().splitlines() if ln.startswith("publish:")]
                assert published and all(ln.startswith("publish: 0 done") for ln in published)
                assert llm.calls == 0  # the broken source's articles wait for its row
                # 3. The broker is down when the work starts: the tick waits, then finishes.
                refused = serve.stderr().count(REFUSED)
                broker.stop()
                with store.engine.begin() as c:
                    c.exec_driver_sql("UPDATE sources SET settings = '{}'")  # row repaired
                # A tick past its last send may still print; then the output stays as it is.
                ticked = _quiet_stdout(serve, quiet=3).count("fetch:")
                time.sleep(4)  # more than a lease: sends into the outage are tried again
                assert serve.proc.poll() is None, serve.stderr()[-3000:]
                assert serve.stdout().count("fetch:") == ticked  # the tick waits, no error
                broker.start()  # same port
                wait_done(pg_url, serve)
            finally:
                serve.stop()
                store.close()
        calls = llm.calls
    err = serve.stderr()
    assert serve.proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    errors = [line for line in err.splitlines() if line.startswith("waikan: error:")]
    assert sum(REFUSED in e for e in errors) == refused, errors  # none for the broker outage
    assert all(e.startswith((BROKEN, REFUSED)) for e in errors), errors
    got = counts(pg_url)
    assert got["urls"] == (PAGES, PAGES), got
    statuses = got["statuses"]
    assert isinstance(statuses, dict) and not {"discovered", "extracted"} & set(statuses), got
    assert got["summaries"] == 1 and got["posts"] == 1 and got["outbox"] <= 1, got
    assert 0 < calls <= 2 * PAGES  # a summary costs its call and one retry (the guard), no more
