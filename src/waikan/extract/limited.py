"""Extraction with a ceiling: one article may not take more than a set time or memory.

A hostile page can cost far more than its size suggests (lxml and ``json``
recurse on nesting, trafilatura and htmldate run regexes over the whole
text). :func:`extract_limited` refuses what it can see cheaply before
parsing (bytes over the cap, tag nesting deeper than ``max_depth``), then
runs :func:`~waikan.extract.core.extract` in a worker process with
``RLIMIT_AS`` (memory) and ``RLIMIT_CPU`` set, and a wall-clock deadline. A
page that breaks a limit comes back as an ``Extracted`` with
``reject_reason`` ``too_large``, ``too_deep``, ``timeout`` or ``memory``,
so the pipeline records it as ``rejected`` with that reason and goes on.

Workers are reused: a fresh process per page cost ~100 ms (the fork, and
every lazily loaded model of trafilatura, htmldate and py3langid loaded
again), more than extracting the page. A worker serves pages one at a time
with its limits re-armed per page, and is replaced when a limit killed it,
it answered ``memory`` (its heap is then suspect), or a costly page left its
heap much larger than it was.

:func:`extract_for` is the pipeline's entry point: the same, with the limits
read from the ``extract.*`` settings.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import re
import resource
import signal
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from waikan.errors import ExtractError
from waikan.extract.core import DEFAULT_MAX_BYTES, DEFAULT_MIN_WORDS, _too_big, extract
from waikan.extract.quality import TOO_LARGE
from waikan.models import Extracted

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from waikan.config import Config

__all__ = [
    "MEMORY",
    "TIMEOUT",
    "TOO_DEEP",
    "Limits",
    "extract_for",
    "extract_limited",
    "nesting_depth",
]

TOO_DEEP = "too_deep"
TIMEOUT = "timeout"
MEMORY = "memory"

# Idle workers kept for reuse; more concurrent callers than this start extra ones.
_IDLE_WORKERS = 4
# Pages one worker serves before it is replaced (bounds heap fragmentation and leaks).
_PAGES_PER_WORKER = 1000
# A worker whose resident memory grew this much past its first page retires: a costly page
# leaves ~150 MB of fragmented heap behind that an idle worker would otherwise keep.
_RETIRE_GROWTH = 128 * 2**20

# Elements that cannot nest: void ones, and those whose end tag is optional (a <p> or <li>
# closes the open one), so a page that never closes its paragraphs is not "deep".
_FLAT = (
    b"area base br col embed hr img input link meta param source track wbr "
    b"p li dt dd option optgroup tr td th thead tbody tfoot colgroup rb rt rtc rp html head body"
)
_NESTING = rb"(?!(?:" + b"|".join(_FLAT.split()) + rb")[\s/>])[A-Za-z][^>]*"
# One match per tag that nests: "/" for a closing tag, "" for an opening one (not "<x/>").
# Greedy runs and no per-tag groups: ~2.6 ms for a corpus page, 5x the first version.
_TAG = re.compile(rb"<(?:(/)" + _NESTING + rb"|" + _NESTING + rb"(?<!/))>", re.IGNORECASE)


def nesting_depth(html: bytes | str, stop: int | None = None) -> int:
    """Deepest element nesting, by a linear scan of the tags that can nest.

    Stops counting once ``stop`` is passed: the answer is then just "deeper".
    """
    data = html.encode("utf-8", "surrogatepass") if isinstance(html, str) else html
    depth = deepest = 0
    for closing in _TAG.findall(data):
        if closing:
            if depth:
                depth -= 1
        else:
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop is not None and deepest > stop:
                    break
    return deepest


@dataclass(frozen=True)
class Limits:
    """What one article's extraction may cost; ``isolate`` off skips the worker process."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_depth: int = 2000
    timeout: float = 30.0
    memory_mb: int = 1024
    isolate: bool = True

    @classmethod
    def from_config(cls, cfg: Config) -> Limits:
        return cls(
            max_bytes=int(cfg["extract.max_bytes"]),
            max_depth=int(cfg["extract.max_depth"]),
            timeout=float(cfg["extract.timeout"]),
            memory_mb=int(cfg["extract.memory_mb"]),
            isolate=bool(cfg["extract.isolate"]),
        )

    def extract(
        self,
        html: bytes | str,
        *,
        url: str | None = None,
        source_name: str | None = None,
        min_words: int = DEFAULT_MIN_WORDS,
    ) -> Extracted:
        """:func:`extract_limited` with these limits."""
        return extract_limited(
            html,
            url=url,
            source_name=source_name,
            min_words=min_words,
            max_bytes=self.max_bytes,
            max_depth=self.max_depth,
            timeout=self.timeout,
            memory_mb=self.memory_mb,
            isolate=self.isolate,
        )


# -- the worker process -------------------------------------------------------------------


def _serve(conn: Connection) -> None:
    """Extract pages sent over ``conn`` until it closes, each under fresh limits."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGXCPU would otherwise dump core
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    _, as_hard = resource.getrlimit(resource.RLIMIT_AS)
    settled: int | None = None  # resident memory after the first page (models loaded)
    while True:
        try:
            html, kwargs, cpu, extra = conn.recv()
        except (EOFError, OSError):
            return
        # Limits are soft ones, re-armed per page: RLIMIT_CPU counts the worker's whole
        # life, and the ceiling is what this page may add to the worker as it stands.
        used = resource.getrusage(resource.RUSAGE_SELF)
        cpu_soft = math.ceil(used.ru_utime + used.ru_stime) + cpu
        memory = _vm_bytes() + extra
        resource.setrlimit(resource.RLIMIT_CPU, (_under(cpu_soft, cpu_hard), cpu_hard))
        resource.setrlimit(resource.RLIMIT_AS, (_under(memory, as_hard), as_hard))
        answer = _answer(html, kwargs, memory)
        resource.setrlimit(resource.RLIMIT_AS, (as_hard, as_hard))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_hard, cpu_hard))
        resident = _status_bytes("VmRSS:")
        settled = resident if settled is None else settled
        # after a refused allocation a library may be left half-way: start afresh
        retire = answer[0] == MEMORY or resident > settled + _RETIRE_GROWTH
        conn.send((*answer, retire))
        if retire:
            return


def _under(value: int, hard: int) -> int:
    return value if hard == resource.RLIM_INFINITY else min(value, hard)


def _answer(html: bytes | str, kwargs: dict[str, Any], memory: int) -> tuple[str, Any]:
    try:
        return ("ok", extract(html, **kwargs))
    except MemoryError:
        return (MEMORY, None)
    except RecursionError:
        return (TOO_DEEP, None)
    except ExtractError as exc:
        return ("error", str(exc))
    except Exception as exc:  # libraries fail oddly when an allocation is refused
        near_limit = _peak_bytes() >= memory * 0.9
        return (MEMORY, None) if near_limit else ("error", f"{type(exc).__name__}: {exc}")


def _vm_bytes() -> int:
    return _status_bytes("VmSize:")


def _peak_bytes() -> int:
    return _status_bytes("VmPeak:")


def _status_bytes(field: str) -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


# -- the parent's side ----------------------------------------------------------------------


class _Worker:
    def __init__(self) -> None:
        # forkserver, not fork: a fork of a process that runs threads (a web server, a
        # thread pool) can inherit a held lock and hang; the fork server is a clean,
        # single-threaded process that has already imported the extractor.
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["waikan.extract.core"])
        self.conn, child = ctx.Pipe(duplex=True)
        self.process: BaseProcess = ctx.Process(target=_serve, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self.pages = 0

    def close(self) -> None:
        self.conn.close()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)

    def kill(self) -> None:
        self.process.kill()
        self.conn.close()
        self.process.join(5)


class _Pool:
    """Idle workers of this process (a forked child starts its own: pids are checked)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = os.getpid()
        self.idle: list[_Worker] = []

    def take(self) -> _Worker:
        with self.lock:
            if self.pid != os.getpid():  # inherited across a fork: those are not our children
                self.pid, self.idle = os.getpid(), []
            while self.idle:
                worker = self.idle.pop()
                if worker.process.is_alive():
                    return worker
                worker.close()
        return _Worker()

    def give_back(self, worker: _Worker) -> None:
        worker.pages += 1
        with self.lock:
            keep = (
                self.pid == os.getpid()
                and len(self.idle) < _IDLE_WORKERS
                and worker.pages < _PAGES_PER_WORKER
            )
            if keep:
                self.idle.append(worker)
                return
        worker.close()


_POOL = _Pool()


def _forget_fork_server() -> None:
    """In a forked child, the parent's fork server is not ours: multiprocessing would
    ``waitpid`` on it and fail (ChildProcessError), so the child starts its own."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    if server is None:
        return
    alive = getattr(server, "_forkserver_alive_fd", None)
    if alive is not None:  # our copy of the parent's keep-alive pipe
        with contextlib.suppress(OSError):
            os.close(alive)
    server._forkserver_address = None
    server._forkserver_alive_fd = None
    server._forkserver_pid = None
    server._lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_fork_server)


def _in_worker(
    html: bytes | str, kwargs: dict[str, Any], timeout: float, memory_mb: int
) -> tuple[str, Any]:
    cpu = max(1, math.ceil(timeout))
    worker = _POOL.take()
    try:
        try:
            worker.conn.send((html, kwargs, cpu, memory_mb * 2**20))
        except OSError:  # it died while idle (not this page's doing): one fresh worker
            worker.kill()
            worker = _Worker()
            worker.conn.send((html, kwargs, cpu, memory_mb * 2**20))
        # RLIMIT_CPU stops a page that computes too long; the wall clock, with slack for
        # a busy machine, only catches one that waits, so load alone rejects nothing.
        if not worker.conn.poll(2 * timeout + 1):
            worker.kill()
            return (TIMEOUT, None)
        kind, value, retire = worker.conn.recv()
    except (EOFError, OSError):  # killed before it could answer
        worker.process.join(5)
        died = worker.process.exitcode
        worker.kill()
        if died == -signal.SIGXCPU:
            return (TIMEOUT, None)
        if died == -signal.SIGKILL:  # the kernel's OOM killer
            return (MEMORY, None)
        # a crash is a failure to report, not a verdict on the page
        return ("error", f"the extraction worker exited with code {died}")
    except BaseException:
        worker.kill()
        raise
    if retire:
        worker.close()
    else:
        _POOL.give_back(worker)
    return (kind, value)


def extract_limited(
    html: bytes | str,
    *,
    url: str | None = None,
    source_name: str | None = None,
    min_words: int = DEFAULT_MIN_WORDS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = 2000,
    timeout: float = 30.0,
    memory_mb: int = 1024,
    isolate: bool = True,
) -> Extracted:
    """:func:`extract` within limits; a limit broken is a ``reject_reason``, never a hang.

    ``isolate=False`` keeps the cheap checks (bytes, nesting) and extracts in this
    process, without the time and memory limits.
    """

    def rejected(reason: str) -> Extracted:
        return Extracted(None, source_name, None, None, (), url=url, reject_reason=reason)

    if _too_big(html, max_bytes):
        return rejected(TOO_LARGE)
    if nesting_depth(html, stop=max_depth) > max_depth:
        return rejected(TOO_DEEP)
    kwargs: dict[str, Any] = {
        "url": url,
        "source_name": source_name,
        "min_words": min_words,
        "max_bytes": max_bytes,
    }
    if not isolate:
        try:
            return extract(html, **kwargs)
        except RecursionError:
            return rejected(TOO_DEEP)
    kind, value = _in_worker(html, kwargs, timeout, memory_mb)
    if kind == "ok":
        assert isinstance(value, Extracted)
        return value
    if kind == "error":
        raise ExtractError(str(value))
    return rejected(str(kind))


def extract_for(
    cfg: Config, html: bytes | str, *, url: str | None = None, source_name: str | None = None
) -> Extracted:
    """Extract one fetched or read page within the limits the ``extract.*`` settings set."""
    return Limits.from_config(cfg).extract(
        html, url=url, source_name=source_name, min_words=int(cfg["extract.min_words"])
    )
