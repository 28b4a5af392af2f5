"""Distributed throughput: ``waikan run --distributed`` with 1, 2 and 4 workers, and inline.

usage: python bench/bench_queue.py [--pages N] [--hosts K]

A loopback news site answers every page after 100 ms and a loopback model
after 300 ms (I/O-bound work, as in production). The pages are spread over
``--hosts`` loopback addresses (127.0.0.1 … 127.0.0.K), as a real deployment
fetches from many sites: per-host politeness (``fetch.per_host``) is then not
the bottleneck being measured. PostgreSQL and Redis are started from Debian's
packages (``make deps-services``). Each worker process runs one task at a time
(``-c 1``). Printed, measured in the same run: articles per second of each
run, and each as a ratio to 1 worker (target >= 3.0 at 4 workers), plus the
inline ``waikan run`` in one process as a ratio to 1 worker; for each worker
run, where the time went: tasks run per stage and their mean time, and the
workers' busy share (task time / (workers x wall time)).
Exit status 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

TARGET_4 = 3.0
PAGE_LATENCY = 0.1
MODEL_LATENCY = 0.3


def slow(route: Any) -> Any:
    def answer(handler: Any) -> None:
        time.sleep(PAGE_LATENCY)
        route(handler)

    return answer


STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): \w+/[^\]]*\] Task ", re.M)
TASK_LINE = re.compile(r"Task waikan\.(\w+)\[[^\]]+\] succeeded in ([0-9.]+)s")


def task_times(log: str) -> dict[str, list[float]]:
    """Seconds of each task that succeeded, by stage, from the workers' logs."""
    out: dict[str, list[float]] = {}
    for name, seconds in TASK_LINE.findall(log):
        out.setdefault(name, []).append(float(seconds))
    return out


def task_span(log: str) -> tuple[float, float] | None:
    """Wall-clock times (epoch) of the first and the last task line in the workers' logs."""
    from datetime import datetime

    stamps = [datetime.strptime(m, "%Y-%m-%d %H:%M:%S,%f").timestamp() for m in STAMP.findall(log)]
    return (min(stamps), max(stamps)) if stamps else None


# Tasks that did not succeed (an exception, a retry): their time is not in "busy", and the
# coordinator may wait a lease before sending them again, so a run with any is slow.
UNSUCCESSFUL = re.compile(r"Task waikan\.(\w+)\[[^\]]+\] (raised|retry)")
WHY = re.compile(r"Task waikan\.\w+\[[^\]]+\] (?:raised unexpected|retry): (.{0,160})")


def breakdown(times: dict[str, list[float]], workers: int, elapsed: float, log: str = "") -> str:
    busy = sum(sum(v) for v in times.values())
    parts = [f"{k} {len(v)} x {sum(v) / len(v) * 1000:.0f} ms" for k, v in sorted(times.items())]
    share = busy / (workers * elapsed)
    bad: dict[str, int] = {}
    for name, how in UNSUCCESSFUL.findall(log):
        bad[f"{name} {how}"] = bad.get(f"{name} {how}", 0) + 1
    listed = ", ".join(f"{k} x{n}" for k, n in sorted(bad.items()))
    why = sorted(set(WHY.findall(log)))[:3]
    other = f"; not succeeded: {listed} ({' | '.join(why)})" if bad else ""
    return (
        f"{'':>12}tasks: {', '.join(parts)}; busy {share:.0%} of {workers} x {elapsed:.1f} s"
        + other
    )


def children_cpu() -> float:
    """CPU seconds of every finished child process (workers, their pools, waikan runs)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def commits(url: str) -> int:
    """Transactions committed in the database so far (PostgreSQL's statistics)."""
    from sqlalchemy import create_engine, text

    time.sleep(1.1)  # backends flush their counters at most once a second
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            return int(
                c.scalar(
                    text(
                        "SELECT xact_commit FROM pg_stat_database "
                        "WHERE datname = current_database()"
                    )
                )
                or 0
            )
    finally:
        engine.dispose()


def wait_ready(workers: Any, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = workers.log_text()
        # Ready, and each pool process warmed up (its one-time costs outside the timing,
        # as for long-running workers).
        if text.count(" ready.") >= count and text.count(" warmed up") >= count:
            return
        time.sleep(0.2)
    raise RuntimeError("workers did not start:\n" + workers.log_text()[-2000:])


def main(argv: list[str] | None = None) -> int:
    from tests.distributed.cluster import (
        ANSWER,
        API_KEY,
        MODEL,
        Workers,
        cluster_env,
        site_routes,
        waikan,
    )
    from tests.servers.openai_server import FakeLLM
    from tests.servers.pages import PageServer
    from tests.services import PgServer, RedisServer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=48)
    ap.add_argument("--hosts", type=int, default=4, help="loopback hosts serving the pages")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="waikan-bench-queue-"))
    pg = PgServer(Path(tempfile.mkdtemp(prefix="waikan-bench-pg-")))
    redis_server = RedisServer(tmp / "redis")
    pg.start()
    redis_server.start()
    rates: dict[str, float] = {}
    sites = [PageServer({}, host=f"127.0.0.{k + 1}") for k in range(max(1, args.hosts))]
    try:
        with (
            contextlib.ExitStack() as stack,
            FakeLLM(api_key=API_KEY, model=MODEL, answer=ANSWER, delay=MODEL_LATENCY) as llm,
        ):
            for site in sites:
                stack.enter_context(site)
            site = sites[0]
            routes = site_routes(site.base, args.pages, hosts=[s.base for s in sites])
            for s in sites:
                for path, route in routes.items():
                    s.routes[path] = route if path == "/feed.xml" else slow(route)
            for label, count in (
                ("inline", 0),
                ("1 worker", 1),
                ("2 workers", 2),
                ("4 workers", 4),
            ):
                env = cluster_env(
                    tmp / label.replace(" ", ""),
                    pg.new_database(),
                    redis_server.url(count),
                    llm.url,
                )
                cpu_before = children_cpu()
                commits_before = commits(env["WAIKAN_STORE_URL"])
                # The first poll (at add) lists every page; the timed run fetches them all.
                feed = f"{site.base}/feed.xml"
                added = waikan(["sources", "add", feed, "--backfill", str(args.pages)], env)
                assert added.returncode == 0, added.stderr
                if count == 0:
                    started = time.perf_counter()
                    ran = waikan(["run"], env)
                    elapsed = time.perf_counter() - started
                else:
                    log = tmp / label.replace(" ", "")
                    log.mkdir(parents=True, exist_ok=True)
                    with Workers(env, count, concurrency=1, log=log) as pool:
                        wait_ready(pool, count)
                        started, wall = time.perf_counter(), time.time()
                        ran = waikan(["run", "--distributed"], env)
                        elapsed = time.perf_counter() - started
                        ended = time.time()
                        logs = pool.log_text()
                assert ran.returncode in (0, 3), ran.stderr[-2000:]
                rates[label] = args.pages / elapsed
                cpu = (children_cpu() - cpu_before) / args.pages
                txs = (commits(env["WAIKAN_STORE_URL"]) - commits_before) / args.pages
                print(
                    f"{label:>10}: {args.pages} pages in {elapsed:6.1f} s = {rates[label]:.2f}/s, "
                    f"CPU {cpu * 1000:.0f} ms/article (all processes, start-ups included), "
                    f"{txs:.0f} PostgreSQL transactions/article"
                )
                if count:
                    print(breakdown(task_times(logs), count, elapsed, logs))
                    span = task_span(logs)
                    if span:
                        print(
                            f"{'':>12}before the first task {span[0] - wall:.1f} s, "
                            f"after the last {ended - span[1]:.1f} s (the coordinator's start/end)"
                        )
    finally:
        pg.stop()
        redis_server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(pg.root, ignore_errors=True)
    base = rates["1 worker"]
    for label in ("2 workers", "4 workers", "inline"):
        print(f"{label} / 1 worker: {rates[label] / base:.2f}")
    ratio = rates["4 workers"] / base
    ok = ratio >= TARGET_4
    print(f"4 workers / 1 worker: {ratio:.2f} (target >= {TARGET_4}): {'ok' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
