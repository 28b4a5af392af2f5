"""The desk served for real: uvicorn on a loopback port over a fresh workspace."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from tests.conftest import _CLEAN, ROOT
from tests.render.site_support import add_post, workspace

from waikan.web import accounts
from waikan.web.serve import WebServer
from waikan.workspace import Workspace

__all__ = [
    "PASSWORD",
    "add_post",
    "client",
    "csrf_of",
    "desk",
    "free_port",
    "login",
    "review_config",
    "serve_process",
    "workspace",
]

PASSWORD = "correct horse battery"


def review_config(home: Path, review: str = "review") -> None:
    """A workspace whose one destination waits for an editor (review mode)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "waikan.toml").write_text(
        f'[publish.hook]\ntype = "webhook"\nurl = "http://127.0.0.1:9/hook"\nreview = "{review}"\n',
        encoding="utf-8",
    )


@contextmanager
def desk(
    home: Path, users: tuple[tuple[str, str], ...] = (), **settings: str
) -> Iterator[tuple[WebServer, Workspace]]:
    """A workspace with ``users`` ((name, role), password :data:`PASSWORD`) served on loopback."""
    ws = workspace(home, **settings)
    for name, role in users:
        accounts.add_user(ws.store, name, role, PASSWORD)
    server = WebServer(ws, "127.0.0.1", 0)
    server.start()
    try:
        yield server, ws
    finally:
        server.stop()
        ws.close()


def client(server: WebServer, **kw: object) -> httpx.Client:
    return httpx.Client(base_url=server.url.rstrip("/"), timeout=30, **kw)  # type: ignore[arg-type]


def login(c: httpx.Client, name: str, password: str = PASSWORD) -> str:
    """Log in; returns the session's CSRF token (read from a desk page)."""
    r = c.post("/desk/login", data={"name": name, "password": password})
    assert r.status_code == 303, r.text
    return csrf_of(c.get("/desk/queue").text)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_process(home: Path, *args: str, ready: str = "/desk/login") -> Iterator[str]:
    """``waikan serve`` as a user runs it, in its own process; yields its base URL.

    Ready when ``ready`` answers 200; on exit SIGTERM, and it must stop cleanly.
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "waikan", "--home", str(home), "serve", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--interval", "3600", *args],
        env=_CLEAN,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + ready).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"serve did not start: {proc.communicate()[1][-2000:]}")
            time.sleep(0.2)
        yield base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "waikan serve: stopped" in err and "Traceback" not in err, err
