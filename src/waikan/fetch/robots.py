"""robots.txt, fetched once per origin per run and obeyed (RFC 9309).

A 4xx answer means "no rules"; a 5xx answer or an unreachable server means
"assume everything is disallowed" for this run, as the RFC asks, so a site
in trouble is not crawled harder.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

__all__ = ["Robots", "RobotsCache", "origin_of"]

MAX_ROBOTS_BYTES = 512 * 1024


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


@dataclass
class Robots:
    """The rules of one origin for our user agent."""

    parser: RobotFileParser | None  # None: everything allowed
    disallow_all: bool = False

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

    def __init__(self, getter: RobotsGetter) -> None:
        self._getter = getter
        self._rules: dict[str, Robots] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def rules(self, url: str) -> Robots:
        origin = origin_of(url)
        if origin in self._rules:
            return self._rules[origin]
        lock = self._locks.setdefault(origin, asyncio.Lock())
        async with lock:
            if origin not in self._rules:
                self._rules[origin] = await self._load(origin)
        return self._rules[origin]

    async def _load(self, origin: str) -> Robots:
        try:
            status, body = await self._getter(f"{origin}/robots.txt")
        except Exception:  # unreachable (RFC 9309 §2.3.1.4): assume complete disallow
            return Robots(None, disallow_all=True)
        if 400 <= status < 500:
            return Robots(None)
        if status >= 500:
            return Robots(None, disallow_all=True)
        parser = RobotFileParser()
        text = body[:MAX_ROBOTS_BYTES].decode("utf-8", errors="replace")
        parser.parse(text.splitlines())
        return Robots(parser, delays=parse_delays(text))
