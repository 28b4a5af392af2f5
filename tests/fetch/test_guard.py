"""The SSRF guard on every hop (unit level; the loopback tests cover real sockets)."""

from __future__ import annotations

import httpx
import pytest

from waikan.errors import FetchError
from waikan.fetch import check_url, fetch

PUBLIC = "http://93.184.216.34/story"  # a literal public address: no DNS needed


def redirecting_to(target: str) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if str(request.url) == PUBLIC:
            return httpx.Response(302, headers={"Location": target})
        return httpx.Response(200, html="<p>secret</p>")

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1/admin",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://localhost/",
    ],
)
def test_redirect_to_private_address_refused(target: str) -> None:
    with pytest.raises(FetchError, match="private address"):
        fetch(PUBLIC, max_bytes=10_000, timeout=5, user_agent="t", transport=redirecting_to(target))


def test_public_redirect_followed() -> None:
    got = fetch(
        PUBLIC,
        max_bytes=10_000,
        timeout=5,
        user_agent="t",
        transport=redirecting_to("http://93.184.216.35/x"),
    )
    assert got.content == b"<p>secret</p>" and got.url == "http://93.184.216.35/x"


def test_too_many_redirects() -> None:
    loop = httpx.MockTransport(lambda r: httpx.Response(302, headers={"Location": PUBLIC}))
    with pytest.raises(FetchError, match="redirects"):
        fetch(PUBLIC, max_bytes=100, timeout=5, user_agent="t", transport=loop, max_redirects=3)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "file:///etc/passwd", "gopher://x", "http://"]
)
def test_only_http(url: str) -> None:
    with pytest.raises(FetchError, match="only http"):
        check_url(url, allow_private=True)
