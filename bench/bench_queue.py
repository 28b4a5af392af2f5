"""Distributed throughput: ``waikan run --distributed`` with 1, 2 and 4 workers, and inline.

usage: python bench/bench_queue.py [--pages N]

A loopback news site answers every page after 100 ms and a loopback model
after 300 ms (I/O-bound work, as in production). PostgreSQL and Redis are
started from Debian's packages (``make deps-services``). Each worker process
runs one task at a time (``-c 1``). Printed, measured in the same run: articles
per second of each run, and each as a ratio to 1 worker (target >= 3.0 at 4
workers), plus the inline ``waikan run`` in one process as a ratio to 1 worker.
Exit status 1 when the target is missed.
"""

from __future__ import annotations

import argparse
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


def wait_ready(workers: Any, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if workers.log_text().count(" ready.") >= count:
            return
        time.sleep(0.2)
    raise RuntimeError("workers did not start:\n" + workers.log_text()[-2000:])


def main(argv: list[str] | None = None) -> int:
    from tests.distributed.cluster import (
        ANSWER,
        API_KEY,
        BASE_ENV,
        MODEL,
        Workers,
        site_routes,
        waikan,
    )
    from tests.servers.openai_server import FakeLLM
    from tests.servers.pages import PageServer
    from tests.services import PgServer, RedisServer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=48)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="waikan-bench-queue-"))
    pg = PgServer(Path(tempfile.mkdtemp(prefix="waikan-bench-pg-")))
    redis_server = RedisServer(tmp / "redis")
    pg.start()
    redis_server.start()
    rates: dict[str, float] = {}
    try:
        with (
            PageServer({}) as site,
            FakeLLM(api_key=API_KEY, model=MODEL, answer=ANSWER, delay=MODEL_LATENCY) as llm,
        ):
            for path, route in site_routes(site.base, args.pages).items():
                site.routes[path] = route if path == "/feed.xml" else slow(route)
            for label, count in (
                ("inline", 0),
                ("1 worker", 1),
                ("2 workers", 2),
                ("4 workers", 4),
            ):
                env = BASE_ENV | {
                    "WAIKAN_HOME": str(tmp / label.replace(" ", "")),
                    "WAIKAN_STORE_URL": pg.new_database(),
                    "WAIKAN_QUEUE_URL": redis_server.url(count),
                    "WAIKAN_LLM_BASE_URL": llm.url,
                    "WAIKAN_LLM_MODEL": MODEL,
                    "WAIKAN_LLM_API_KEY": API_KEY,
                }
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
                        started = time.perf_counter()
                        ran = waikan(["run", "--distributed"], env)
                        elapsed = time.perf_counter() - started
                assert ran.returncode in (0, 3), ran.stderr[-2000:]
                rates[label] = args.pages / elapsed
                print(f"{label:>10}: {args.pages} pages in {elapsed:6.1f} s = {rates[label]:.2f}/s")
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
