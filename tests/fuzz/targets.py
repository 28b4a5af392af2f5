"""The fuzz targets, shared by the hypothesis properties and the atheris harnesses.

Each target takes raw input, runs one parser of waikan on it and asserts a
property. Only :class:`~waikan.errors.WaikanError` may escape a parser: any
other exception, or a broken property, is a crash.
"""

from __future__ import annotations

import html
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from waikan import config as config_mod
from waikan.dedupe.urls import canonicalize
from waikan.errors import WaikanError
from waikan.extract.core import extract
from waikan.models import Post
from waikan.render.formats import render_text
from waikan.render.telegram import Segment, plain, split_messages, utf16_len
from waikan.sources.listing import parse_listing
from waikan.summarize.guard.numbers import article_facts, parse_zh_number, zh_quantities

__all__ = ["TARGETS", "zh_numeral"]


def fuzz_canonicalize(data: bytes) -> None:
    """Canonicalization never fails and is idempotent."""
    url = data.decode("utf-8", "replace")
    once = canonicalize(url)
    assert canonicalize(once) == once, (url, once, canonicalize(once))


def fuzz_listing(data: bytes) -> None:
    """Any bytes: a listing of http(s) items, or a WaikanError."""
    try:
        listing = parse_listing(data, url="https://feeds.example.com/feed")
    except WaikanError:
        return
    for item in listing.items:
        assert isinstance(item.url, str)


def fuzz_extract(data: bytes) -> None:
    """Any bytes: an Extracted whose paragraphs are non-empty strings, or an ExtractError."""
    try:
        got = extract(data, url="https://news.example.com/a", min_words=5)
    except WaikanError:
        return
    assert all(isinstance(p, str) and p.strip() for p in got.paragraphs)


_HOME = Path(tempfile.mkdtemp(prefix="waikan-fuzz-config-"))


def fuzz_config(data: bytes) -> None:
    """Any waikan.toml: a Config whose values all have their setting's type, or a ConfigError."""
    (_HOME / config_mod.CONFIG_FILE).write_bytes(data)
    try:
        cfg = config_mod.load(_HOME, env={})
    except WaikanError:
        return
    for setting in config_mod.SETTINGS:
        value = cfg[setting.name]
        assert value is None or isinstance(value, (str, int, float, bool, list, dict)), setting


_LINE = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def _field(text: str) -> str:
    """A one-line, non-blank field: what extraction hands the renderers."""
    return _LINE.sub(" ", text).strip() or "x"


def _post_from(data: bytes) -> Post:
    """Flags in the first byte leave out the date, caption or source, or add outlets."""
    flags = data[0] if data else 0
    parts = [_field(p) for p in data[1:].decode("utf-8", "replace").split("\x00")]
    parts += ["x"] * max(0, 6 - len(parts))
    outlets = [{"source": parts[1], "url": "https://a.example/1"}, {"source": None, "url": "u"}]
    return Post(
        id=1,
        channel=parts[0],
        source=None if flags & 4 else parts[1],
        title=parts[2],
        published=None if flags & 1 else ("2023-10-27" if flags & 16 else "2023-10-27T14:03:40Z"),
        caption=None if flags & 2 else parts[3],
        paragraphs=tuple(parts[5:]) or ("x",),
        summary=(parts[4],),
        meta={"outlets": outlets} if flags & 8 else {},
    )


def fuzz_render_text(data: bytes) -> None:
    """The text rendering round-trips its fields: channel, title, summary, caption, body."""
    post = _post_from(data)
    blocks = render_text(post).split("\n\n")
    assert blocks.pop(0) == post.channel
    assert blocks.pop(0) == (f"{post.source}-{post.title}" if post.source else post.title)
    meta = blocks.pop(0)
    assert meta.endswith(f"{post.word_count}\u00a0words")
    assert blocks.pop(0) == post.summary[0]
    head = [x for x in (post.published, post.caption) if x]
    if head:
        assert blocks.pop(0) == "\n".join(head)
    if post.meta:
        assert blocks.pop().startswith("报道来源：")
    assert tuple(blocks) == post.paragraphs


_TAG = re.compile(r"</?(?:b|i|a)(?: href=\"[^\"]*\")?>")


def fuzz_telegram(data: bytes) -> None:
    """Split messages fit the limit and rejoin to the original text, in order."""
    text = data.decode("utf-8", "replace")
    limit = 20 + (data[0] if data else 0)
    blocks = [(Segment(p, "b" if i % 2 else ""),) for i, p in enumerate(text.split("\x00"))]
    messages = split_messages(blocks, limit)
    parsed = [html.unescape(_TAG.sub("", m)) for m in messages]
    assert all(utf16_len(m) <= limit for m in parsed), [utf16_len(m) for m in parsed]
    squash = re.compile(r"\s+")
    original = squash.sub("", "".join(plain(b) for b in blocks))
    assert squash.sub("", "".join(parsed)) == original


_DIGIT_ZH = "零一二三四五六七八九"


def _section(n: int) -> str:
    """0 < n < 10000 in Chinese numerals (三千零五)."""
    out, zero = "", False
    for unit, name in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d = n // unit % 10
        if d:
            if zero and out:
                out += "零"
            out += _DIGIT_ZH[d] + name
            zero = False
        else:
            zero = True
    return out


def zh_numeral(n: int) -> str:
    """A non-negative integer below 10**16 in Chinese numerals, the way newspapers write it."""
    if n == 0:
        return "零"
    out = ""
    for unit, name in ((10**12, "万亿"), (10**8, "亿"), (10**4, "万"), (1, "")):
        part = n // unit % 10**4 if unit < 10**12 else n // unit
        if part:
            if out and part < 1000:
                out += "零"
            out += _section(part) + name
    return out


def fuzz_numbers(data: bytes) -> None:
    """Chinese numerals parse to their value; any text yields quantities without error."""
    n = int.from_bytes(data[:6].ljust(6, b"\0"), "big")
    assert parse_zh_number(zh_numeral(n)) == n, (n, zh_numeral(n))
    text = data[6:].decode("utf-8", "replace")
    zh_quantities(text)
    article_facts(text, "2023-10-27T14:03:40Z")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "canonicalize": fuzz_canonicalize,
    "config": fuzz_config,
    "extract": fuzz_extract,
    "listing": fuzz_listing,
    "numbers": fuzz_numbers,
    "render_text": fuzz_render_text,
    "telegram": fuzz_telegram,
}
