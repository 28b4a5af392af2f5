"""A real OpenAI-compatible chat-completions HTTP server on loopback, for tests.

Stdlib only. Usage::

    with FakeLLM(api_key="sk-test", model="deepseek-chat", answer="...") as llm:
        client = OpenAI(base_url=llm.url, api_key="sk-test")
        ...
        assert llm.requests[0]["body"]["model"] == "deepseek-chat"

Each entry of ``requests`` is a dict::

    {"method": "POST", "path": "/v1/chat/completions",
     "headers": {...all headers except Authorization, lower-cased names...},
     "auth_ok": True, "body": {...parsed JSON or None...}, "status": 200}

Checks, in order: 401 unless ``Authorization: Bearer <api_key>``; a forced
``status`` (!= 200); 404 ``model_not_found`` unless ``body["model"] == model``;
400 unless the concatenated message contents contain ``open``…``close`` (when
``require_delimiters`` is given) with ``require_text`` between them (when given).
``delay`` seconds are slept before any answer.

``timeline`` holds one :class:`Call` per chat-completion request: when it came,
from which client port, its prompt, and when (or whether) it was answered. Tests
that kill clients use it to tell which calls died with them and when each came back.
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_STATUS_ERRORS = {
    400: ("invalid_request_error", "bad_request"),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "permission_denied"),
    404: ("invalid_request_error", "not_found"),
    429: ("rate_limit_exceeded", "rate_limit_exceeded"),
    500: ("server_error", "internal_error"),
    502: ("server_error", "bad_gateway"),
    503: ("server_error", "service_unavailable"),
}


def estimate_tokens(text: str) -> int:
    """Plausible token count: ~4 bytes per token for Latin text, ~1 per Han character."""
    if not text:
        return 0
    return max(1, math.ceil(len(text.encode("utf-8")) / 4))


def message_text(messages: Any) -> str:
    """Concatenate the contents of chat messages (string or list-of-parts contents)."""
    out: list[str] = []
    if not isinstance(messages, list):
        return ""
    for m in messages:
        if not isinstance(m, dict):
            continue
        content = m.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    out.append(part["text"])
    return "\n".join(out)


@dataclass
class Call:
    """One chat-completion request (times are ``time.monotonic()``).

    ``end``: when its answer was written; None while pending, or when the client was
    gone before it (``cut``: the peer closed its connection, e.g. its process was killed).
    """

    start: float
    port: int
    prompt: str
    end: float | None = None
    cut: bool = False


def _peer_closed(sock: socket.socket) -> bool:
    """The client hung up: its end reads EOF (a waiting HTTP client sends nothing more; a
    killed process's kernel closes its socket). A non-blocking peek, not select(), which
    fails on fds >= 1024 (a long pytest process may hold that many)."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:  # nothing to read: the client is waiting for its answer
        return False
    except OSError:  # reset by the peer
        return True


class FakeLLM:
    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        answer: str | Callable[[dict], str],
        require_delimiters: tuple[str, str] | None = None,
        require_text: str | None = None,
        status: int = 200,
        delay: float = 0.0,
        retry_after: float | None = None,
    ) -> None:
        self.api_key = api_key
        self.model = model
        self.answer = answer
        self.require_delimiters = require_delimiters
        self.require_text = require_text
        self.status = status
        self.delay = delay
        self.retry_after = retry_after
        self.requests: list[dict] = []
        self.timeline: list[Call] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeLLM:{self.port}",
            daemon=True,
        )
        self._thread.start()

    # -- lifecycle -------------------------------------------------------
    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None  # type: ignore[assignment]

    def __enter__(self) -> FakeLLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def calls(self) -> int:
        """Number of chat-completion requests received."""
        return sum(1 for r in self.requests if r["path"].endswith("/chat/completions"))

    def pending(self) -> list[Call]:
        """The chat-completion calls not yet answered (nor cut), now."""
        with self._lock:
            return [c for c in self.timeline if c.end is None and not c.cut]

    # -- request handling --------------------------------------------------
    def _record(self, entry: dict) -> None:
        with self._lock:
            self.requests.append(entry)

    def _begin(self, path: str, raw: bytes, port: int) -> Call | None:
        if not path.split("?", 1)[0].rstrip("/").endswith("/chat/completions"):
            return None
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = None
        prompt = message_text(body.get("messages")) if isinstance(body, dict) else ""
        call = Call(start=time.monotonic(), port=port, prompt=prompt)
        with self._lock:
            self.timeline.append(call)
        return call

    def _end(self, call: Call | None, *, cut: bool) -> None:
        if call is not None:
            with self._lock:
                if cut:
                    call.cut = True
                else:
                    call.end = time.monotonic()

    def _respond(self, method: str, path: str, headers: dict, raw: bytes) -> tuple[int, dict, dict]:
        """Return (status, json payload, extra headers)."""
        auth = headers.get("authorization", "")
        auth_ok = auth == f"Bearer {self.api_key}"
        body: Any = None
        bad_json = False
        if raw:
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                bad_json = True
        stored_headers = {k: v for k, v in headers.items() if k != "authorization"}
        entry = {
            "method": method,
            "path": path,
            "headers": stored_headers,
            "auth_ok": auth_ok,
            "body": body,
            "status": 0,
        }
        self._record(entry)
        if self.delay:
            time.sleep(self.delay)

        status, payload, extra = self._decide(method, path, auth_ok, body, bad_json)
        entry["status"] = status
        return status, payload, extra

    def _error(self, status: int, message: str, code: str | None = None) -> tuple[int, dict, dict]:
        etype, default_code = _STATUS_ERRORS.get(status, ("server_error", "error"))
        extra: dict = {}
        if status in (429, 503) and self.retry_after is not None:
            extra["Retry-After"] = str(self.retry_after)
        return (
            status,
            {
                "error": {
                    "message": message,
                    "type": etype,
                    "param": None,
                    "code": code or default_code,
                }
            },
            extra,
        )

    def _decide(
        self, method: str, path: str, auth_ok: bool, body: Any, bad_json: bool
    ) -> tuple[int, dict, dict]:
        path = path.split("?", 1)[0].rstrip("/")
        if method == "GET" and path == "/v1/models":
            if not auth_ok:
                return self._error(401, "Incorrect API key provided.", "invalid_api_key")
            return (
                200,
                {
                    "object": "list",
                    "data": [
                        {
                            "id": self.model,
                            "object": "model",
                            "created": 1700000000,
                            "owned_by": "fake-llm",
                        }
                    ],
                },
                {},
            )
        if method != "POST" or path != "/v1/chat/completions":
            return self._error(404, f"Unknown request URL: {method} {path}.", "unknown_url")
        if not auth_ok:
            return self._error(
                401,
                "Incorrect API key provided. You can find your API key in your account settings.",
                "invalid_api_key",
            )
        if self.status != 200:
            return self._error(
                self.status, f"The server had an error processing your request ({self.status})."
            )
        if bad_json or not isinstance(body, dict):
            return self._error(400, "We could not parse the JSON body of your request.")
        if body.get("model") != self.model:
            return self._error(
                404,
                f"The model `{body.get('model')}` does not exist or you do not have access to it.",
                "model_not_found",
            )
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self._error(400, "'messages' is a required property.")
        text = message_text(messages)
        if self.require_delimiters is not None:
            open_, close = self.require_delimiters
            # The last opening delimiter: instructions may name the delimiters before it.
            start = text.rfind(open_)
            end = text.find(close, start + len(open_)) if start >= 0 else -1
            if start < 0 or end < 0:
                return self._error(400, "article text is not delimited as required")
            if (
                self.require_text is not None
                and self.require_text not in text[start + len(open_) : end]
            ):
                return self._error(400, "required text not found between the delimiters")
        elif self.require_text is not None and self.require_text not in text:
            return self._error(400, "required text not found in the messages")

        answer = self.answer(body) if callable(self.answer) else self.answer
        prompt_tokens = estimate_tokens(text) + 4 * len(messages)
        completion_tokens = estimate_tokens(answer)
        return (
            200,
            {
                "id": "chatcmpl-" + uuid.uuid4().hex[:24],
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.model,
                "system_fingerprint": "fp_fakellm",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
            {},
        )

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "FakeLLM/1.0"

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length > 0 else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                call = fake._begin(self.path, raw, self.client_address[1])
                try:
                    status, payload, extra = fake._respond(method, self.path, headers, raw)
                except Exception as exc:  # never hang the client on a bug in a callable answer
                    status, payload, extra = (
                        500,
                        {
                            "error": {
                                "message": repr(exc),
                                "type": "server_error",
                                "param": None,
                                "code": "internal_error",
                            }
                        },
                        {},
                    )
                data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
                # Asked before writing: a write into a socket the peer closed may still
                # succeed once, so the write alone cannot tell an answer from a lost one.
                cut = call is not None and _peer_closed(self.connection)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeouts)
                    self.close_connection = True
                    cut = True
                fake._end(call, cut=cut)

            def do_POST(self) -> None:
                self._handle("POST")

            def do_GET(self) -> None:
                self._handle("GET")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
