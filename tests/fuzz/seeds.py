"""Seed inputs per fuzz target: real pages from ../shared/corpus and the tests' fixtures."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

from tests.conftest import DATA
from tests.servers import feeds

SHARED = Path(__file__).resolve().parents[3] / "shared"


def _pages(n: int) -> list[bytes]:
    paths = sorted((SHARED / "corpus" / "naeb-dev" / "html").glob("*.html.gz"))[:n]
    return [gzip.decompress(p.read_bytes()) for p in paths]


def _fixture_pages() -> list[bytes]:
    return [p.read_bytes() for p in sorted(DATA.glob("*.html"))]


def _paragraphs() -> list[str]:
    got = json.loads((DATA / "reuters-blinken-wang.expected.json").read_text(encoding="utf-8"))
    found = [v for v in got.values() if isinstance(v, str)]
    for v in got.values():
        if isinstance(v, list):
            found += [x for x in v if isinstance(x, str)]
    return found


def seeds(target: str) -> list[bytes]:
    """A handful of valid inputs for ``target``: mutation starts from real data."""
    when = datetime(2023, 10, 27, 14, 3, tzinfo=UTC)
    items = [
        ("https://www.reuters.com/world/a-b-2023-10-27/?utm_source=rss", "Blinken & Wang", when),
        ("http://EXAMPLE.com:80/amp/story.amp.html#x", "<b>AMP</b>", None),
    ]
    reference = (SHARED / "seed" / "reference-post.txt").read_text(encoding="utf-8")
    if target == "canonicalize":
        return [i[0].encode() for i in items] + [
            b"https://www-bbc-com.cdn.ampproject.org/c/s/www.bbc.com/news/x?amp=1",
            "http://例子.测试/路径/../a?q=%e4%b8%ad&fbclid=1".encode(),
            b"https://u:p@[::ffff:127.0.0.1]:8443/a/./b/%7e?b=2&a=1",
        ]
    if target == "listing":
        return [feeds.rss(items), feeds.atom(items), feeds.json_feed(items), feeds.sitemap(items)]
    if target == "extract":
        return _fixture_pages() + [p[:16384] for p in _pages(12)]
    if target == "config":
        from waikan.config import example_toml

        return [example_toml().encode(), b'[llm]\napi_key = {"$env" = "K"}\n[fetch]\nmax_bytes=1\n']
    if target == "render_text":  # small: the flags byte is left for the fuzzer to find
        return [b"\x00" + "\x00".join(_paragraphs()[:6]).encode(), b"\x00a\x00b"]
    if target == "telegram":
        paras = _paragraphs()
        return [bytes([n]) + "\x00".join(paras[i:]).encode() for i, n in enumerate((5, 60, 200))]
    if target == "numbers":
        head = (123456789012).to_bytes(6, "big")
        return [head + line.encode() for line in reference.split("\n") if line.strip()][:12]
    raise KeyError(target)


REGRESS = Path(__file__).resolve().parent / "regress"


def regressions(target: str) -> list[Path]:
    """Inputs that once crashed or stalled a target: kept as seeds and replayed by tests."""
    return sorted((REGRESS / target).glob("*"))


def write_seeds(target: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    found = seeds(target) + [p.read_bytes() for p in regressions(target)]
    for i, data in enumerate(found):
        (folder / f"seed-{i:03d}").write_bytes(data)
    return folder
