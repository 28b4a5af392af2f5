"""A loopback web server serving recorded pages and misbehaving on purpose."""

from __future__ import annotations

import gzip
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up on purpose (size caps) are expected here


class PageServer:
    """``routes``: path → bytes (200, text/html) or a callable(handler) for special answers.

    ``host``: any 127.x.y.z address, so one test can stand up several distinct hosts.
    """

    def __init__(self, routes: dict[str, Any], host: str = "127.0.0.1") -> None:
        self.routes = routes
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.hits.append(self.path)
                route = server.routes.get(self.path)
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif callable(route):
                    route(self)
                else:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(route)))
                    self.end_headers()
                    self.wfile.write(route)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = _QuietServer((host, 0), Handler)
        self._httpd.daemon_threads = True
        self.base = f"http://{host}:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> PageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def redirect(to: str) -> Any:
    def answer(h: BaseHTTPRequestHandler) -> None:
        h.send_response(302)
        h.send_header("Location", to)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return answer


def endless(h: BaseHTTPRequestHandler) -> None:
    """A response that never ends (no length, chunks forever until the client hangs up)."""
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Connection", "close")
    h.end_headers()
    try:
        while True:
            h.wfile.write(b"<p>" + b"spam " * 2000 + b"</p>\n")
    except OSError:
        return


def gzip_bomb(h: BaseHTTPRequestHandler) -> None:
    """100 MiB of zeros, ~100 KiB on the wire."""
    body = gzip.compress(b"\0" * (100 * 1024 * 1024), compresslevel=9)
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Content-Encoding", "gzip")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def slow(h: BaseHTTPRequestHandler) -> None:
    time.sleep(5)
    h.send_response(200)
    h.send_header("Content-Length", "0")
    h.end_headers()
