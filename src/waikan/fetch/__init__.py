"""Fetching one URL for ``waikan add``: size-capped, redirect-checked, private nets refused.

This is the single-page path. The polite crawler for sources (per-host
limits, robots.txt, conditional GET, retries) builds on the same guard.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

from waikan.errors import FetchError


@dataclass(frozen=True)
class Fetched:
    url: str
    status_code: int
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse non-http(s) URLs and hosts resolving to non-public addresses (SSRF)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"{url}: only http and https URLs can be fetched")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"{url}: cannot resolve host {parts.hostname}: {exc}") from None
    for info in infos:
        addr = ipaddress.ip_address(info[4][0])
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
            addr = addr.ipv4_mapped
        if not addr.is_global or addr.is_multicast:
            raise FetchError(
                f"{url}: refusing to fetch a private address ({addr}); "
                "set fetch.allow_private_networks = true to allow it"
            )


def fetch(
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    user_agent: str,
    allow_private: bool = False,
    max_redirects: int = 5,
    transport: httpx.BaseTransport | None = None,
) -> Fetched:
    """GET ``url``, following redirects by hand so every hop passes :func:`check_url`."""
    headers = {"User-Agent": user_agent, "Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    with httpx.Client(
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        transport=transport,
        headers=headers,
    ) as client:
        current = url
        for _hop in range(max_redirects + 1):
            check_url(current, allow_private=allow_private)
            try:
                with client.stream("GET", current) as resp:
                    if resp.is_redirect and "location" in resp.headers:
                        current = urljoin(current, resp.headers["location"])
                        continue
                    if resp.status_code >= 400:
                        raise FetchError(f"{current}: HTTP {resp.status_code}")
                    body = bytearray()
                    for chunk in resp.iter_bytes():  # decompressed: caps bombs too
                        body += chunk
                        if len(body) > max_bytes:
                            raise FetchError(
                                f"{current}: response larger than fetch.max_bytes ({max_bytes})"
                            )
                    return Fetched(str(resp.url), resp.status_code, bytes(body), dict(resp.headers))
            except httpx.TimeoutException:
                raise FetchError(f"{current}: timed out after {timeout:g} s") from None
            except httpx.HTTPError as exc:
                raise FetchError(f"{current}: {type(exc).__name__}: {exc}") from None
        raise FetchError(f"{url}: more than {max_redirects} redirects")
