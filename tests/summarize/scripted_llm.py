"""A loopback OpenAI-compatible server whose answers are scripted per test.

Each chat request takes the next step of ``script`` (then ``default``):

- a ``str``: a normal chat completion with that content;
- ``Status(code, retry_after)``: an OpenAI-style error (with ``Retry-After``);
- ``Raw(bytes)``: a 200 whose body is exactly these bytes (malformed JSON);
- ``Hang(seconds)``: sleep, then answer ``default`` (past the client's timeout);
- a callable ``(body) -> str``: the content computed from the request.

Requests are recorded (``requests``, ``bodies``); ``GET /v1/models`` lists
``models``; a wrong key gets 401 and an unknown model 404, like real servers.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Status:
    code: int
    retry_after: float | None = None


@dataclass
class Raw:
    body: bytes


@dataclass
class Hang:
    seconds: float


Step = str | Status | Raw | Hang | Callable[[dict[str, Any]], str]


class ScriptedLLM:
    def __init__(
        self,
        *,
        api_key: str = "sk-test",
        models: tuple[str, ...] = ("test-model",),
        default: Step = "好的",
        script: list[Step] | None = None,
        delay: float = 0.0,
    ) -> None:
        self.api_key = api_key
        self.models = models
        self.default = default
        self.script = list(script or [])
        self.delay = delay
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def __enter__(self) -> ScriptedLLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def calls(self) -> int:
        return sum(1 for r in self.requests if r["path"].endswith("/chat/completions"))

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"].endswith("/chat/completions")]

    def prompt_text(self, i: int) -> str:
        return "\n".join(m["content"] for m in self.bodies[i]["messages"])

    def _next(self) -> Step:
        with self._lock:
            return self.script.pop(0) if self.script else self.default

    def _handle(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        body: Any = None
        with contextlib.suppress(ValueError):
            body = json.loads(raw) if raw else None
        with self._lock:
            self.requests.append({"method": method, "path": path, "body": body})
        if self.delay:
            time.sleep(self.delay)
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.")
        if method == "GET" and path.rstrip("/") == "/v1/models":
            data = [{"id": m, "object": "model", "owned_by": "test"} for m in self.models]
            return 200, json.dumps({"object": "list", "data": data}).encode(), {}
        if method != "POST" or path.rstrip("/") != "/v1/chat/completions":
            return _error(404, f"Unknown request URL: {method} {path}")
        if not isinstance(body, dict) or body.get("model") not in self.models:
            model = body.get("model") if isinstance(body, dict) else None
            return _error(404, f"The model `{model}` does not exist.")
        step = self._next()
        if isinstance(step, Hang):
            time.sleep(step.seconds)
            step = self.default
        if isinstance(step, Status):
            extra = {"Retry-After": str(step.retry_after)} if step.retry_after is not None else {}
            code, data, _ = _error(step.code, f"error {step.code}")
            return code, data, extra
        if isinstance(step, Raw):
            return 200, step.body, {}
        content = step(body) if callable(step) else str(step)
        prompt = sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
        reply = {
            "id": "chatcmpl-" + uuid.uuid4().hex[:12],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": max(1, prompt // 2),
                "completion_tokens": max(1, len(content)),
                "total_tokens": max(1, prompt // 2) + max(1, len(content)),
            },
        }
        return 200, json.dumps(reply, ensure_ascii=False).encode(), {}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _go(self, method: str) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, data, extra = fake._handle(method, self.path, headers, raw)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def do_POST(self) -> None:
                self._go("POST")

            def do_GET(self) -> None:
                self._go("GET")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _error(code: int, message: str) -> tuple[int, bytes, dict[str, str]]:
    payload = {"error": {"message": message, "type": "error", "param": None, "code": str(code)}}
    return code, json.dumps(payload).encode(), {}
