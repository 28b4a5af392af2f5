"""Per-host politeness holds across four worker processes together, not per process."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.distributed.cluster import ANSWER, API_KEY, BASE_ENV, MODEL, Workers, waikan
from tests.servers.feeds import ago, corpus_pages, rss
from tests.servers.openai_server import FakeLLM

PER_HOST = 2
DELAY = 0.25
HOLD = 0.6  # each page answers after this long, so a host's requests overlap
PAGES = 8
JITTER = 0.05


class Host:
    """A loopback site on its own address (127.0.0.N) recording when each page request starts."""

    def __init__(self, ip: str, pages: list[bytes]) -> None:
        self.starts: list[tuple[float, float]] = []
        self.lock = threading.Lock()
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path.startswith("/news/"):
                    started = time.monotonic()
                    time.sleep(HOLD)
                    body = pages[int(self.path.rsplit("/", 1)[1])]
                    ctype = "text/html; charset=utf-8"
                elif self.path == "/feed.xml":
                    started = None
                    items = [(f"{host.base}/news/{i}", f"S{i}", ago(i)) for i in range(PAGES)]
                    body, ctype = rss(items), "application/rss+xml"
                else:
                    started, body, ctype = None, b"", "text/plain"
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                if started is not None:
                    with host.lock:
                        host.starts.append((started, time.monotonic()))

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((ip, 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://{ip}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def max_overlap(self) -> int:
        events = sorted([(s, 1) for s, _ in self.starts] + [(e, -1) for _, e in self.starts])
        now = peak = 0
        for _t, step in events:
            now += step
            peak = max(peak, now)
        return peak


@contextmanager
def hosts(count: int) -> Iterator[list[Host]]:
    pages = corpus_pages(count * PAGES)
    with ExitStack() as stack:
        made = []
        for n in range(count):
            h = Host(f"127.0.0.{n + 1}", pages[n * PAGES : (n + 1) * PAGES])
            stack.callback(h.close)
            made.append(h)
        yield made


@pytest.mark.slow
def test_per_host_limit_and_delay_hold_across_four_workers(
    tmp_path: Path, pg_url: str, redis_url: str
) -> None:
    with hosts(3) as sites, FakeLLM(api_key=API_KEY, model=MODEL, answer=ANSWER) as llm:
        env = BASE_ENV | {
            "WAIKAN_HOME": str(tmp_path / "ws"),
            "WAIKAN_STORE_URL": pg_url,
            "WAIKAN_QUEUE_URL": redis_url,
            "WAIKAN_FETCH_PER_HOST": str(PER_HOST),
            "WAIKAN_FETCH_HOST_DELAY": str(DELAY),
            "WAIKAN_LLM_BASE_URL": llm.url,
            "WAIKAN_LLM_MODEL": MODEL,
            "WAIKAN_LLM_API_KEY": API_KEY,
        }
        for site in sites:
            added = waikan(
                ["sources", "add", f"{site.base}/feed.xml", "--backfill", str(PAGES)], env
            )
            assert added.returncode == 0, added.stderr
        with Workers(env, 4, concurrency=1, log=tmp_path) as pool:
            ran = waikan(["run", "--distributed"], env)
            logs = pool.log_text()
        assert ran.returncode in (0, 3), (ran.stderr, logs[-3000:])
    assert all(len(s.starts) == PAGES for s in sites), [len(s.starts) for s in sites]
    for site in sites:
        starts = sorted(s for s, _ in site.starts)
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        # Start times are booked in PostgreSQL; the server stamps arrival, after the
        # worker's connect and scheduling (tens of ms on a loaded 2-core machine).
        assert min(gaps) >= DELAY - JITTER, (site.base, gaps)
        assert site.max_overlap() <= PER_HOST, site.base
    assert max(s.max_overlap() for s in sites) == PER_HOST
