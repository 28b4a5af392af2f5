"""The polite, bounded HTTP client every URL from a source goes through.

One :class:`Fetcher` per run holds an ``httpx.AsyncClient`` whose transport
connects only through :class:`~waikan.fetch.guard.GuardedBackend`. Each
request waits for a global slot, a per-host slot (default 2) and the host's
minimum delay (or its robots.txt ``Crawl-delay``, whichever is longer);
redirects are followed by hand so every hop passes the guard and its
host's robots.txt; bodies are capped while streaming, after decompression
(gzip, deflate and br bombs stop at the cap); connection errors, 5xx and
429 are retried with exponential backoff and jitter, honouring
``Retry-After``.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urljoin

import httpcore
import httpx

from waikan.errors import OversizeError
from waikan.fetch.errors import PermanentFetchError, TransientFetchError
from waikan.fetch.guard import Guard, GuardedBackend, Resolver, SyncGuardedBackend
from waikan.fetch.robots import RobotsCache, host_key

__all__ = [
    "FetchSettings",
    "Fetched",
    "Fetcher",
    "PermanentFetchError",
    "RobotsDisallowedError",
    "RobotsUnavailableError",
    "TooLargeError",
    "TransientFetchError",
    "Turns",
    "guarded_sync_transport",
    "guarded_transport",
]

HTML_ACCEPT = "text/html,application/xhtml+xml,*/*;q=0.8"
FEED_ACCEPT = (
    "application/rss+xml,application/atom+xml,application/feed+json,"
    "application/xml;q=0.9,text/xml;q=0.9,*/*;q=0.8"
)


class TooLargeError(PermanentFetchError, OversizeError):
    """A body over its cap (while streaming, or once decompressed: bombs stop at the cap)."""


class RobotsDisallowedError(PermanentFetchError):
    pass


class RobotsUnavailableError(TransientFetchError):
    """robots.txt answered 5xx or was unreachable: everything is disallowed for a while."""


@dataclass(frozen=True)
class Fetched:
    """One final response: the URL after redirects, the (decompressed) body, its headers."""

    url: str
    status_code: int
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)
    requested: str = ""

    @property
    def not_modified(self) -> bool:
        return self.status_code == 304

    @property
    def charset(self) -> str | None:
        """The charset the Content-Type header declares, when Python knows it."""
        import codecs

        ctype = self.headers.get("content-type", "")
        for part in ctype.split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.strip().lower() == "charset" and value:
                name = value.strip().strip("\"'").lower()
                try:
                    codecs.lookup(name)
                except LookupError:
                    return None
                return "cp1252" if name in {"iso-8859-1", "latin-1", "latin1", "ascii"} else name
        return None


@dataclass(frozen=True)
class FetchSettings:
    """The ``[fetch]`` settings one run uses (see docs/fetching.md)."""

    user_agent: str = "waikan/0.1 (+https://github.com/waikan/waikan; news digest bot)"
    timeout: float = 30.0
    connect_timeout: float = 10.0
    total_timeout: float = 120.0
    max_bytes: int = 5 * 1024 * 1024
    max_feed_bytes: int = 50 * 1024 * 1024
    max_redirects: int = 5
    allow_private: bool = False
    per_host: int = 2
    concurrency: int = 16
    host_delay: float = 1.0
    max_crawl_delay: float = 30.0
    retries: int = 2
    backoff: float = 0.5
    max_retry_after: float = 60.0
    obey_robots: bool = True

    @classmethod
    def from_config(cls, cfg: Any) -> FetchSettings:
        def get(name: str, default: Any) -> Any:
            try:
                return cfg[name]
            except KeyError:
                return default

        d = cls()
        return cls(
            user_agent=str(get("fetch.user_agent", d.user_agent)),
            timeout=float(get("fetch.timeout", d.timeout)),
            connect_timeout=float(get("fetch.connect_timeout", d.connect_timeout)),
            total_timeout=float(get("fetch.total_timeout", d.total_timeout)),
            max_bytes=int(get("fetch.max_bytes", d.max_bytes)),
            max_feed_bytes=int(get("fetch.max_feed_bytes", d.max_feed_bytes)),
            max_redirects=int(get("fetch.max_redirects", d.max_redirects)),
            allow_private=bool(get("fetch.allow_private_networks", d.allow_private)),
            per_host=int(get("fetch.per_host", d.per_host)),
            concurrency=int(get("fetch.concurrency", d.concurrency)),
            host_delay=float(get("fetch.host_delay", d.host_delay)),
            retries=int(get("fetch.retries", d.retries)),
            backoff=float(get("fetch.backoff", d.backoff)),
            max_retry_after=float(get("fetch.max_retry_after", d.max_retry_after)),
            obey_robots=bool(get("fetch.obey_robots", d.obey_robots)),
        )


class Turns(Protocol):
    """Who may send to a host, and when: slots per host and the delay between starts."""

    def turn(self, host: str, delay: float) -> AbstractAsyncContextManager[None]:
        """Hold one of ``host``'s slots while a request runs, starting it no sooner than
        the previous start's ``delay`` later."""
        ...

    async def hold_off(self, host: str, seconds: float) -> None:
        """Start nothing on ``host`` for ``seconds`` (it answered with Retry-After)."""
        ...


class _Host:
    def __init__(self, slots: int) -> None:
        self.slots = asyncio.Semaphore(slots)
        self.lock = asyncio.Lock()
        self.next_start = 0.0


class LocalTurns:
    """One process's turns (``fetch.per_host`` slots and the delay, per host)."""

    def __init__(self, per_host: int) -> None:
        self.per_host = max(1, per_host)
        self._hosts: dict[str, _Host] = {}

    def _host(self, key: str) -> _Host:
        if key not in self._hosts:
            self._hosts[key] = _Host(self.per_host)
        return self._hosts[key]

    @asynccontextmanager
    async def turn(self, host: str, delay: float) -> AsyncIterator[None]:
        h = self._host(host)
        async with h.slots:
            async with h.lock:
                now = time.monotonic()
                start = max(now, h.next_start)
                h.next_start = start + delay
            if start > now:
                await asyncio.sleep(start - now)
            yield

    async def hold_off(self, host: str, seconds: float) -> None:
        h = self._host(host)
        h.next_start = max(h.next_start, time.monotonic() + seconds)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def guarded_transport(guard: Guard, *, max_connections: int) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose every TCP connection is opened by the guard's backend."""
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    # httpx has no public hook for the network backend; replace the pool it built with
    # one that has ours (same options as httpx's defaults, TLS verified against the host).
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=5.0,
        network_backend=GuardedBackend(guard),
    )
    return transport


def guarded_sync_transport(*, allow_private: bool) -> httpx.HTTPTransport:
    """A blocking httpx transport whose connections go to checked addresses only.

    For sync callers that send to URLs from outside (webhook targets): use it as
    ``httpx.Client(transport=guarded_sync_transport(allow_private=...), trust_env=False)``.
    """
    transport = httpx.HTTPTransport(trust_env=False)
    transport._pool = httpcore.ConnectionPool(  # same reason as guarded_transport
        ssl_context=httpx.create_ssl_context(),
        max_connections=10,
        max_keepalive_connections=10,
        keepalive_expiry=5.0,
        network_backend=SyncGuardedBackend(allow_private=allow_private),
    )
    return transport


class Fetcher:
    """``async with Fetcher(settings) as f: await f.get(url)``; one per run."""

    def __init__(
        self,
        settings: FetchSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        turns: Turns | None = None,
    ) -> None:
        """``turns`` replaces the per-process host slots and delays (workers share theirs)."""
        self.settings = settings
        self.turns: Turns = turns or LocalTurns(settings.per_host)
        self.guard = Guard(allow_private=settings.allow_private, resolver=Resolver())
        self._global = asyncio.Semaphore(max(1, settings.concurrency))
        self._client = httpx.AsyncClient(
            transport=transport
            or guarded_transport(self.guard, max_connections=max(1, settings.concurrency) * 2),
            timeout=httpx.Timeout(
                settings.timeout, connect=min(settings.connect_timeout, settings.timeout)
            ),
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": settings.user_agent},
        )
        self.robots = RobotsCache(self._get_robots)
        self.requests = 0  # HTTP requests sent (robots.txt and retries included)

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- requests -----------------------------------------------------------------
    async def _get_robots(self, url: str) -> tuple[int, bytes]:
        # robots.txt is a request to the host like any other: it waits its turn and the
        # next request waits ``host_delay`` after it (its Crawl-delay is not known yet).
        got = await self._follow(
            url, cap=(512 * 1024, "robots.txt"), headers={}, delay=self.settings.host_delay
        )
        return got.status_code, got.content

    async def get(
        self,
        url: str,
        *,
        max_bytes: int | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str = HTML_ACCEPT,
        check_robots: bool | None = None,
        limit_name: str = "fetch.max_bytes",
    ) -> Fetched:
        """GET ``url``; a 304 comes back as a result (``not_modified``), errors as FetchError."""
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        obey = self.settings.obey_robots if check_robots is None else check_robots
        cap = (max_bytes or self.settings.max_bytes, limit_name)
        got = await self._follow(
            url, cap=cap, headers=headers, delay=self.settings.host_delay, obey=obey
        )
        if got.status_code >= 400:
            kind = (
                TransientFetchError
                if got.status_code in (429,) or got.status_code >= 500
                else (PermanentFetchError)
            )
            raise kind(f"{got.url}: HTTP {got.status_code}")
        return got

    async def _robots_delay(self, url: str, requested: str, delay: float) -> float:
        """The wait before ``url`` (its origin's Crawl-delay, if longer); refused if disallowed."""
        rules = await self.robots.rules(url)
        if not rules.allowed(url, self.settings.user_agent):
            via = "" if url == requested else f"redirected to {url}, "
            if rules.unavailable:
                raise RobotsUnavailableError(
                    f"{requested}: {via}robots.txt unavailable (5xx or unreachable), retry later"
                )
            raise RobotsDisallowedError(f"{requested}: {via}disallowed by robots.txt")
        agent = self.settings.user_agent
        return max(delay, min(rules.crawl_delay(agent), self.settings.max_crawl_delay))

    async def _follow(
        self,
        url: str,
        *,
        cap: tuple[int, str],
        headers: Mapping[str, str],
        delay: float,
        obey: bool = False,
    ) -> Fetched:
        """Follow redirects by hand: every hop passes the guard and, with ``obey``, robots.txt.

        A redirect may lead to another host whose robots.txt disallows the path;
        its rules (cached per origin) are checked before that hop is requested.
        """
        current = url
        for _hop in range(self.settings.max_redirects + 1):
            await self.guard.check(current)
            wait = await self._robots_delay(current, url, delay) if obey else delay
            got = await self._with_retries(current, cap, headers, wait)
            location = got.headers.get("location")
            if got.status_code in (301, 302, 303, 307, 308) and location:
                current = urljoin(current, location.strip())
                continue
            return Fetched(got.url, got.status_code, got.content, got.headers, requested=url)
        raise PermanentFetchError(f"{url}: more than {self.settings.max_redirects} redirects")

    async def _with_retries(
        self, url: str, cap: tuple[int, str], headers: Mapping[str, str], delay: float
    ) -> Fetched:
        s = self.settings
        attempt = 0
        while True:
            wait: float | None = None
            try:
                got = await self._once(url, cap, headers, delay)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError,
                    httpx.ReadError, httpx.WriteError) as exc:  # fmt: skip
                if attempt >= s.retries:
                    raise TransientFetchError(f"{url}: {_describe(exc)}") from None
            else:
                if got.status_code != 429 and got.status_code < 500:
                    return got
                if attempt >= s.retries:
                    return got
                wait = _retry_after(got.headers.get("retry-after"))
                if wait is not None and wait > s.max_retry_after:
                    return got  # the server asks for more patience than a run has
                if wait is not None:  # the host asked everyone to wait, not this request
                    await self.turns.hold_off(host_key(url), wait)
            attempt += 1
            if wait is None:
                wait = s.backoff * (2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
            await asyncio.sleep(wait)

    async def _once(
        self, url: str, cap: tuple[int, str], headers: Mapping[str, str], delay: float
    ) -> Fetched:
        s = self.settings
        # Keyed like robots.txt (host, non-default port); every hop and retry takes a turn.
        async with self._global, self.turns.turn(host_key(url), delay):
            self.requests += 1
            try:
                async with asyncio.timeout(s.total_timeout):
                    return await self._stream(url, cap, headers)
            except TimeoutError:
                raise TransientFetchError(
                    f"{url}: timed out after {s.total_timeout:g} s in total"
                ) from None
            except httpx.TimeoutException as exc:
                if isinstance(exc, httpx.ConnectTimeout):
                    raise
                raise TransientFetchError(f"{url}: timed out after {s.timeout:g} s") from None
            except httpx.DecodingError as exc:
                raise PermanentFetchError(f"{url}: broken compressed body: {exc}") from None
            except httpx.InvalidURL as exc:
                raise PermanentFetchError(f"{url}: invalid URL: {exc}") from None

    async def _stream(self, url: str, cap: tuple[int, str], headers: Mapping[str, str]) -> Fetched:
        max_bytes = cap[0]
        async with self._client.stream("GET", url, headers=dict(headers)) as resp:
            body = bytearray()
            if resp.status_code < 300 or resp.status_code >= 400:
                declared = resp.headers.get("content-length", "")
                if (
                    declared.isdigit()
                    and "content-encoding" not in resp.headers
                    and (int(declared) > max_bytes)
                ):
                    raise TooLargeError(_too_large(url, cap))
                async for chunk in resp.aiter_bytes():  # decompressed: bombs stop here
                    body += chunk
                    if len(body) > max_bytes:
                        raise TooLargeError(_too_large(url, cap))
            return Fetched(str(resp.url), resp.status_code, bytes(body), dict(resp.headers))


def _too_large(url: str, cap: tuple[int, str]) -> str:
    return f"{url}: response larger than {cap[1]} ({cap[0]:,} bytes)"


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return f"cannot connect: {text}" if isinstance(exc, httpx.ConnectError) else text
