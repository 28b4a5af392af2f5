"""robots.txt, fetched once per origin and cached for a while, and obeyed (RFC 9309).

A 4xx answer means "no rules"; a 5xx answer or an unreachable server means
"assume everything is disallowed", as the RFC asks, so a site in trouble is
not crawled harder. That verdict is cached briefly (``ERROR_TTL``) and marked
``unavailable`` so callers treat it as transient: a long-lived worker re-reads
the file, and the articles are retried rather than failed for good. Real
rules are kept for ``RULES_TTL`` (the RFC's 24 h upper bound).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

import httpx

from waikan.errors import FetchError

__all__ = ["Robots", "RobotsCache", "host_key", "origin_of"]

MAX_ROBOTS_BYTES = 512 * 1024
RULES_TTL = 24 * 3600.0  # seconds a fetched robots.txt (or a 4xx: no rules) is trusted
ERROR_TTL = 300.0  # seconds a 5xx/unreachable "disallow all" lasts before a re-read


DEFAULT_PORTS = {"http": 80, "https": 443}


def host_key(url: str) -> str:
    """The host a URL's requests go to, one spelling per host: lower case, IDNA, no
    trailing dot, no user or password, the port only when not the scheme's default."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    with suppress(UnicodeError):
        host = host.encode("idna").decode("ascii")
    if ":" in host:
        host = f"[{host}]"  # IPv6
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None and port != DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    return host


def origin_of(url: str) -> str:
    """``scheme://host[:port]``: whose robots.txt rules a URL (credentials never sent)."""
    return f"{urlsplit(url).scheme.lower()}://{host_key(url)}"


@dataclass
class Robots:
    """The rules of one origin for our user agent."""

    parser: RobotFileParser | None  # None: everything allowed
    disallow_all: bool = False
    unavailable: bool = False  # disallow_all because of a 5xx/unreachable: transient

    def allowed(self, url: str, user_agent: str) -> bool:
        if self.disallow_all:
            return False
        if self.parser is None:
            return True
        return self.parser.can_fetch(user_agent, url)

    delays: dict[str, float] = field(default_factory=dict)  # user-agent token → seconds

    def crawl_delay(self, user_agent: str) -> float:
        """The group naming our agent wins over ``*`` (fractions allowed, unlike robotparser)."""
        token = user_agent.split("/", 1)[0].strip().lower()
        for agent, delay in self.delays.items():
            if agent != "*" and agent in token:
                return delay
        return self.delays.get("*", 0.0)


def parse_delays(text: str) -> dict[str, float]:
    """``Crawl-delay`` per user-agent group of a robots.txt."""
    delays: dict[str, float] = {}
    agents: list[str] = []
    in_rules = False
    for line in text.splitlines():
        key, _, value = line.split("#", 1)[0].partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "user-agent":
            if in_rules:
                agents, in_rules = [], False
            agents.append(value.lower())
        elif key in ("allow", "disallow", "crawl-delay"):
            in_rules = True
            if key == "crawl-delay":
                try:
                    seconds = float(value)
                except ValueError:
                    continue
                if seconds >= 0:
                    for agent in agents:
                        delays.setdefault(agent, seconds)
    return delays


# (status, body) of GET origin/robots.txt; raises on network errors.
RobotsGetter = Callable[[str], Awaitable[tuple[int, bytes]]]


class RobotsCache:
    """One :class:`Robots` per origin; concurrent first requests share one fetch."""

    def __init__(
        self,
        getter: RobotsGetter,
        *,
        rules_ttl: float = RULES_TTL,
        error_ttl: float = ERROR_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._getter = getter
        self.rules_ttl, self.error_ttl, self._clock = rules_ttl, error_ttl, clock
        self._rules: dict[str, tuple[float, Robots]] = {}  # origin → (expires at, rules)
        self._locks: dict[str, asyncio.Lock] = {}

    def _fresh(self, origin: str) -> Robots | None:
        hit = self._rules.get(origin)
        return hit[1] if hit is not None and hit[0] > self._clock() else None

    async def rules(self, url: str) -> Robots:
        origin = origin_of(url)
        if (found := self._fresh(origin)) is not None:
            return found
        lock = self._locks.setdefault(origin, asyncio.Lock())
        async with lock:
            if (found := self._fresh(origin)) is None:
                found = await self._load(origin)
                ttl = self.error_ttl if found.unavailable else self.rules_ttl
                self._rules[origin] = (self._clock() + ttl, found)
        return found

    async def _load(self, origin: str) -> Robots:
        try:
            status, body = await self._getter(f"{origin}/robots.txt")
        except (FetchError, httpx.HTTPError, OSError, ValueError):
            # Unreachable (RFC 9309 §2.3.1.4): assume complete disallow. Our own faults
            # (the store behind shared host turns, a bug) are not the site's: they raise.
            return Robots(None, disallow_all=True, unavailable=True)
        if 400 <= status < 500:
            return Robots(None)
        if status >= 500:
            return Robots(None, disallow_all=True, unavailable=True)
        parser = RobotFileParser()
        text = body[:MAX_ROBOTS_BYTES].decode("utf-8", errors="replace")
        parser.parse(text.splitlines())
        return Robots(parser, delays=parse_delays(text))
