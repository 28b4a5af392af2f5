"""Shared fixtures: a CLI runner (in-process and as a real subprocess) and paths."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.services import (  # noqa: F401 - fixtures: real PostgreSQL and Redis
    pg_server,
    pg_url,
    redis_server,
    redis_url,
    store_url,
)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
SEED = ROOT.parent / "shared" / "seed" / "reference-post.txt"
SEED_SUMMARY_LINE = 6  # 0-based index of the summary line in the seed

# Tests never read the developer's environment or workspace. WAIKAN_TEST_PG (pg mode's
# server, set by pytest_configure) is kept: test modules import this file again as
# tests.conftest, after configure, and their subprocesses must map stores to it too.
_CLEAN = {
    k: v for k, v in os.environ.items() if not k.startswith("WAIKAN_") or k == "WAIKAN_TEST_PG"
}
# `waikan serve` in tests listens on a free port, never on web.port's fixed default.
_CLEAN["WAIKAN_WEB_PORT"] = "0"

# ``WAIKAN_TEST_STORE=pg``: tests of SQLite itself (its file, pragmas, paths) skip, by design.
PG_MODE = os.environ.get("WAIKAN_TEST_STORE") == "pg"
SQLITE_ONLY = pytest.mark.skipif(
    PG_MODE, reason="tests the SQLite file itself; WAIKAN_TEST_STORE=pg maps stores to PostgreSQL"
)


def pytest_configure(config: pytest.Config) -> None:
    """``WAIKAN_TEST_STORE=pg``: the whole suite's stores on a real PostgreSQL server.

    Every ``sqlite:///PATH`` store (in this process and in the ``python -m waikan``
    processes the tests start) maps to its own PostgreSQL database; see
    tests/pgmode/waikan_pgmode.py. Tests reading the SQLite file directly fail.
    """
    if os.environ.get("WAIKAN_TEST_STORE") != "pg":
        return
    import shutil
    import tempfile

    from tests.services import PgServer

    root = Path(tempfile.mkdtemp(prefix="waikan-pgmode-"))
    server = PgServer(root)
    # Registered before start: a start that fails half-way still stops the server and
    # removes its folder (cleanups run last-registered first: stop, then remove).
    config.add_cleanup(lambda: shutil.rmtree(root, ignore_errors=True))
    config.add_cleanup(server.stop)
    server.start()
    pgmode = str(ROOT / "tests" / "pgmode")
    path = os.pathsep.join(p for p in (pgmode, os.environ.get("PYTHONPATH", "")) if p)
    os.environ["WAIKAN_TEST_PG"] = _CLEAN["WAIKAN_TEST_PG"] = f"127.0.0.1:{server.port}"
    os.environ["PYTHONPATH"] = _CLEAN["PYTHONPATH"] = path
    sys.path.insert(0, pgmode)
    import waikan_pgmode  # noqa: F401 - patches open_store in this process


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_inproc(args: list[str], env: dict[str, str] | None = None) -> Result:
    """Run ``waikan ARGS`` in this process (fast); env replaces WAIKAN_* variables."""
    from waikan.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(_CLEAN | (env or {}))
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(args)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return Result(code, out.getvalue(), err.getvalue())


def run_proc(args: list[str], env: dict[str, str] | None = None, timeout: float = 120) -> Result:
    """Run ``python -m waikan ARGS`` as a real process, as a user would."""
    proc = subprocess.run(
        [sys.executable, "-m", "waikan", *args],
        env=_CLEAN | (env or {}),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "ws"


@pytest.fixture
def waikan(home: Path):  # type: ignore[no-untyped-def]
    """``waikan(*args, env=...)`` in-process against a fresh workspace."""

    def call(*args: str, env: dict[str, str] | None = None) -> Result:
        return run_inproc(["--home", str(home), *args], env)

    return call


def assert_one_line_error(result: Result) -> None:
    """Bad input: non-zero exit, a single ``waikan: error:`` line, never a traceback."""
    assert result.code != 0, result
    assert "Traceback" not in result.err, result.err
    lines = [ln for ln in result.err.splitlines() if ln.strip()]
    assert lines and all(ln.startswith("waikan: error: ") for ln in lines), result.err


@pytest.fixture(autouse=True)
def _checkout_stays_clean() -> Iterator[None]:
    """A test writes only under its tmp_path: never a site or workspace into the checkout."""
    stray = [ROOT / "site", ROOT / "waikan-data"]
    before = {p for p in stray if p.exists()}
    yield
    created = {p for p in stray if p.exists()} - before
    assert not created, f"test wrote into the checkout: {sorted(map(str, created))}"
