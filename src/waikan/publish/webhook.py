"""Webhook destination: a signed JSON POST of the whole post.

Headers: ``X-Waikan-Timestamp`` (Unix seconds), ``X-Waikan-Signature``
(``sha256=`` + hex HMAC-SHA256 with the shared secret over
``<timestamp>.<body>``: the timestamp is signed too so a captured request
cannot be replayed later), ``X-Waikan-Delivery`` (post-revision-destination,
the same on every retry, so a receiver can drop repeats) and
``X-Waikan-Event`` (``post.published``, ``post.updated``, ``post.deleted``).
The target URL passes the fetcher's SSRF guard before every request, and
redirects are not followed. Connection errors, 5xx and 429 are retried with
exponential backoff; a timeout after the request left is a delivery in
doubt.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from waikan import fetch
from waikan.errors import ConfigError, FetchError, PublishError
from waikan.models import Post
from waikan.plugins import Registry
from waikan.publish.base import DeliveryUncertain, Option, Publisher
from waikan.publish.outbox import Journal
from waikan.render.formats import post_fields

SIGNATURE_HEADER = "X-Waikan-Signature"
TIMESTAMP_HEADER = "X-Waikan-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value; receivers recompute it and compare in constant time."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookPublisher(Publisher):
    kind = "webhook"
    secret_env = "WAIKAN_WEBHOOK_SECRET"
    options = (
        Option("url", "str", "", "Receiver URL (http or https).", required=True),
        Option("timeout", "float", 15.0, "Seconds to wait for the receiver.", minimum=0.1),
        Option("max_retries", "int", 3, "Retries on connection errors, 5xx and 429.", minimum=0),
        Option(
            "retry_backoff",
            "float",
            1.0,
            "First retry delay in seconds, doubled each time.",
            minimum=0,
        ),
    )

    @classmethod
    def validate(cls, options: Mapping[str, Any], prefix: str) -> None:
        if not str(options["url"]).startswith(("http://", "https://")):
            raise ConfigError(f"invalid value for {prefix}.url: {options['url']!r} (http or https)")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the guarded transport connects to the address it checked: a name that resolves
        # to a public address for check_url and to a private one at connect is refused
        self._client = httpx.Client(
            transport=fetch.guarded_sync_transport(allow_private=self.ctx.allow_private),
            timeout=httpx.Timeout(float(self.dest.options["timeout"])),
            follow_redirects=False,
            trust_env=False,
        )

    def close(self) -> None:
        self._client.close()

    def payload(self, post: Post, event: str, delivery: str, revision: int) -> bytes:
        fields = post_fields(post)
        fields["page_url"] = self.ctx.page_url(post)
        body = {
            "event": event,
            "delivery": delivery,
            "destination": self.dest.id,
            "revision": revision,
            "post": fields,
        }
        return json.dumps(body, ensure_ascii=False, sort_keys=True).encode("utf-8")

    def post_json(self, event: str, delivery: str, body: bytes) -> None:
        url = str(self.dest.options["url"])
        try:
            fetch.check_url(url, allow_private=self.ctx.allow_private)
        except FetchError as exc:
            raise PublishError(f"webhook target refused: {exc}") from None
        retries = int(self.dest.options["max_retries"])
        delay = float(self.dest.options["retry_backoff"])
        for attempt in range(retries + 1):
            timestamp = str(int(self.ctx.now().timestamp()))
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": str(self.ctx.config["fetch.user_agent"]),
                "X-Waikan-Event": event,
                "X-Waikan-Delivery": delivery,
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(self.dest.secret, timestamp, body),
            }
            last = attempt == retries
            try:
                resp = self._client.post(url, content=body, headers=headers)
            except FetchError as exc:  # refused at connect by the guarded transport
                raise PublishError(f"webhook target refused: {exc}") from None
            except httpx.ConnectError as exc:
                if last:
                    raise PublishError(f"receiver unreachable: {type(exc).__name__}") from None
            except (httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError) as exc:
                raise DeliveryUncertain(
                    f"no answer from the receiver ({type(exc).__name__}); it may have the post"
                ) from None
            except httpx.HTTPError as exc:
                raise PublishError(f"webhook: {type(exc).__name__}") from None
            else:
                if 200 <= resp.status_code < 300:
                    return
                if resp.status_code != 429 and resp.status_code < 500:
                    raise PublishError(f"receiver answered HTTP {resp.status_code}")
                if last:
                    raise PublishError(f"receiver answered HTTP {resp.status_code}")
                after = resp.headers.get("retry-after", "")
                if after.isdigit():
                    self.ctx.sleep(min(float(after), 60.0))
                    continue
            self.ctx.sleep(delay * 2**attempt)

    def send(self, post: Post, journal: Journal) -> None:
        if journal.messages:
            return  # resolved as delivered: nothing left to do
        d = journal.delivery
        event = "post.updated" if journal.previous else "post.published"
        body = self.payload(post, event, d.key, d.revision)
        journal.begin("send", 0, kind="post", digest=hashlib.sha256(body).hexdigest()[:16])
        self.post_json(event, d.key, body)
        journal.done({"kind": "post", "id": d.key})

    def retract(self, post: Post, sent: Sequence[Mapping[str, Any]]) -> None:
        key = f"{post.id}-deleted-{self.dest.id}"
        self.post_json("post.deleted", key, self.payload(post, "post.deleted", key, 0))


def register(registry: Registry) -> None:
    registry.add_publisher("webhook", WebhookPublisher)
