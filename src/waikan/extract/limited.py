"""Extraction with a ceiling: one article may not take more than a set time or memory.

A hostile page can cost far more than its size suggests (lxml and ``json``
recurse on nesting, trafilatura and htmldate run regexes over the whole
text). :func:`extract_limited` refuses what it can see cheaply before
parsing (bytes over the cap, tag nesting deeper than ``max_depth``), then
runs :func:`~waikan.extract.core.extract` in a forked worker process with
``RLIMIT_AS`` (memory) and ``RLIMIT_CPU`` set, and a wall-clock deadline. A
page that breaks a limit comes back as an ``Extracted`` with
``reject_reason`` ``too_large``, ``too_deep``, ``timeout`` or ``memory``,
so the pipeline records it as ``rejected`` with that reason and goes on.
"""

from __future__ import annotations

import math
import multiprocessing
import re
import resource
import signal
from typing import Any

from waikan.errors import ExtractError
from waikan.extract.core import DEFAULT_MAX_BYTES, DEFAULT_MIN_WORDS, _too_big, extract
from waikan.extract.quality import TOO_LARGE
from waikan.models import Extracted

__all__ = ["MEMORY", "TIMEOUT", "TOO_DEEP", "extract_limited", "nesting_depth"]

TOO_DEEP = "too_deep"
TIMEOUT = "timeout"
MEMORY = "memory"

_TAG = re.compile(rb"<(/?)([A-Za-z][A-Za-z0-9-]*)[^>]*?(/?)>")
_VOID = frozenset(b"area base br col embed hr img input link meta param source track wbr".split())


def nesting_depth(html: bytes | str, stop: int | None = None) -> int:
    """Deepest element nesting, by a linear scan of the tags (void and self-closed ignored).

    Stops counting once ``stop`` is passed: the answer is then just "deeper".
    """
    data = html.encode("utf-8", "surrogatepass") if isinstance(html, str) else html
    depth = deepest = 0
    for m in _TAG.finditer(data):
        closing, name, selfclosed = m.group(1), m.group(2).lower(), m.group(3)
        if closing:
            depth = max(0, depth - 1)
        elif not selfclosed and name not in _VOID:
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop is not None and deepest > stop:
                    break
    return deepest


def _child(conn: Any, html: bytes | str, kwargs: dict[str, Any], cpu: int, extra: int) -> None:
    # The ceiling is what the extraction may add to the worker as it starts.
    memory = _vm_bytes() + extra
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    try:
        conn.send(("ok", extract(html, **kwargs)))
    except MemoryError:
        conn.send((MEMORY, None))
    except RecursionError:
        conn.send((TOO_DEEP, None))
    except ExtractError as exc:
        conn.send(("error", str(exc)))
    except Exception as exc:  # libraries fail oddly when an allocation is refused
        near_limit = _peak_bytes() >= memory * 0.9
        conn.send((MEMORY, None) if near_limit else ("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


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
) -> Extracted:
    """:func:`extract` within limits; a limit broken is a ``reject_reason``, never a hang."""

    def rejected(reason: str) -> Extracted:
        return Extracted(None, source_name, None, None, (), url=url, reject_reason=reason)

    if _too_big(html, max_bytes):
        return rejected(TOO_LARGE)
    if nesting_depth(html, stop=max_depth) > max_depth:
        return rejected(TOO_DEEP)
    kwargs = {"url": url, "source_name": source_name, "min_words": min_words}
    kwargs["max_bytes"] = max_bytes
    # forkserver, not fork: a fork of a process that runs threads (a web server, a thread
    # pool) can inherit a held lock and hang; the fork server is a clean, single-threaded
    # process that has already imported the extractor, so each worker still starts fast.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["waikan.extract.core"])
    receive, send = ctx.Pipe(duplex=False)
    worker = ctx.Process(
        target=_child,
        args=(send, html, kwargs, max(1, math.ceil(timeout)), memory_mb * 2**20),
        daemon=True,
    )
    worker.start()
    send.close()
    try:
        if not receive.poll(timeout):
            worker.kill()
            return rejected(TIMEOUT)
        try:
            kind, value = receive.recv()
        except EOFError:  # killed by its limits before it could answer
            worker.join(5)
            return rejected(TIMEOUT if worker.exitcode == -signal.SIGXCPU else MEMORY)
    finally:
        receive.close()
        worker.join(5)
        if worker.is_alive():
            worker.kill()
    if kind == "ok":
        assert isinstance(value, Extracted)
        return value
    if kind == "error":
        raise ExtractError(str(value))
    return rejected(str(kind))
