"""Client-side search index: character bigrams for Chinese, words for English.

Chinese has no spaces between words, so Han runs are indexed as overlapping
bigrams (布林肯 → 布林, 林肯) and a query must contain all of its bigrams.
Latin text is indexed as accent-folded lowercase words. ``static/search.js``
tokenizes queries the same way; the two must change together (bump
:data:`FORMAT`).

The index is split twice so that both the reader and an incremental build
stay cheap: posts (oldest first) fall into *segments* — complete blocks of
:data:`BIG` posts, then blocks of :data:`SMALL` for the newest ones — and each
segment's terms are hashed into shards. A new post only rewrites the newest
small segment; a query loads one shard per term per segment. Files are
JavaScript calling ``waikanSearch.load(name, data)`` so search also works
from ``file://``, where ``fetch()`` is refused.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

FORMAT = 1
BIG, BIG_SHARDS = 1000, 64
SMALL, SMALL_SHARDS = 100, 8

_TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+|[0-9a-z]+")
_MARKS = re.compile(r"[\u0300-\u036f]")


def terms(text: str) -> set[str]:
    """Index terms of ``text``: Han bigrams (a lone Han character as itself) and words."""
    folded = _MARKS.sub("", unicodedata.normalize("NFKD", text)).lower()
    out: set[str] = set()
    for token in _TOKEN.findall(folded):
        if token[0] < "\u3400" or len(token) == 1:
            out.add(token)
        else:
            out.update(map(str.__add__, token, token[1:]))
    return out


def shard_of(term: str, shards: int) -> int:
    """FNV-1a over the term's UTF-8 bytes; search.js computes the same number."""
    h = 0x811C9DC5
    for byte in term.encode("utf-8"):
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h % shards


@dataclass(frozen=True)
class Segment:
    start: int  # position of its first post, oldest first
    size: int  # capacity: BIG or SMALL
    count: int  # posts in it now

    @property
    def name(self) -> str:
        return f"{'b' if self.size == BIG else 's'}{self.start}"

    @property
    def shards(self) -> int:
        return BIG_SHARDS if self.size == BIG else SMALL_SHARDS


def segments(total: int) -> list[Segment]:
    """Complete blocks of BIG posts, then blocks of SMALL: earlier segments never change."""
    out = [Segment(i * BIG, BIG, BIG) for i in range(total // BIG)]
    start = len(out) * BIG
    while start < total:
        out.append(Segment(start, SMALL, min(SMALL, total - start)))
        start += SMALL
    return out


@dataclass(frozen=True)
class Doc:
    """One post as search sees it; ``url`` is relative to the site root."""

    url: str
    title: str
    date: str
    snippet: str
    text: str


def _js(name: str, data: object) -> str:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    payload = payload.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return f"waikanSearch.load({json.dumps(name)},{payload});\n"


def segment_files(segment: Segment, docs: Sequence[Doc]) -> dict[str, str]:
    """The shard files and the doc list of one segment, keyed by path under the site root."""
    postings: defaultdict[str, list[int]] = defaultdict(list)
    for local, doc in enumerate(docs):
        for term in terms(doc.text):
            postings[term].append(local)
    shards: list[dict[str, list[int]]] = [{} for _ in range(segment.shards)]
    for term in sorted(postings):
        shards[shard_of(term, segment.shards)][term] = postings[term]
    files = {}
    for n, table in enumerate(shards):
        name = f"{segment.name}/{n}"
        files[f"search/{name}.js"] = _js(name, table)
    doc_rows = [[d.url, d.title, d.date, d.snippet] for d in docs]
    files[f"search/{segment.name}/docs.js"] = _js(f"{segment.name}/docs", doc_rows)
    return files


def meta_file(segs: Iterable[Segment]) -> dict[str, str]:
    """``search/index.js``: the segments (newest first) a query walks through."""
    rows = [[s.name, s.shards, s.count] for s in reversed(list(segs))]
    return {"search/index.js": _js("index", {"format": FORMAT, "segments": rows})}
