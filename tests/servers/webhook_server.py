"""A webhook receiver on loopback that verifies waikan's HMAC-SHA256 signature.

It recomputes ``sha256=HMAC(secret, "<timestamp>.<body>")`` independently
of waikan's code, refuses a bad or stale signature with 401, and records
every request (headers, raw body, verdict). ``fail(status, times)`` queues
error answers; ``hang_after`` accepts a request and never answers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookReceiver:
    def __init__(self, *, secret: str, max_skew: float = 300.0) -> None:
        self.secret = secret
        self.max_skew = max_skew
        self.requests: list[dict[str, Any]] = []
        self._faults: list[int | str] = []
        self._lock = threading.Lock()
        self.hang_seconds = 5.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, hang = receiver.handle(self.path, dict(self.headers.items()), body)
                if hang:
                    time.sleep(receiver.hang_seconds)
                    self.close_connection = True
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class _Quiet(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self._httpd = _Quiet(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def fail(self, what: int | str, times: int = 1) -> None:
        with self._lock:
            self._faults.extend([what] * times)

    def verified(self) -> list[dict[str, Any]]:
        """Accepted deliveries (parsed JSON), in arrival order."""
        return [r["json"] for r in self.requests if r["verified"] and r["status"] == 204]

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bool]:
        h = {k.lower(): v for k, v in headers.items()}
        ts = h.get("x-waikan-timestamp", "")
        expected = (
            "sha256="
            + hmac.new(self.secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        )
        verified = hmac.compare_digest(expected, h.get("x-waikan-signature", ""))
        fresh = ts.isdigit() and abs(time.time() - int(ts)) <= self.max_skew
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        entry = {
            "path": path,
            "headers": h,
            "body": body,
            "json": parsed,
            "verified": verified and fresh,
            "status": 0,
        }
        with self._lock:
            self.requests.append(entry)
            fault = self._faults.pop(0) if self._faults else None
        if fault == "hang_after" or fault == "hang":
            entry["status"] = 204 if fault == "hang_after" else 0
            return 204, True
        status = int(fault) if isinstance(fault, int) else (204 if entry["verified"] else 401)
        entry["status"] = status
        return status, False
