"""The SSRF suite: every spelling of "the operator's own network", on every outbound path.

An *internal* server listens on 127.0.0.1:P and [::1]:P (the operator's
network); a stand-in *public* server listens on 127.0.0.2 (treated as public
by the guard for this suite only: everything here stays on loopback). A
stand-in DNS (``socket.getaddrinfo``) answers made-up names. Each case is a
URL that must never reach the internal server, tried as a page/feed fetch,
a lead-image download and a webhook target. A case is *blocked* when the
internal server saw no request from it.

``run(protect=False)`` runs the same cases with ``fetch.allow_private_networks
= true``: the figures with the protection off (tests/security/figures.py).
A network jail refuses any connection to a non-loopback address, so neither
mode ever sends a packet off this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from waikan.errors import WaikanError

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
PUBLIC_STANDIN = "127.0.0.2"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class _V6Server(_Server):
    address_family = socket.AF_INET6


@dataclass
class Loopback:
    """Internal (127.0.0.1 + ::1, same port) and public stand-in (127.0.0.2) servers."""

    hits: list[str] = field(default_factory=list)  # internal requests
    public_hits: list[str] = field(default_factory=list)
    port: int = 0
    public_port: int = 0
    _servers: list[ThreadingHTTPServer] = field(default_factory=list)

    def _handler(self, internal: bool) -> type[BaseHTTPRequestHandler]:
        suite = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                (suite.hits if internal else suite.public_hits).append(self.path)
                to = self.path.partition("?to=")[2]
                if not internal and to:
                    self.send_response(302)
                    self.send_header("Location", to.format(p=suite.port))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = PNG if internal else b"public"
                self.send_response(200 if internal else 404)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def __enter__(self) -> Loopback:
        for _ in range(20):
            v4 = _Server(("127.0.0.1", 0), self._handler(True))
            try:
                v6 = _V6Server(("::1", v4.server_address[1]), self._handler(True))
            except OSError:
                v4.server_close()
                continue
            break
        else:
            raise RuntimeError("no port free on both 127.0.0.1 and ::1")
        public = _Server((PUBLIC_STANDIN, 0), self._handler(False))
        self._servers = [v4, v6, public]
        self.port, self.public_port = v4.server_address[1], public.server_address[1]
        for srv in self._servers:
            threading.Thread(target=srv.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()


# name -> successive answers (the last one repeats); IDN names by their A-label
DNS: dict[str, list[list[str]]] = {
    "intranet.corp.test": [["127.0.0.1"]],
    "mixed.test": [[PUBLIC_STANDIN, "127.0.0.1"]],
    "rebind.test": [[PUBLIC_STANDIN], ["127.0.0.1"]],  # public when checked, internal after
    "内网.test".encode("idna").decode(): [["127.0.0.1"]],
}

CASES: dict[str, str] = {
    "decimal IPv4": "http://2130706433:{p}{path}",
    "octal IPv4": "http://0177.0.0.1:{p}{path}",
    "hex IPv4": "http://0x7f.0.0.1:{p}{path}",
    "hex IPv4 integer": "http://0x7f000001:{p}{path}",
    "short IPv4": "http://127.1:{p}{path}",
    "IPv6 loopback": "http://[::1]:{p}{path}",
    "IPv4-mapped IPv6": "http://[::ffff:127.0.0.1]:{p}{path}",
    "IPv4-mapped IPv6 hex": "http://[::ffff:7f00:1]:{p}{path}",
    "0.0.0.0": "http://0.0.0.0:{p}{path}",
    "localhost": "http://localhost:{p}{path}",
    "name resolving to private": "http://intranet.corp.test:{p}{path}",
    "name with one private answer": "http://mixed.test:{p}{path}",
    "DNS rebinding check-vs-connect": "http://rebind.test:{p}{path}",
    "redirect to loopback": "http://127.0.0.2:{q}/r?to=http://127.0.0.1:{{p}}{path}",
    "redirect to localhost": "http://127.0.0.2:{q}/r?to=http://localhost:{{p}}{path}",
    "redirect to decimal": "http://127.0.0.2:{q}/r?to=http://2130706433:{{p}}{path}",
    "userinfo @ trick": "http://www.reuters.com@127.0.0.1:{p}{path}",
    "userinfo host:port@": "http://127.0.0.2:{q}@localhost:{p}{path}",
    "userinfo backslash": "http://127.0.0.2:{q}\\@127.0.0.1:{p}{path}",
    "IDN fullwidth localhost": "http://ｌｏｃａｌｈｏｓｔ:{p}{path}",
    "IDN name resolving to private": "http://内网.test:{p}{path}",
    "IDN circled digits": "http://①②⑦.0.0.1:{p}{path}",
}


def _is_loopback(host: str) -> bool:
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback or addr.is_unspecified


@dataclass
class Net:
    refused: list[str]
    reset: Callable[[], None]


@contextlib.contextmanager
def network(answers: dict[str, list[list[str]]]) -> Iterator[Net]:
    """Stand-in DNS, the public stand-in address, and a jail for non-loopback connects."""
    from waikan.fetch import guard

    queues: dict[str, list[list[str]]] = {}

    def reset() -> None:
        queues.clear()
        queues.update({k: [list(a) for a in v] for k, v in answers.items()})

    reset()
    refused: list[str] = []
    real_gai = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_reason = guard.forbidden_reason

    def getaddrinfo(host: Any, port: Any, *args: Any, **kw: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host or "")
        name = name.rstrip(".").lower()
        with contextlib.suppress(UnicodeError):
            name = name.encode("idna").decode() if not name.isascii() else name
        queue = queues.get(name)
        if queue is None:
            return real_gai(host, port, *args, **kw)
        addrs = queue.pop(0) if len(queue) > 1 else queue[0]
        out = []
        for a in addrs:
            fam = socket.AF_INET6 if ":" in a else socket.AF_INET
            out.append((fam, socket.SOCK_STREAM, 6, "", (a, int(port or 0))))
        return out

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            refused.append(str(address[0]))
            raise ConnectionRefusedError(f"suite network jail: {address[0]} is not loopback")

    def connect(self: socket.socket, address: Any) -> None:
        check(self, address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(self, address)
        return real_connect_ex(self, address)

    def reason(addr: Any) -> str | None:
        return None if str(addr) == PUBLIC_STANDIN else real_reason(addr)

    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    guard.forbidden_reason = reason
    try:
        yield Net(refused, reset)
    finally:
        socket.getaddrinfo = real_gai
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = real_connect_ex  # type: ignore[method-assign]
        guard.forbidden_reason = real_reason


# -- the three outbound paths ----------------------------------------------------------


def try_pages(urls: list[str], protect: bool, work: Path, net: Net) -> None:
    """Pages and feeds: one run's Fetcher (feeds ask with a feed Accept header)."""
    from waikan.fetch import Fetcher, FetchSettings
    from waikan.fetch.client import FEED_ACCEPT
    from waikan.fetch.guard import Resolver

    async def go() -> None:
        settings = FetchSettings(
            allow_private=not protect, obey_robots=False, host_delay=0.0, retries=0, timeout=5
        )
        async with Fetcher(settings) as fetcher:
            for url in urls:
                net.reset()
                fetcher.guard.resolver = Resolver()  # no DNS cache carried between cases
                for accept in (FEED_ACCEPT, "text/html"):
                    with contextlib.suppress(WaikanError):
                        await fetcher.get(url, accept=accept)

    asyncio.run(go())


def _config(home: Path, protect: bool, extra: str = "") -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "waikan.toml").write_text(
        f"[fetch]\nallow_private_networks = {'false' if protect else 'true'}\n{extra}",
        encoding="utf-8",
    )
    return home


def try_images(urls: list[str], protect: bool, work: Path, net: Net) -> None:
    """Lead images: the site builder's downloader."""
    from waikan import config as config_mod
    from waikan.render.images import Images, config_fetcher

    cfg = config_mod.load(_config(work / "ws", protect), env={})
    images = Images(out=work / "site", fetcher=config_fetcher(cfg), warnings=[])
    for url in urls:
        net.reset()
        images.local(url)


def try_webhooks(urls: list[str], protect: bool, work: Path, net: Net) -> None:
    """Webhook targets: one ``waikan publish`` to one webhook destination per case."""
    from tests.conftest import run_inproc
    from tests.publish.conftest import add_post, toml_value

    from waikan import config as config_mod
    from waikan.workspace import Workspace

    dests = "".join(
        f'[publish.hook{i}]\ntype = "webhook"\nurl = {toml_value(url)}\ntimeout = 3\n'
        "max_retries = 0\n"
        for i, url in enumerate(urls)
    )
    home = _config(work / "ws", protect, dests)
    ws = Workspace(config_mod.load(home, env={}))
    try:
        add_post(ws, 1)
    finally:
        ws.close()
    net.reset()
    run_inproc(["--home", str(home), "publish"], {"WAIKAN_WEBHOOK_SECRET": "s"})


SURFACES: dict[str, Callable[[list[str], bool, Path, Net], None]] = {
    "page/feed": try_pages,
    "image": try_images,
    "webhook": try_webhooks,
}


@dataclass
class Outcome:
    surface: str
    case: str
    url: str
    blocked: bool


def run(work: Path, *, protect: bool = True, surfaces: tuple[str, ...] = ()) -> list[Outcome]:
    """Every case on every surface; ``protect=False`` turns the guard off."""
    outcomes: list[Outcome] = []
    with Loopback() as srv, network(DNS) as net:
        for surface, attempt in SURFACES.items():
            if surfaces and surface not in surfaces:
                continue
            tag = surface.replace("/", "-")
            paths = [f"/secret-{tag}-{n}" for n in range(len(CASES))]
            urls = [
                t.format(p=srv.port, q=srv.public_port, path=path)
                for t, path in zip(CASES.values(), paths, strict=True)
            ]
            attempt(urls, protect, work / tag, net)
            for case, url, path in zip(CASES, urls, paths, strict=True):
                blocked = path not in srv.hits
                outcomes.append(Outcome(surface, case, url, blocked))
        assert not net.refused, f"jail refused connections off loopback: {net.refused}"
    return outcomes


def summary(outcomes: list[Outcome]) -> str:
    n = sum(o.blocked for o in outcomes)
    lines = [f"SSRF: {n}/{len(outcomes)} blocked"]
    lines += [f"  NOT BLOCKED: {o.surface}: {o.case}: {o.url}" for o in outcomes if not o.blocked]
    return "\n".join(lines)
