"""Extraction within limits: each broken limit is a reject reason, never a hang or a crash."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
from tests.conftest import DATA

from waikan.config import load
from waikan.errors import ExtractError
from waikan.extract.core import extract
from waikan.extract.limited import _POOL, Limits, extract_limited, nesting_depth

PAGE = (DATA / "reuters-blinken-wang.html").read_bytes()
URL = "https://www.reuters.com/world/blinken-wang/"


def test_same_result_as_in_process() -> None:
    assert extract_limited(PAGE, url=URL) == extract(PAGE, url=URL)


def test_nesting_depth_counts_elements_not_void_tags() -> None:
    assert nesting_depth(b"<div><span>a<br>b<img src=x></span><span/></DIV>") == 2
    assert nesting_depth(b"<b>" * 50, stop=10) == 11  # stops counting past the limit


def test_unclosed_paragraphs_and_items_are_not_nesting() -> None:
    """Their end tags are optional: the parser closes each one when the next begins."""
    assert nesting_depth(b"<div>" + b"<p>text<li>item<td>cell" * 5000 + b"</div>") == 1
    assert nesting_depth(b"</div>" * 10 + b"<section>" * 3) == 3  # stray closers give no credit


def test_deeply_nested_page_is_too_deep() -> None:
    deep = b"<html><body>" + b"<div>" * 100_000 + b"x" + b"</div>" * 100_000
    assert extract_limited(deep).reject_reason == "too_deep"


def test_over_the_byte_cap_is_too_large() -> None:
    assert extract_limited(PAGE, max_bytes=1000).reject_reason == "too_large"


COSTLY = b"<html><body>" + b"<p>word</p>" * 100_000  # seconds of CPU in trafilatura


def test_cpu_time_is_timeout_and_wall_time_has_slack() -> None:
    """RLIMIT_CPU rejects a page that computes too long; the wall clock, at twice the
    limit plus a second, only catches a waiting worker, so a busy machine rejects nothing."""
    assert extract_limited(COSTLY, timeout=1).reject_reason == "timeout"
    assert extract_limited(PAGE, url=URL, timeout=0.001) == extract(PAGE, url=URL)


@pytest.mark.parametrize(
    ("sig", "verdict"), [(signal.SIGSEGV, "error"), (signal.SIGKILL, "memory")]
)
def test_a_crash_is_an_error_and_a_kill_is_memory(sig: int, verdict: str) -> None:
    """Only the OOM killer's SIGKILL says "memory" (a permanent rejection); a worker that
    crashed otherwise is an extraction error, not a verdict on the page."""
    extract_limited(PAGE, url=URL)  # an idle worker, the next one taken
    pid = _POOL.idle[-1].process.pid
    assert pid is not None
    killer = threading.Timer(0.5, os.kill, (pid, sig))
    killer.start()
    try:
        if verdict == "error":
            with pytest.raises(ExtractError, match="exited with code -11"):
                extract_limited(COSTLY, timeout=300)
        else:
            assert extract_limited(COSTLY, timeout=300).reject_reason == verdict
    finally:
        killer.cancel()
    assert extract_limited(PAGE, url=URL) == extract(PAGE, url=URL)  # a fresh worker


def test_a_forked_child_extracts_with_its_own_fork_server() -> None:
    """The parent's fork server is not the child's: multiprocessing would waitpid on it."""
    extract_limited(PAGE, url=URL)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        try:
            code = 0 if extract_limited(PAGE, url=URL) == extract(PAGE, url=URL) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_memory_ceiling_is_memory() -> None:
    big = b"<html><body>" + b"<p>some words here and there</p>" * 300_000
    got = extract_limited(big, max_bytes=100 * 2**20, timeout=60, memory_mb=100)
    assert got.reject_reason == "memory"


def test_not_a_document_is_still_an_error() -> None:
    with pytest.raises(ExtractError):
        extract_limited(b"\x00\x01binary" * 100)


def test_limits_hold_in_a_process_that_is_already_large() -> None:
    ballast = bytearray(1200 * 2**20)  # the parent's address space, inherited by the fork
    try:
        assert extract_limited(PAGE, url=URL, memory_mb=300) == extract(PAGE, url=URL)
        with pytest.raises(ExtractError):
            extract_limited(b"\x00\x01binary" * 100, memory_mb=300)
    finally:
        del ballast


def test_without_isolation_the_cheap_checks_still_hold() -> None:
    deep = b"<html><body>" + b"<div>" * 100_000 + b"x" + b"</div>" * 100_000
    assert extract_limited(deep, isolate=False).reject_reason == "too_deep"
    assert extract_limited(PAGE, max_bytes=1000, isolate=False).reject_reason == "too_large"
    assert extract_limited(PAGE, url=URL, isolate=False) == extract(PAGE, url=URL)


def test_worker_is_reused_and_replaced_once_a_limit_killed_it() -> None:
    """A process per page cost more than the page: one worker serves page after page."""
    extract_limited(PAGE, url=URL)
    first = {w.process.pid for w in _POOL.idle}
    assert extract_limited(PAGE, url=URL) == extract(PAGE, url=URL)
    assert {w.process.pid for w in _POOL.idle} == first  # the same process, again idle
    assert extract_limited(COSTLY, timeout=1).reject_reason == "timeout"
    assert extract_limited(PAGE, url=URL) == extract(PAGE, url=URL)
    assert len(_POOL.idle) == 1 and {w.process.pid for w in _POOL.idle} != first


def test_settings_defaults_are_the_library_defaults(tmp_path: Path) -> None:
    """Callers without a config (``fetch_article(limits=None)``) get what the settings give."""
    assert Limits.from_config(load(tmp_path, env={})) == Limits()
    cfg = load(tmp_path, env={"WAIKAN_EXTRACT_TIMEOUT": "2.5", "WAIKAN_EXTRACT_ISOLATE": "off"})
    assert Limits.from_config(cfg) == Limits(timeout=2.5, isolate=False)


def test_a_worker_left_bloated_by_a_costly_page_retires() -> None:
    """60,000 tiny paragraphs leave ~170 MB of heap behind: no idle worker keeps it."""
    extract_limited(PAGE, url=URL)
    costly = b"<html><body>" + b"<p>word</p>" * 60_000
    assert extract_limited(costly, timeout=300).reject_reason is None  # within the limits
    assert _POOL.idle == []
    assert extract_limited(PAGE, url=URL) == extract(PAGE, url=URL)
    assert len(_POOL.idle) == 1
