"""A task that raises an unexpected error in ``waikan run --distributed`` (issue #9): the
run reports the worker's error once and stops waiting on it — no lease, no re-send, no
"still pending" — and ``waikan status`` shows each task's throughput and the failure.

Real Redis, PostgreSQL, a loopback site and model, and a real ``waikan worker`` whose
fetch of one page (and, once a flag file exists, whose dedupe) raises. The lease is 600 s:
a run that waited one out would not finish within ``RUN_TIMEOUT``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text
from tests.conftest import _CLEAN, ROOT
from tests.distributed.cluster import (
    ANSWER,
    API_KEY,
    MODEL,
    Workers,
    cluster_env,
    news_site,
    waikan,
)
from tests.servers.openai_server import FakeLLM

from waikan.store import open_store

PAGES = 4
BAD = "/news/1"
RUN_TIMEOUT = 180  # far below the lease

# `waikan worker` with faults: this page's fetch raises, and dedupe raises once FAULT_FLAG
# exists. The error names the API key: what the store keeps must not.
FAULTY_WORKER = """
import os, runpy, sys
from waikan.queue import tasks

real_fetch, real_dedupe = tasks.fetch, tasks.dedupe

def fetch(ws, article_id, *token):
    record = ws.store.article(article_id)
    if record is not None and record.url.endswith(os.environ.get("DEATH_PATH", "-")):
        os._exit(1)  # the pool process dies (as killed, or out of memory) every time
    if record is not None and record.url.endswith(os.environ["FAULT_PATH"]):
        raise RuntimeError("injected fault, key " + ws.config["llm.api_key"] + "\\nline two")
    return real_fetch(ws, article_id, *token)

def dedupe(ws, token):
    if os.path.exists(os.environ["FAULT_FLAG"]):
        raise KeyError("injected dedupe fault")
    return real_dedupe(ws, token)

tasks.fetch, tasks.dedupe = fetch, dedupe
sys.argv = ["waikan", *sys.argv[1:]]
runpy.run_module("waikan", run_name="__main__", alter_sys=True)
"""


def faulty_workers(env: dict[str, str], tmp_path: Path, processes: int = 2) -> Workers:
    pool = Workers(env, 0, log=tmp_path)  # its stop() and logs, for this one process
    log = tmp_path / "faulty.log"
    pool.logs.append(log)
    pool.procs.append(
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                FAULTY_WORKER,
                "worker",
                "-c",
                str(processes),
                "--name",
                "faulty@test",
            ],
            env=_CLEAN | env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
            cwd=ROOT,
            start_new_session=True,
        )
    )
    return pool


def article_id(pg_url: str, path: str) -> int:
    engine = create_engine(pg_url)
    try:
        with engine.connect() as c:
            found = c.scalar(text("SELECT id FROM articles WHERE url LIKE :u"), {"u": f"%{path}"})
    finally:
        engine.dispose()
    assert isinstance(found, int)
    return found


def test_a_crashed_task_is_reported_once_without_waiting_the_lease(
    tmp_path: Path, pg_url: str, redis_url: str
) -> None:
    flag = tmp_path / "dedupe-fails"
    with news_site(PAGES) as site, FakeLLM(api_key=API_KEY, model=MODEL, answer=ANSWER) as llm:
        env = cluster_env(
            tmp_path / "home",
            pg_url,
            redis_url,
            llm.url,
            WAIKAN_QUEUE_LEASE="600",
            FAULT_PATH=BAD,
            FAULT_FLAG=str(flag),
        )
        added = waikan(["sources", "add", f"{site.base}/feed.xml", "--backfill", str(PAGES)], env)
        assert added.returncode == 0, added.stderr
        with faulty_workers(env, tmp_path) as pool:
            first = waikan(["run", "--distributed"], env, timeout=RUN_TIMEOUT)
            shown = waikan(["status", "--json"], env)
            flag.touch()
            second = waikan(["run", "--distributed"], env, timeout=RUN_TIMEOUT)
            shown_text = waikan(["status"], env)
            logs = pool.log_text()

    bad = article_id(pg_url, BAD)
    # Named as inline names a page: by its URL.
    line = f"waikan: error: fetch: {site.base}{BAD}: RuntimeError: injected fault, key ***"
    assert first.returncode == 1, (first.stderr, logs[-3000:])
    assert first.stderr.splitlines() == [line], (first.stderr, logs[-3000:])
    assert "still pending" not in first.stderr and API_KEY not in first.stderr
    # Celery logs the crash with its traceback: the worker's log blanks the key there too.
    assert "injected fault, key ***" in logs and "Traceback" in logs, logs[-3000:]
    assert API_KEY not in logs, logs[-3000:]

    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    done = PAGES - 1
    want = {  # no poll: `sources add --backfill` just read the feed
        "waikan.fetch": {"ok": done, "failed": 1},
        "waikan.dedupe": {"ok": 1},
        "waikan.summarize": {"ok": done},
        "waikan.publish": {"ok": 1},
    }
    assert {t: c["last_hour"] for t, c in status["tasks"].items()} == want, status
    assert {t: c["last_5_minutes"] for t, c in status["tasks"].items()} == want, status
    assert status["task_failures"] == 1
    [failure] = status["latest_task_failures"]
    assert (failure["task"], failure["id"]) == ("waikan.fetch", bad)
    assert failure["error"] == "RuntimeError: injected fault, key ***"
    assert status["statuses"]["discovered"] == 1  # the crashed page: tried again next run
    assert status["dead_letters"] == 0 and status["errors"] == []
    assert API_KEY not in shown.stdout

    # The second run: the page crashes again, and dedupe (a serialized stage) does too.
    assert second.returncode == 1, (second.stderr, logs[-3000:])
    assert sorted(second.stderr.splitlines()) == sorted(
        [line, "waikan: error: dedupe: waikan.dedupe: KeyError: 'injected dedupe fault'"]
    ), (second.stderr, logs[-3000:])
    assert shown_text.returncode == 0, shown_text.stderr
    out = shown_text.stdout
    assert f"  waikan.fetch: ok {done}/{done}, failed 2/2\n" in out, out
    assert "  waikan.dedupe: ok 1/1, failed 1/1\n" in out, out
    assert "task failures: 3\n" in out, out
    assert f" waikan.fetch {bad}: RuntimeError: injected fault, key ***\n" in out, out
    assert " waikan.dedupe " in out and API_KEY not in out
    store = open_store(pg_url)
    try:
        kept = [row for row in store.dump() if row["table"] == "task_failures"]
        assert len(kept) == 3 and API_KEY not in repr(list(store.dump()))
    finally:
        store.close()


def test_a_task_that_kills_its_process_every_time_is_dead_lettered(
    tmp_path: Path, pg_url: str, redis_url: str
) -> None:
    """A message whose pool process dies each time comes back at once (the front of the
    queue); after MAX_DEATHS deaths in a row it is dead-lettered instead of killing
    processes forever, and the run reports it once, without a lease."""
    from waikan.queue.app import MAX_DEATHS

    with news_site(PAGES) as site, FakeLLM(api_key=API_KEY, model=MODEL, answer=ANSWER):
        env = cluster_env(
            tmp_path / "home",
            pg_url,
            redis_url,
            site.base + "/no-model",
            WAIKAN_QUEUE_LEASE="600",
            FAULT_PATH="-",
            FAULT_FLAG=str(tmp_path / "never"),
            DEATH_PATH=BAD,
        )
        added = waikan(["sources", "add", f"{site.base}/feed.xml", "--backfill", str(PAGES)], env)
        assert added.returncode == 0, added.stderr
        with faulty_workers(env, tmp_path, processes=1) as pool:
            run = waikan(["run", "--distributed"], env, timeout=RUN_TIMEOUT)
            shown = waikan(["status", "--json"], env)
            logs = pool.log_text()
    bad = article_id(pg_url, BAD)
    deaths = MAX_DEATHS + 1
    line = (
        f"waikan: error: fetch: {site.base}{BAD}: its worker process died {deaths} times "
        "in a row running it (killed, out of memory?): not run again"
    )
    fetch_errors = [x for x in run.stderr.splitlines() if x.startswith("waikan: error: fetch:")]
    assert fetch_errors == [line], (run.stderr, logs[-3000:])
    assert "still pending" not in run.stderr
    assert logs.count("WorkerLostError") >= deaths, logs[-3000:]
    status = json.loads(shown.stdout)
    assert status["dead_letters"] == 1, status
    [dead] = status["latest_dead_letters"]
    assert (dead["kind"], dead["task"]) == ("poison", "waikan.fetch"), dead
    fetches = [f for f in status["latest_task_failures"] if f["task"] == "waikan.fetch"]
    assert [f["id"] for f in fetches] == [bad], status["latest_task_failures"]
    assert status["tasks"]["waikan.fetch"]["last_hour"] == {"ok": PAGES - 1, "failed": 1}
    assert status["statuses"]["discovered"] == 1  # tried again on a later run
