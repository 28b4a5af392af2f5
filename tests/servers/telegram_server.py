"""A Telegram Bot API server on loopback that enforces what Telegram enforces.

Stdlib only. It checks the bot token, the chat id, HTML parse mode exactly as
strict as Telegram's parser (only its tags, only its entities, every ``<``
``>`` ``&`` outside a tag escaped, balanced tags), and the length limits as
Telegram counts them: UTF-16 code units of the text *after* entity parsing,
4096 for a message and 1024 for a caption. It keeps the chat's messages (so
a test can read what a reader sees, edits and deletions applied) and records
every request.

Faults are queued with :meth:`TelegramServer.fail`: ``429`` (with
``retry_after``), ``500``, ``too_long``, ``hang`` (no answer, message not
posted) and ``hang_after`` (message posted, then no answer: the case a
sender must treat as uncertain).
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

ALLOWED_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "tg-emoji",
    "code",
    "pre",
    "blockquote",
}
ENTITY_TYPE = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "tg-emoji": "custom_emoji",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
}
_TAG = re.compile(
    r"<(/?)([A-Za-z][A-Za-z0-9-]*)((?:\s+[A-Za-z-]+\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>\"']+))*)\s*>"
)
_ATTR = re.compile(r"([A-Za-z-]+)\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>\"']+)")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6});")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024


class ParseError(Exception):
    pass


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _decode_entities(value: str) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name.startswith("#x"):
            return chr(int(name[2:], 16))
        if name.startswith("#"):
            return chr(int(name[1:]))
        return _NAMED[name]

    return _ENTITY.sub(sub, value)


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's HTML mode: (text, entities with UTF-16 offsets) or ParseError."""
    out: list[str] = []
    units = 0
    stack: list[tuple[str, int, dict[str, str]]] = []
    entities: list[dict[str, Any]] = []
    i = 0
    raw = source.encode("utf-8")

    def offset(pos: int) -> int:
        return len(source[:pos].encode("utf-8"))

    while i < len(source):
        ch = source[i]
        if ch == "<":
            m = _TAG.match(source, i)
            if not m:
                raise ParseError(
                    f'Unsupported start tag "{source[i + 1 : i + 8]}" at byte offset {offset(i)}'
                )
            closing, name = m.group(1) == "/", m.group(2).lower()
            if not closing:
                if name not in ALLOWED_TAGS:
                    raise ParseError(f'Unsupported start tag "{name}" at byte offset {offset(i)}')
                attrs = {
                    k.lower(): _decode_entities(v.strip("\"'"))
                    for k, v in _ATTR.findall(m.group(3))
                }
                if name == "span" and attrs.get("class") != "tg-spoiler":
                    raise ParseError(
                        f'Tag "span" must have class "tg-spoiler" at byte offset {offset(i)}'
                    )
                stack.append((name, units, attrs))
            else:
                if m.group(3).strip():
                    raise ParseError(f"Unexpected end tag attributes at byte offset {offset(i)}")
                if not stack or stack[-1][0] != name:
                    expected = f'"</{stack[-1][0]}>"' if stack else "nothing"
                    raise ParseError(
                        f"Unmatched end tag at byte offset {offset(i)}, expected {expected}, "
                        f'found "</{name}>"'
                    )
                tag, start, attrs = stack.pop()
                if units > start:
                    entity: dict[str, Any] = {
                        "type": ENTITY_TYPE[tag],
                        "offset": start,
                        "length": units - start,
                    }
                    if tag == "a":
                        entity["url"] = attrs.get("href", "")
                    entities.append(entity)
            i = m.end()
        elif ch == "&":
            m = _ENTITY.match(source, i)
            if not m:
                raise ParseError(f"Unsupported HTML entity at byte offset {offset(i)}")
            text = _decode_entities(m.group(0))
            out.append(text)
            units += utf16_len(text)
            i = m.end()
        elif ch == ">":
            raise ParseError(f'Unexpected ">" at byte offset {offset(i)}')
        else:
            out.append(ch)
            units += 2 if ord(ch) > 0xFFFF else 1
            i += 1
    if stack:
        raise ParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    del raw
    text = "".join(out)
    # Telegram trims the message; entities shift with the leading whitespace.
    lead = utf16_len(text) - utf16_len(text.lstrip())
    text = text.strip()
    for e in entities:
        e["offset"] = max(0, e["offset"] - lead)
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return text, entities


@dataclass
class Message:
    message_id: int
    chat_id: str
    kind: str  # text | photo
    text: str = ""  # text, or the photo's caption
    entities: list[dict[str, Any]] = field(default_factory=list)
    photo: str | None = None
    html: str = ""
    edits: int = 0
    deleted: bool = False


class TelegramServer:
    """``TelegramServer(token="123:abc", chats={"@waikan_test"})`` — a context manager."""

    def __init__(self, *, token: str, chats: set[str] | None = None) -> None:
        self.token = token
        self.chats = chats if chats is not None else {"@waikan_test"}
        self.requests: list[dict[str, Any]] = []
        self.messages: dict[int, Message] = {}
        self._faults: list[dict[str, Any]] = []
        self._next_id = 100
        self._lock = threading.Lock()
        self.hang_seconds = 5.0
        self.delay = 0.0  # seconds between posting a message and answering (crash windows)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, payload, hang = server.handle(self.path, self.headers, body)
                if server.delay:
                    time.sleep(server.delay)
                if hang:
                    time.sleep(server.hang_seconds)
                    self.close_connection = True
                    return
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class _Quiet(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients giving up on a hang are expected

        self._httpd = _Quiet(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> TelegramServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- test helpers ----------------------------------------------------------------
    def fail(self, kind: str, *, times: int = 1, method: str | None = None, **extra: Any) -> None:
        """Queue a fault for the next ``times`` matching calls (``method`` None: any send/edit)."""
        with self._lock:
            for _ in range(times):
                self._faults.append({"kind": kind, "method": method, **extra})

    def live(self, chat_id: str | None = None) -> list[Message]:
        """Messages a reader of the chat sees now, oldest first."""
        chat = chat_id or next(iter(self.chats))
        return [m for _, m in sorted(self.messages.items()) if m.chat_id == chat and not m.deleted]

    def calls(self, method: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == method]

    # -- the API ---------------------------------------------------------------------
    def _error(self, code: int, description: str, **params: Any) -> tuple[int, dict[str, Any]]:
        payload: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if params:
            payload["parameters"] = params
        return code, payload

    def handle(self, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, Any], bool]:
        m = re.match(r"^/bot([^/]+)/([A-Za-z]+)$", path.split("?")[0])
        ctype = headers.get("Content-Type", "")
        try:
            if "json" in ctype:
                params = json.loads(body or b"{}")
            else:
                params = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        except (ValueError, UnicodeDecodeError):
            params = None
        entry: dict[str, Any] = {
            "method": m.group(2) if m else path,
            "params": params,
            "token_ok": bool(m and m.group(1) == self.token),
            "status": 0,
            "at": time.monotonic(),
        }
        with self._lock:
            self.requests.append(entry)
            status, payload, hang = self._answer(m, params)
        entry["status"] = 0 if hang else status
        entry["ok"] = bool(payload.get("ok"))
        entry["result"] = payload.get("result")
        return status, payload, hang

    def _take_fault(self, method: str) -> dict[str, Any] | None:
        for i, f in enumerate(self._faults):
            if f["method"] in (None, method) and method != "getMe":
                return self._faults.pop(i)
        return None

    def _answer(self, m: re.Match[str] | None, params: Any) -> tuple[int, dict[str, Any], bool]:
        if m is None:
            return (*self._error(404, "Not Found"), False)
        if m.group(1) != self.token:
            return (*self._error(401, "Unauthorized"), False)
        method = m.group(2)
        if not isinstance(params, dict):
            return (*self._error(400, "Bad Request: can't parse request body"), False)
        if method == "getMe":
            return (
                200,
                {"ok": True, "result": {"id": 1, "is_bot": True, "username": "waikan_test_bot"}},
                False,
            )
        fault = self._take_fault(method)
        if fault is not None:
            kind = fault["kind"]
            if kind == "429":
                ra = int(fault.get("retry_after", 1))
                return (
                    *self._error(429, f"Too Many Requests: retry after {ra}", retry_after=ra),
                    False,
                )
            if kind == "500":
                return (*self._error(500, "Internal Server Error"), False)
            if kind == "too_long":
                return (*self._error(400, "Bad Request: message is too long"), False)
            if kind == "hang":
                return 200, {}, True
        status, payload = self._call(method, params)
        hang = fault is not None and fault["kind"] == "hang_after"
        return status, payload, hang

    def _call(self, method: str, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        chat = str(p.get("chat_id", ""))
        if not chat:
            return self._error(400, "Bad Request: chat_id is empty")
        if chat not in self.chats:
            return self._error(400, "Bad Request: chat not found")
        if method in ("sendMessage", "editMessageText"):
            text_field, limit = "text", TEXT_LIMIT
        elif method in ("sendPhoto", "editMessageCaption"):
            text_field, limit = "caption", CAPTION_LIMIT
        elif method == "deleteMessage":
            msg = self.messages.get(int(p.get("message_id", 0)))
            if msg is None or msg.deleted or msg.chat_id != chat:
                return self._error(400, "Bad Request: message to delete not found")
            msg.deleted = True
            return 200, {"ok": True, "result": True}
        else:
            return self._error(404, "Not Found: method not found")
        html = str(p.get(text_field, ""))
        if p.get("parse_mode") == "HTML":
            try:
                text, entities = parse_html(html)
            except ParseError as exc:
                return self._error(400, f"Bad Request: can't parse entities: {exc}")
        else:
            text, entities = html.strip(), []
        if method != "sendPhoto" and method != "editMessageCaption" and not text:
            return self._error(400, "Bad Request: message text is empty")
        if utf16_len(text) > limit:
            what = (
                "message caption is too long" if limit == CAPTION_LIMIT else "message is too long"
            )
            return self._error(400, f"Bad Request: {what}")
        if method.startswith("edit"):
            msg = self.messages.get(int(p.get("message_id", 0)))
            if msg is None or msg.deleted or msg.chat_id != chat:
                return self._error(400, "Bad Request: message to edit not found")
            if msg.text == text and msg.entities == entities:
                return self._error(
                    400,
                    "Bad Request: message is not modified: specified new message content and "
                    "reply markup are exactly the same as a current content and reply markup "
                    "of the message",
                )
            msg.text, msg.entities, msg.html = text, entities, html
            msg.edits += 1
            return 200, {"ok": True, "result": self._message_json(msg)}
        self._next_id += 1
        msg = Message(
            message_id=self._next_id,
            chat_id=chat,
            kind="photo" if method == "sendPhoto" else "text",
            text=text,
            entities=entities,
            photo=str(p.get("photo")) if method == "sendPhoto" else None,
            html=html,
        )
        self.messages[msg.message_id] = msg
        return 200, {"ok": True, "result": self._message_json(msg)}

    def _message_json(self, msg: Message) -> dict[str, Any]:
        out: dict[str, Any] = {
            "message_id": msg.message_id,
            "chat": {"id": -1001, "type": "channel", "username": msg.chat_id.lstrip("@")},
            "date": int(time.time()),
        }
        if msg.kind == "photo":
            out.update(
                photo=[{"file_id": "x", "width": 1, "height": 1}],
                caption=msg.text,
                caption_entities=msg.entities,
            )
        else:
            out.update(text=msg.text, entities=msg.entities)
        return out
