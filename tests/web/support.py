"""The desk served for real: uvicorn on a loopback port over a fresh workspace."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from tests.render.site_support import add_post, workspace

from waikan.web import accounts
from waikan.web.serve import WebServer
from waikan.workspace import Workspace

__all__ = ["PASSWORD", "add_post", "client", "csrf_of", "desk", "login", "review_config"]

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
