"""Fetching: the polite async client for sources and a sync entry point for ``waikan add``.

Everything goes through :class:`~waikan.fetch.client.Fetcher` (per-host
limits, robots.txt, conditional GET, caps, retries) whose connections are
opened only by the SSRF guard's network backend. :func:`fetch` runs one
request on it for callers that are not async; a URL a user gives to
``waikan add`` is fetched without consulting robots.txt, like a browser.
"""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit

import httpx

from waikan.errors import FetchError
from waikan.fetch.client import (
    FEED_ACCEPT,
    HTML_ACCEPT,
    Fetched,
    Fetcher,
    FetchSettings,
    PermanentFetchError,
    RobotsDisallowedError,
    TooLargeError,
    TransientFetchError,
    guarded_sync_transport,
)
from waikan.fetch.guard import BlockedAddressError, _refuse, check_scheme, ip_literal

__all__ = [
    "FEED_ACCEPT",
    "HTML_ACCEPT",
    "BlockedAddressError",
    "FetchSettings",
    "Fetched",
    "Fetcher",
    "PermanentFetchError",
    "RobotsDisallowedError",
    "TooLargeError",
    "TransientFetchError",
    "check_url",
    "fetch",
    "guarded_sync_transport",
]


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse non-http(s) URLs and hosts resolving to non-public addresses (blocking DNS).

    For callers outside the fetcher (webhook targets); the fetcher itself checks
    every hop and pins the connection to the checked address.
    """
    check_scheme(url)
    if allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = ip_literal(host)
    if literal is not None:
        _refuse(url, [str(literal)])
        return
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"{url}: cannot resolve host {host}: {exc}") from None
    _refuse(url, [str(info[4][0]) for info in infos])


def fetch(
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    user_agent: str,
    allow_private: bool = False,
    max_redirects: int = 5,
    transport: httpx.AsyncBaseTransport | None = None,
    settings: FetchSettings | None = None,
) -> Fetched:
    """GET one page now (blocking); every hop passes the guard; robots.txt is not consulted."""
    if settings is None:
        settings = FetchSettings(
            user_agent=user_agent, timeout=timeout, retries=0, allow_private=allow_private
        )
    from dataclasses import replace

    settings = replace(
        settings,
        max_bytes=max_bytes,
        timeout=timeout,
        user_agent=user_agent,
        allow_private=allow_private,
        max_redirects=max_redirects,
        obey_robots=False,
        host_delay=0.0,
    )

    async def one() -> Fetched:
        async with Fetcher(settings, transport=transport) as fetcher:
            return await fetcher.get(url)

    return asyncio.run(one())
