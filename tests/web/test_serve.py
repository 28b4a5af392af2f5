"""``waikan serve`` as a user runs it: the site at /, the desk at /desk, /metrics, SIGTERM."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from tests.conftest import _CLEAN, ROOT
from tests.render.site_support import add_post, workspace
from tests.web.support import serve_process


def test_serve_hosts_site_desk_and_metrics(home: Path) -> None:
    ws = workspace(home)
    aid = add_post(ws, 1)
    ws.close()
    with serve_process(home, ready=f"/posts/{aid}.html") as base:  # built by serve itself
        assert (home / "site" / "posts" / f"{aid}.html").is_file()  # HOME/site, not the cwd
        login = httpx.get(f"{base}/desk/login")
        assert login.status_code == 200 and "登录" in login.text
        metrics = httpx.get(f"{base}/metrics").text
        # the scheduler's first tick may have approved it already (auto review mode)
        assert re.search(r'^waikan_articles\{status="(summarized|approved)"\} 1$', metrics, re.M)


def test_serve_on_a_busy_port_is_a_one_line_error(home: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "waikan",
                "--home",
                str(home),
                "serve",
                "--port",
                str(port),
                "--ticks",
                "1",
            ],
            env=_CLEAN,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines == [lines[0]] and lines[0].startswith("waikan: error: cannot listen"), proc.stderr
