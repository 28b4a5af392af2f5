"""SSRF guard: a URL from a feed must never reach the operator's own network.

Two layers, because checking a name and then letting the HTTP library resolve
it again leaves a window (DNS rebinding):

1. :meth:`Guard.check` refuses non-http(s) URLs and hosts whose addresses —
   IP literals in any spelling ``inet_aton`` accepts (``2130706433``,
   ``0177.0.0.1``, ``0x7f.1``, ``127.1``) and every address DNS returns —
   are not public.
2. :class:`GuardedBackend` is the httpcore network backend of the fetcher's
   transport: it resolves the host itself, checks every address again and
   opens the TCP connection to the checked address (TLS still verifies the
   host name), so the socket goes where the check looked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore

from waikan.errors import FetchError
from waikan.fetch.errors import PermanentFetchError

__all__ = [
    "BlockedAddressError",
    "Guard",
    "GuardedBackend",
    "Resolver",
    "SyncGuardedBackend",
    "check_scheme",
    "forbidden_reason",
    "ip_literal",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_INET_ATON_FORM = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$", re.I)
_HINT = "set fetch.allow_private_networks = true to allow it"


class BlockedAddressError(PermanentFetchError):
    """The host is, or resolves to, an address the guard refuses (retrying will not help)."""


def check_scheme(url: str) -> None:
    """Only http and https URLs with a host are fetched (no file:, ftp:, gopher:, data:)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise PermanentFetchError(f"{url}: not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise PermanentFetchError(f"{url}: only http and https URLs can be fetched")


def ip_literal(host: str) -> IPAddress | None:
    """The address a host string denotes by itself, in every spelling resolvers accept."""
    host = host.strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if _INET_ATON_FORM.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _embedded_v4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]
    if addr in _NAT64 or addr in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    compat = int(addr)
    if 1 < compat < 2**32:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(compat)
    return None


def forbidden_reason(addr: IPAddress) -> str | None:
    """Why ``addr`` is refused (``loopback``, ``private``…), or None for a public address."""
    if isinstance(addr, ipaddress.IPv6Address) and (v4 := _embedded_v4(addr)) is not None:
        inner = forbidden_reason(v4)
        return f"{inner} (embedded in {addr})" if inner else None
    checks = (
        ("unspecified", addr.is_unspecified),
        ("loopback", addr.is_loopback),
        ("link-local", addr.is_link_local),
        ("multicast", addr.is_multicast),
        ("private", addr.is_private),
        ("reserved", addr.is_reserved),
        ("non-public", not addr.is_global),
    )
    for name, hit in checks:
        if hit:
            return name
    return None


class Resolver:
    """getaddrinfo without blocking the event loop, with a short cache shared by both layers."""

    def __init__(self, ttl: float = 60.0) -> None:
        self.ttl = ttl
        self._cache: dict[tuple[str, int], tuple[float, list[str]]] = {}

    async def resolve(self, host: str, port: int) -> list[str]:
        literal = ip_literal(host)
        if literal is not None:
            return [str(literal)]
        key = (host.lower(), port)
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise FetchError(f"cannot resolve host {host}: {exc}") from None
        addrs = list(dict.fromkeys(str(info[4][0]) for info in infos))
        self._cache[key] = (time.monotonic() + self.ttl, addrs)
        return addrs


def _refuse(what: str, addrs: Iterable[str]) -> None:
    for text in addrs:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
        reason = forbidden_reason(addr)
        if reason is not None:
            raise BlockedAddressError(
                f"{what}: refusing to fetch a private address ({addr}, {reason}); {_HINT}"
            )


class Guard:
    """Checks one URL (every redirect hop calls it) before any byte is sent."""

    def __init__(self, *, allow_private: bool, resolver: Resolver | None = None) -> None:
        self.allow_private = allow_private
        self.resolver = resolver or Resolver()

    async def check(self, url: str) -> None:
        check_scheme(url)
        if self.allow_private:
            return
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        try:
            addrs = await self.resolver.resolve(host, port)
        except FetchError as exc:
            raise FetchError(f"{url}: {exc}") from None
        _refuse(url, addrs)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects to an address it has just checked, never to a name resolved elsewhere."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addrs = await self.guard.resolver.resolve(host, port)
        if not self.guard.allow_private:
            _refuse(host, addrs)
        if not addrs:
            raise FetchError(f"cannot resolve host {host}: no addresses")
        error: Exception | None = None
        for addr in addrs:
            try:
                return await self._inner.connect_tcp(
                    addr, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddressError("unix sockets are never fetched")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class SyncGuardedBackend(httpcore.NetworkBackend):
    """The blocking twin of :class:`GuardedBackend`, for sync clients (e.g. webhook POSTs)."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._inner = httpcore.SyncBackend()

    def resolve(self, host: str, port: int) -> list[str]:
        literal = ip_literal(host)
        if literal is not None:
            return [str(literal)]
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise FetchError(f"cannot resolve host {host}: {exc}") from None
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addrs = self.resolve(host, port)
        if not self.allow_private:
            _refuse(host, addrs)
        if not addrs:
            raise FetchError(f"cannot resolve host {host}: no addresses")
        error: Exception | None = None
        for addr in addrs:
            try:
                return self._inner.connect_tcp(addr, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise BlockedAddressError("unix sockets are never fetched")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)
