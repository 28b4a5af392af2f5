"""The SSRF guard with real sockets: every spelling of a private address, DNS answers,
and the connection going to the address that was checked (no rebinding window)."""

from __future__ import annotations

import asyncio

import pytest
from tests.conftest import DATA
from tests.servers.pages import PageServer, redirect

from waikan.errors import FetchError
from waikan.fetch import BlockedAddressError, Fetcher, FetchSettings
from waikan.fetch.guard import Resolver, forbidden_reason, ip_literal

PAGE = (DATA / "reuters-blinken-wang.html").read_bytes()


def settings(**kw: object) -> FetchSettings:
    base: dict[str, object] = {"host_delay": 0.0, "retries": 0, "obey_robots": False}
    return FetchSettings(**(base | kw))  # type: ignore[arg-type]


def get(url: str, resolver: Resolver | None = None, **kw: object) -> object:
    async def go() -> object:
        async with Fetcher(settings(**kw)) as fetcher:
            if resolver is not None:
                fetcher.guard.resolver = resolver
            return await fetcher.get(url)

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),  # decimal
        ("0177.0.0.1", "127.0.0.1"),  # octal
        ("0x7f.0.0.1", "127.0.0.1"),  # hex
        ("0x7f000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),  # short form
        ("0", "0.0.0.0"),
        ("017700000001", "127.0.0.1"),
        ("[::1]", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("[0:0:0:0:0:ffff:7f00:1]", "::ffff:7f00:1"),
        ("10.0.0.1", "10.0.0.1"),
    ],
)
def test_ip_literal_spellings(host: str, address: str) -> None:
    parsed = ip_literal(host)
    assert parsed is not None and str(parsed) == address
    assert forbidden_reason(parsed) is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://0x7f.0.0.1/",
        "http://0x7f000001/",
        "http://127.1/",
        "http://0.0.0.0/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:a9fe:a9fe]/",  # mapped 169.254.169.254
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[ff02::1]/",
        "http://[2002:7f00:1::]/",  # 6to4 around 127.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 around the metadata address
        "http://[::127.0.0.1]/",  # deprecated IPv4-compatible form
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",  # carrier-grade NAT
        "http://192.168.1.1/",
        "http://172.16.0.1/",
        "http://224.0.0.1/",  # multicast (Python calls some of it global)
        "http://240.0.0.1/",  # reserved
        "http://255.255.255.255/",
        "http://localhost/",
    ],
)
def test_private_spellings_refused_before_connecting(url: str) -> None:
    with pytest.raises(BlockedAddressError, match="private address"):
        get(url)


@pytest.mark.parametrize("url", ["http://93.184.216.34/", "http://[2606:2800:220:1::]/"])
def test_public_addresses_pass_the_check(url: str) -> None:
    parsed = ip_literal(url.split("//")[1].strip("/"))
    assert parsed is not None and forbidden_reason(parsed) is None


class FixedResolver(Resolver):
    """A DNS that answers from a table (a test stands in for the network's DNS)."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        super().__init__()
        self.answers = answers
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        literal = ip_literal(host)
        if literal is not None:
            return [str(literal)]
        self.asked.append(host)
        queue = self.answers[host]
        return queue.pop(0) if len(queue) > 1 else queue[0]


def test_connection_goes_to_the_resolved_address() -> None:
    """A made-up name reaches the loopback server only through the guard's own resolution."""
    with PageServer({"/story": PAGE}) as srv:
        port = srv.base.rsplit(":", 1)[1]
        resolver = FixedResolver({"news.test": [["127.0.0.1"]]})
        got = get(f"http://news.test:{port}/story", resolver, allow_private=True)
    assert got.content == PAGE  # type: ignore[attr-defined]
    assert "news.test" in resolver.asked


def test_dns_rebinding_refused_at_connect() -> None:
    """The name is public when checked and loopback when connecting: the connection is refused."""
    with PageServer({"/story": PAGE}) as srv:
        port = srv.base.rsplit(":", 1)[1]
        resolver = FixedResolver({"rebind.test": [["93.184.216.34"], ["127.0.0.1"]]})
        with pytest.raises(BlockedAddressError, match=r"127\.0\.0\.1"):
            get(f"http://rebind.test:{port}/story", resolver)
        assert srv.hits == []
        assert resolver.asked == ["rebind.test", "rebind.test"]


def test_name_with_one_private_answer_refused() -> None:
    resolver = FixedResolver({"mixed.test": [["93.184.216.34", "10.1.2.3"]]})
    with pytest.raises(BlockedAddressError, match=r"10\.1\.2\.3"):
        get("http://mixed.test/", resolver)


def test_redirect_hop_to_private_name_refused() -> None:
    """Every hop is checked: a public-looking first hop redirecting to loopback stops there."""
    with PageServer({"/r": redirect("http://internal.test/admin")}) as srv:
        port = srv.base.rsplit(":", 1)[1]
        resolver = FixedResolver({"public.test": [["127.0.0.1"]], "internal.test": [["127.0.0.1"]]})
        # allow_private lets the first hop reach the loopback server; the guard is then
        # switched on for the hop, as for a public server redirecting inward.

        async def go() -> None:
            async with Fetcher(settings(allow_private=True)) as fetcher:
                fetcher.guard.resolver = resolver
                original = fetcher.guard.check

                async def check(url: str) -> None:
                    fetcher.guard.allow_private = "internal.test" not in url
                    await original(url)

                fetcher.guard.check = check  # type: ignore[method-assign]
                await fetcher.get(f"http://public.test:{port}/r")

        with pytest.raises(BlockedAddressError, match=r"internal\.test"):
            asyncio.run(go())
        assert srv.hits == ["/r"]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://x/y", "gopher://x/", "data:,hi"])
def test_unsupported_schemes(url: str) -> None:
    with pytest.raises(FetchError, match="only http and https"):
        get(url, allow_private=True)


def test_sync_guarded_transport_refuses_and_allows() -> None:
    import httpx

    from waikan.fetch import guarded_sync_transport

    with PageServer({"/hook": PAGE}) as srv:
        guarded = httpx.Client(transport=guarded_sync_transport(allow_private=False))
        with guarded, pytest.raises(BlockedAddressError, match="private address"):
            guarded.get(f"{srv.base}/hook")
        assert srv.hits == []
        with httpx.Client(transport=guarded_sync_transport(allow_private=True)) as client:
            assert client.get(f"{srv.base}/hook").content == PAGE
