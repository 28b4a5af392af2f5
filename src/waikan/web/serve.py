"""``waikan serve``'s web side: uvicorn in a thread, and a site rebuild after changes.

The scheduler keeps the main thread (it owns SIGTERM/SIGINT); the web server
runs beside it and stops when the scheduler does. A desk action or a tick that
changed posts asks for a rebuild; the builder thread coalesces requests.
"""

from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path

import uvicorn

from waikan.errors import WaikanError
from waikan.workspace import Workspace

log = logging.getLogger(__name__)


class Rebuilder:
    """Rebuilds the static site in one background thread; many requests, one build."""

    def __init__(self, ws: Workspace, out: Path) -> None:
        self.ws = ws
        self.out = out
        self._wanted = threading.Event()
        self._stop = threading.Event()
        self.builds = 0
        self._thread = threading.Thread(target=self._loop, name="site-rebuild", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request(self) -> None:
        self._wanted.set()

    def stop(self) -> None:
        self._stop.set()
        self._wanted.set()
        self._thread.join(timeout=60)

    def _loop(self) -> None:
        from waikan.render.site import build_site

        while True:
            self._wanted.wait()
            if self._stop.is_set():
                return
            self._wanted.clear()
            try:
                build_site(self.ws, self.out)
                self.builds += 1
            except WaikanError as exc:
                log.warning("site rebuild failed: %s", exc)


class WebServer:
    """The desk and the reader site on ``host:port``, served from a thread."""

    def __init__(self, ws: Workspace, host: str, port: int) -> None:
        from waikan.render.site import site_dir
        from waikan.web.app import create_app

        site = site_dir(ws)  # HOME/site unless site.path is absolute
        self.rebuilder = Rebuilder(ws, site)
        app = create_app(ws, site_dir=site, on_change=self.rebuilder.request)
        try:
            self._sock = socket.create_server((host, port))
        except OSError as exc:
            raise WaikanError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://{host}:{self.port}/"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="web", daemon=True
        )

    def start(self) -> None:
        self.rebuilder.start()
        self.rebuilder.request()  # the site as the store has it now
        self._thread.start()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self.rebuilder.stop()
        self._sock.close()
