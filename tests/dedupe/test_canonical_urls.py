"""URL canonicalization, table-driven: each row is a spelling seen in the wild and its one form."""

from __future__ import annotations

import pytest

from waikan.dedupe.urls import canonicalize

CASES = [
    # scheme and host case, default ports, empty path
    ("HTTP://WWW.Example.COM", "http://www.example.com/"),
    ("https://example.com:443/a", "https://example.com/a"),
    ("http://example.com:80/a", "http://example.com/a"),
    ("https://example.com:8443/a", "https://example.com:8443/a"),
    ("https://example.com./a", "https://example.com/a"),
    # fragments and user info
    ("https://example.com/a#comments", "https://example.com/a"),
    ("https://user:pw@example.com/a", "https://example.com/a"),
    # tracking parameters go, real ones stay in their order
    ("https://example.com/a?utm_source=tw&utm_medium=social", "https://example.com/a"),
    ("https://example.com/a?id=7&utm_campaign=x&page=2", "https://example.com/a?id=7&page=2"),
    ("https://example.com/a?fbclid=abc", "https://example.com/a"),
    ("https://example.com/a?UTM_Source=x&gclid=1&mc_cid=2", "https://example.com/a"),
    (
        "https://www.bbc.com/news/x-1?at_medium=RSS&at_campaign=KARANGA",
        "https://www.bbc.com/news/x-1",
    ),
    (
        "https://www.theguardian.com/w/2023/a?CMP=share_btn_tw",
        "https://www.theguardian.com/w/2023/a",
    ),
    (
        "https://www.nytimes.com/2023/a.html?smid=nytcore-ios-share",
        "https://www.nytimes.com/2023/a.html",
    ),
    ("https://example.com/search?q=a+b", "https://example.com/search?q=a%20b"),
    ("https://example.com/a?flag", "https://example.com/a?flag="),
    # AMP variants
    (
        "https://www.theguardian.com/world/2023/oct/27/story/amp",
        "https://www.theguardian.com/world/2023/oct/27/story",
    ),
    ("https://example.com/amp/2023/story", "https://example.com/2023/story"),
    ("https://www.bbc.com/news/world-67250000.amp", "https://www.bbc.com/news/world-67250000"),
    ("https://example.com/story.amp.html", "https://example.com/story"),
    ("https://example.com/story?amp=1", "https://example.com/story"),
    ("https://example.com/story?outputType=amp", "https://example.com/story"),
    ("https://amp.cnn.com/2023/10/27/story", "https://www.cnn.com/2023/10/27/story"),
    (
        "https://www-example-com.cdn.ampproject.org/c/s/www.example.com/2023/story",
        "https://www.example.com/2023/story",
    ),
    ("https://example.com/amp", "https://example.com/amp"),  # a page named amp stays
    # trailing slash per host rule; unknown hosts keep it as given
    (
        "https://www.reuters.com/world/us/story-2023-10-27",
        "https://www.reuters.com/world/us/story-2023-10-27/",
    ),
    ("https://apnews.com/article/story-abc/", "https://apnews.com/article/story-abc"),
    ("https://example.com/a/", "https://example.com/a/"),
    ("https://example.com/a", "https://example.com/a"),
    # escapes and dot segments
    ("https://example.com/%7euser/a%2fb", "https://example.com/~user/a%2Fb"),
    ("https://example.com/a/./b/../c", "https://example.com/a/c"),
    ("https://example.com/caf\u00e9", "https://example.com/caf%C3%A9"),
    # IDNA host
    ("https://B\u00dcCHER.example/a", "https://xn--bcher-kva.example/a"),
    # IPv6 literal keeps its brackets
    ("http://[::1]:8080/a", "http://[::1]:8080/a"),
    # not http(s): left alone (the fetcher refuses them with a clear message)
    ("ftp://example.com/a", "ftp://example.com/a"),
    ("file:///tmp/a.html", "file:///tmp/a.html"),
]


@pytest.mark.parametrize(("given", "expected"), CASES)
def test_canonicalize(given: str, expected: str) -> None:
    assert canonicalize(given) == expected


@pytest.mark.parametrize(("given", "expected"), CASES)
def test_canonicalize_is_idempotent(given: str, expected: str) -> None:
    assert canonicalize(canonicalize(given)) == canonicalize(given)
