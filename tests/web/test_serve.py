"""``waikan serve`` as a user runs it: the site at /, the desk at /desk, /metrics, SIGTERM."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tests.conftest import _CLEAN, ROOT
from tests.render.site_support import add_post, workspace


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_hosts_site_desk_and_metrics(home: Path) -> None:
    ws = workspace(home)
    aid = add_post(ws, 1)
    ws.close()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "waikan",
            "--home",
            str(home),
            "serve",
            "--port",
            str(port),
            "--interval",
            "3600",
        ],
        env=_CLEAN,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        site = None
        while time.monotonic() < deadline:
            try:
                site = httpx.get(f"{base}/posts/{aid}.html")
                if site.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        assert site is not None and site.status_code == 200  # built by serve itself
        assert (home / "site" / "posts" / f"{aid}.html").is_file()  # HOME/site, not the cwd
        login = httpx.get(f"{base}/desk/login")
        assert login.status_code == 200 and "登录" in login.text
        metrics = httpx.get(f"{base}/metrics").text
        # the scheduler's first tick may have approved it already (auto review mode)
        assert re.search(r'^waikan_articles\{status="(summarized|approved)"\} 1$', metrics, re.M)
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped" in err and "Traceback" not in err


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
