"""Property tests (hypothesis) over the fuzz targets: quick, in ``make test``.

The atheris harnesses (test_atheris_slow.py) run the same targets
coverage-guided for 10,000+ inputs each in ``make test-slow``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tests.fuzz.seeds import regressions
from tests.fuzz.targets import TARGETS, zh_numeral

from waikan.dedupe.urls import canonicalize
from waikan.summarize.guard.numbers import parse_zh_number

QUICK = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
SLOWER = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))

_host = st.from_regex(
    r"[a-zA-Z0-9\-\.]{1,20}|\[::1\]|[0-9]{1,10}|xn--[a-z0-9]{1,8}", fullmatch=True
)
_path = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
_query = st.lists(
    st.tuples(st.sampled_from(["utm_source", "id", "amp", "fbclid", "q", "a b", "%41"]), _path),
    max_size=4,
)


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "HTTPS", "https", "ftp", ""]))
    user = draw(st.sampled_from(["", "user@", "a:b@"]))
    port = draw(st.sampled_from(["", ":80", ":443", ":8080", ":0", ":99999"]))
    q = "&".join(f"{k}={v}" for k, v in draw(_query))
    frag = draw(st.sampled_from(["", "#top", "#"]))
    return f"{scheme}://{user}{draw(_host)}{port}/{draw(_path)}{'?' + q if q else ''}{frag}"


@QUICK
@given(urls())
@example("https://www.cdn.ampproject.org/c/s/example.com/a/amp?utm_source=x#f")
@example("http://EXAMPLE.com:80/a/../b/./c?b=2&a=1")
@example("http://ｅｘａｍｐｌｅ.com/%7euser")
# found by atheris: the host inside an AMP cache URL was not canonicalized
@example("https://www-bbc-com.cdn.ampproject.org/c/s/www.bbc./com/news/x?amp=1")
@example("https://www-bbc-com.cdn.ampproject.org/c/s/例子.测试/路径/.1")
def test_canonicalize_is_idempotent(url: str) -> None:
    TARGETS["canonicalize"](url.encode("utf-8", "surrogatepass"))


@QUICK
@given(st.binary(max_size=300))
def test_canonicalize_any_bytes(data: bytes) -> None:
    TARGETS["canonicalize"](data)


def test_canonicalize_drops_tracking_and_userinfo() -> None:
    got = canonicalize("HTTP://u:p@Example.COM:80/a?utm_source=x&id=1#f")
    assert got == "http://example.com/a?id=1"


_feed_bits = st.sampled_from(
    [
        b'<?xml version="1.0"?>',
        b'<rss version="2.0"><channel>',
        b"<item><title>T</title><link>https://a.example/1</link></item>",
        b"<item><link>javascript:alert(1)</link><pubDate>Mon, 99 Foo</pubDate></item>",
        b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><link href="/rel"/></entry>',
        b'{"version": "https://jsonfeed.org/version/1.1", "items": [{"url": 5}]}',
        b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>x</loc></url>',
        b"<!DOCTYPE x [<!ENTITY a 'aaaa'>]>",
        b"\xff\xfe\x00<",
        b"\x1f\x8b\x08\x00",
        b"</channel></rss>",
    ]
)


@QUICK
@given(st.lists(st.one_of(_feed_bits, st.binary(max_size=20)), max_size=8))
def test_listing_parses_or_says_why(parts: list[bytes]) -> None:
    TARGETS["listing"](b"".join(parts))


_html_bits = st.sampled_from(
    [
        "<html><head><title>T | Reuters</title>",
        '<script type="application/ld+json">{"@type":"NewsArticle","headline":',
        '"H","datePublished":"2023-13-45"}</script>',
        '<script type="application/ld+json">[[[[[[[[[[</script>',
        "<h1>Headline</h1>",
        "<figure><img src='x.jpg'><figcaption>Cap REUTERS/X</figcaption></figure>",
        "<p>Some words of the article go here for the body.</p>",
        "<div>" * 50,
        "<meta property='article:published_time' content='yesterday'>",
        "\x00",
        "&#0;&#xD800;",
    ]
)


@SLOWER
@given(st.lists(st.one_of(_html_bits, st.text(max_size=30)), max_size=12))
def test_extract_returns_or_says_why(parts: list[str]) -> None:
    TARGETS["extract"]("".join(parts).encode("utf-8", "surrogatepass"))


_toml_bits = st.sampled_from(
    [
        "[llm]\n",
        'base_url = "http://x"\n',
        "api_key = 'literal'\n",
        'api_key = {"$env" = "K"}\n',
        'api_key = {"$file" = "../../etc/shadow"}\n',
        "[fetch]\nmax_bytes = -1\n",
        "max_bytes = 'many'\n",
        "[store]\nurl = 'nope'\n",
        "[nosuch]\n",
        "[channel]\nname = 3\n",
        "x = [1, 'a']\n",
        "[publish.site]\ntype = 'site'\n",
    ]
)


@QUICK
@given(st.lists(st.one_of(_toml_bits, st.text(max_size=15)), max_size=6))
def test_config_loads_or_names_the_key(parts: list[str]) -> None:
    TARGETS["config"]("".join(parts).encode("utf-8", "surrogatepass"))


_field = st.text(min_size=1, max_size=40)


@QUICK
@given(st.integers(0, 31), st.lists(_field, min_size=6, max_size=10))
def test_text_rendering_round_trips(flags: int, fields: list[str]) -> None:
    TARGETS["render_text"](bytes([flags]) + "\x00".join(fields).encode("utf-8", "surrogatepass"))


@QUICK
@given(
    st.integers(0, 255),
    st.lists(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",))), max_size=6),
)
def test_telegram_split_rejoins_in_order(limit: int, paragraphs: list[str]) -> None:
    TARGETS["telegram"](bytes([limit]) + "\x00".join(paragraphs).encode("utf-8"))


@QUICK
@given(st.integers(0, 2**53))  # exact in a float
@example(114784820031232)  # found by fuzzing: 万亿 dropped 亿 (gave 1,140,001)
@example(1_200_000_000_000)
def test_chinese_numerals_parse_to_their_value(n: int) -> None:
    assert parse_zh_number(zh_numeral(n)) == n


@pytest.mark.parametrize(
    ("text", "value"),
    [("一万二千亿", 1.2e12), ("一百万亿", 1e14), ("一亿三千万", 1.3e8), ("十二亿", 1.2e9)],
)
def test_wan_yi_regression(text: str, value: float) -> None:
    assert parse_zh_number(text) == value


@QUICK
@given(st.binary(max_size=200))
def test_number_normalizer_any_text(data: bytes) -> None:
    TARGETS["numbers"](data)


@pytest.mark.parametrize(
    "path",
    [p for t in ("canonicalize", "config") for p in regressions(t)],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_fuzz_regressions(path: Path) -> None:
    """Inputs atheris found (tests/fuzz/regress/): each once crashed its target."""
    TARGETS[path.parent.name](path.read_bytes())
