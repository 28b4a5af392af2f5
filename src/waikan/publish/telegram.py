"""Telegram channel destination (Bot API, HTML parse mode).

The post goes out as the ``telegram`` rendering split into messages of at
most 4096 units, after the lead photo (``sendPhoto``, title and meta line as
its caption). A new revision edits the messages already sent (and sends or
deletes the difference). ``retry_after`` on 429 is honoured up to
``max_retry_after`` seconds; a per-chat minimum interval keeps under
Telegram's flood limits. The bot token comes only from
``WAIKAN_TELEGRAM_BOT_TOKEN`` and never reaches a log line or a message:
httpx logs request URLs, which hold the token, so they are redacted.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from waikan.errors import PublishError
from waikan.models import Post
from waikan.plugins import Registry
from waikan.publish.base import DeliveryFailed, DeliveryUncertain, Option, Publisher
from waikan.publish.outbox import Journal
from waikan.render.telegram import photo_caption, post_blocks, split_messages

log = logging.getLogger(__name__)

_TOKEN_IN_URL = re.compile(r"/bot[^/\s]+/")


class _RedactToken(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(
                _TOKEN_IN_URL.sub("/bot<redacted>/", str(a))
                if isinstance(a, str | httpx.URL)
                else a
                for a in (record.args if isinstance(record.args, tuple) else (record.args,))
            )
        record.msg = _TOKEN_IN_URL.sub("/bot<redacted>/", str(record.msg))
        return True


for _name in ("httpx", "httpcore"):
    if not any(isinstance(f, _RedactToken) for f in logging.getLogger(_name).filters):
        logging.getLogger(_name).addFilter(_RedactToken())

_CHAT_ID = re.compile(r"^(@[A-Za-z][A-Za-z0-9_]{3,}|-?\d+)$")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class TelegramPublisher(Publisher):
    kind = "telegram"
    secret_env = "WAIKAN_TELEGRAM_BOT_TOKEN"
    secret_key = "token"
    options = (
        Option("chat_id", "str", "", "Channel (@name) or numeric chat id.", required=True),
        Option("api_base", "str", "https://api.telegram.org", "Bot API base URL."),
        Option("timeout", "float", 30.0, "Seconds to wait for one API answer.", minimum=0.1),
        Option(
            "min_interval",
            "float",
            1.0,
            "Seconds between two messages to the chat (flood control).",
            minimum=0,
        ),
        Option(
            "max_retry_after",
            "float",
            60.0,
            "Wait out a 429 retry_after up to this many seconds; longer: retry next run.",
            minimum=0,
        ),
        Option("max_retries", "int", 2, "Retries on 5xx and connection errors.", minimum=0),
        Option("photo", "bool", True, "Send the lead photo first (sendPhoto)."),
        Option("disable_preview", "bool", True, "No link previews under the messages."),
    )

    @classmethod
    def validate(cls, options: Mapping[str, Any], prefix: str) -> None:
        from waikan.errors import ConfigError

        if not _CHAT_ID.match(str(options["chat_id"])):
            raise ConfigError(
                f"invalid value for {prefix}.chat_id: {options['chat_id']!r} "
                "(@channelname or a numeric id)"
            )
        if not str(options["api_base"]).startswith(("http://", "https://")):
            raise ConfigError(
                f"invalid value for {prefix}.api_base: {options['api_base']!r} (an http(s) URL)"
            )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        o = self.dest.options
        self.chat_id: str = str(o["chat_id"])
        self._client = httpx.Client(timeout=httpx.Timeout(float(o["timeout"])))
        self._last_send = 0.0

    def close(self) -> None:
        self._client.close()

    # -- the Bot API -------------------------------------------------------------------
    def _url(self, method: str) -> str:
        return f"{str(self.dest.options['api_base']).rstrip('/')}/bot{self.dest.secret}/{method}"

    def _throttle(self) -> None:
        wait = float(self.dest.options["min_interval"]) - (time.monotonic() - self._last_send)
        if wait > 0:
            self.ctx.sleep(wait)
        self._last_send = time.monotonic()

    def call(self, method: str, payload: dict[str, Any]) -> Any:
        """One Bot API call with Telegram's error semantics mapped to the outbox's."""
        repeatable = not method.startswith("send")
        retries = int(self.dest.options["max_retries"])
        attempt = 0
        while True:
            attempt += 1
            self._throttle()
            try:
                resp = self._client.post(
                    self._url(method), json={"chat_id": self.chat_id, **payload}
                )
            except httpx.ConnectError as exc:
                # the request never reached the server: safe to retry
                if attempt <= retries:
                    self.ctx.sleep(min(2.0**attempt, 30.0) * 0.5)
                    continue
                raise PublishError(f"Bot API unreachable: {type(exc).__name__}") from None
            except (httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError) as exc:
                if repeatable and attempt <= retries:
                    continue
                what = f"no answer to {method} ({type(exc).__name__})"
                if repeatable:
                    raise PublishError(what) from None
                raise DeliveryUncertain(f"{what}: the message may have been posted") from None
            except httpx.HTTPError as exc:
                raise PublishError(f"{method}: {type(exc).__name__}") from None
            try:
                data = resp.json()
            except ValueError:
                data = {
                    "ok": False,
                    "error_code": resp.status_code,
                    "description": f"HTTP {resp.status_code}",
                }
            if not isinstance(data, dict):
                data = {"ok": False, "error_code": resp.status_code, "description": "bad answer"}
            if data.get("ok"):
                return data.get("result")
            code = int(data.get("error_code") or resp.status_code)
            desc = str(data.get("description") or f"HTTP {code}")
            if code == 429:
                params = data.get("parameters") or {}
                wait = float(params.get("retry_after") or resp.headers.get("retry-after") or 1)
                if wait <= float(self.dest.options["max_retry_after"]):
                    log.info("telegram %s: 429, retrying after %g s", self.dest.id, wait)
                    self.ctx.sleep(wait)
                    attempt -= 1  # a flood wait is not a failure
                    continue
                raise PublishError(f"rate-limited by Telegram for {wait:g} s; retry later")
            if code >= 500:
                if attempt <= retries:
                    self.ctx.sleep(min(2.0**attempt, 30.0) * 0.5)
                    continue
                raise PublishError(f"{method}: Bot API error {code} {desc}")
            if code in (401, 404) and method != "deleteMessage":
                raise PublishError(f"the Bot API refused the bot token ({code} {desc})")
            if code == 403 or "chat not found" in desc.lower() or "chat_id" in desc.lower():
                raise PublishError(f"chat_id {self.chat_id!r} rejected: {desc}")
            raise _ApiError(code, desc)

    # -- sending ---------------------------------------------------------------------
    def parts(self, post: Post) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if post.image_url and self.dest.options["photo"]:
            out.append({"kind": "photo", "html": photo_caption(post), "photo": post.image_url})
        blocks = post_blocks(post, page_url=self.ctx.page_url(post))
        out += [{"kind": "text", "html": m} for m in split_messages(blocks)]
        return out

    def _send_part(self, part: dict[str, Any]) -> int | None:
        """The new message's id; None when Telegram refused the lead photo (text still goes)."""
        try:
            if part["kind"] == "photo":
                result = self.call(
                    "sendPhoto",
                    {"photo": part["photo"], "caption": part["html"], "parse_mode": "HTML"},
                )
            else:
                result = self.call("sendMessage", self._text_payload(part))
        except _ApiError as exc:
            if part["kind"] == "photo":
                log.warning("telegram %s: lead photo skipped: %s", self.dest.id, exc.desc)
                return None
            raise DeliveryFailed(f"Telegram refused the message: {exc.desc}") from None
        return int(result["message_id"])

    def _text_payload(self, part: dict[str, Any]) -> dict[str, Any]:
        return {
            "text": part["html"],
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": bool(self.dest.options["disable_preview"])},
        }

    def _edit_part(self, message_id: int, part: dict[str, Any]) -> None:
        try:
            if part["kind"] == "photo":
                self.call(
                    "editMessageCaption",
                    {"message_id": message_id, "caption": part["html"], "parse_mode": "HTML"},
                )
            else:
                self.call("editMessageText", {"message_id": message_id, **self._text_payload(part)})
        except _ApiError as exc:
            if "not modified" in exc.desc:
                return
            raise DeliveryFailed(f"Telegram refused the edit: {exc.desc}") from None

    def _delete(self, message_id: int) -> None:
        try:
            self.call("deleteMessage", {"message_id": message_id})
        except _ApiError as exc:
            if "not found" in exc.desc or exc.code == 404:
                return  # already gone
            raise PublishError(f"cannot delete message {message_id}: {exc.desc}") from None

    def send(self, post: Post, journal: Journal) -> None:
        parts = self.parts(post)
        previous = [m for m in journal.previous if m.get("id") is not None]
        # Edit in place only when the shapes agree (photo first or not); else replace.
        same_shape = bool(previous) and previous[0].get("kind") == parts[0]["kind"]
        reuse = previous if same_shape else []
        done = journal.messages
        for index, part in enumerate(parts):
            if index < len(done):
                continue
            digest = _digest(part["html"])
            if index < len(reuse) and reuse[index].get("kind") == part["kind"]:
                old = int(reuse[index]["id"])
                journal.begin("edit", index, kind=part["kind"], id=old, digest=digest)
                self._edit_part(old, part)
                journal.done({"kind": part["kind"], "id": old, "digest": digest})
            else:
                journal.begin("send", index, kind=part["kind"], digest=digest)
                message_id = self._send_part(part)
                journal.done({"kind": part["kind"], "id": message_id, "digest": digest})
        kept = {m.get("id") for m in journal.messages}
        for old_message in previous:
            if old_message["id"] not in kept and not old_message.get("deleted"):
                journal.begin("delete", -1, id=old_message["id"])
                self._delete(int(old_message["id"]))
                journal.done()

    def retract(self, post: Post, sent: Sequence[Mapping[str, Any]]) -> None:
        ids = {
            int(m["id"])
            for remote in sent
            for m in remote.get("messages", [])
            if m.get("id") is not None
        }
        for message_id in sorted(ids):
            self._delete(message_id)


class _ApiError(Exception):
    """A 4xx answer the caller decides about (not modified, not found, too long…)."""

    def __init__(self, code: int, desc: str) -> None:
        super().__init__(f"{code} {desc}")
        self.code = code
        self.desc = desc


def register(registry: Registry) -> None:
    registry.add_publisher("telegram", TelegramPublisher)
