"""Quality gates: decide whether an extracted page deserves a summary (SPEC §2.3).

A rejection costs a reader one story; a bad acceptance costs an LLM call and
a post that embarrasses the channel. The rules therefore reject only on
evidence the page gives about itself (schema.org types, paywall markup and
wording) combined with the shape of what was extracted, and never on
length alone except for ``too_short``.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import lxml.html

from waikan.extract.body import Block

NOT_ARTICLE = "not_article"
PAYWALLED = "paywalled"
TOO_SHORT = "too_short"
TOO_LARGE = "too_large"

_ARTICLE_TYPES = frozenset(
    {
        "article", "newsarticle", "reportagenewsarticle", "analysisnewsarticle",
        "opinionnewsarticle", "backgroundnewsarticle", "reviewnewsarticle", "blogposting",
        "report", "scholarlyarticle", "techarticle", "socialmediaposting", "review",
    }
)  # fmt: skip
_LIVE_TYPES = frozenset({"liveblogposting"})
_VIDEO_TYPES = frozenset({"videoobject", "videogallery"})
_INDEX_TYPES = frozenset({"collectionpage", "itemlist", "searchresultspage", "profilepage"})
_PAYWALL_TEXT = re.compile(
    r"(?:subscribe|subscription|subscriber|sign\s+in|log\s+in|register)\b[^.]{0,80}"
    r"\b(?:to\s+(?:continue|keep)\s+reading|to\s+read\s+(?:the\s+(?:full|rest)|more|this)"
    r"|for\s+(?:full|unlimited)\s+access|to\s+unlock)"
    r"|(?:this\s+(?:article|story|content)\s+is\s+(?:only\s+)?(?:available|reserved|exclusive)\s+"
    r"(?:only\s+)?(?:to|for)\s+(?:paying\s+)?(?:subscribers|members))"
    r"|already\s+a\s+(?:subscriber|member)\?",
    re.I,
)
_PAYWALL_CLASS = re.compile(
    r"\b(?:paywall|piano-?(?:offer|template)|meter(?:ed)?-?wall|regwall)\b", re.I
)
_LIVE_TEXT = re.compile(r"\blive\s+(?:blog|updates|coverage)\b", re.I)
_WORD = re.compile(r"\w+")
# Share of body words that are the text of the page's own links; on the corpus
# no article exceeds 0.5, while a list of headlines is close to 1.
_INDEX_LINK_SHARE = 0.6
# Headlines are short: a body whose typical paragraph is shorter than this may be a list.
_SHORT_BLOCK_WORDS = 20


@dataclass(frozen=True)
class PageSignals:
    """What the page declares about itself, read from the tree before trafilatura."""

    types: frozenset[str]
    accessible_for_free: bool | None
    og_type: str | None
    paywall_markup: bool


def _walk_jsonld(node: object, depth: int = 0) -> Iterator[dict[str, object]]:
    if depth > 12:  # hostile nesting: nothing useful lives that deep
        return
    if isinstance(node, list):
        for item in node:
            yield from _walk_jsonld(item, depth + 1)
    elif isinstance(node, dict):
        yield node
        for key in ("@graph", "mainEntity", "mainEntityOfPage", "hasPart"):
            if key in node:
                yield from _walk_jsonld(node[key], depth + 1)


def _types_of(obj: dict[str, object]) -> list[str]:
    raw = obj.get("@type")
    values = raw if isinstance(raw, list) else [raw]
    return [v.casefold() for v in values if isinstance(v, str)]


def page_signals(tree: lxml.html.HtmlElement) -> PageSignals:
    """Read schema.org types, isAccessibleForFree, og:type and paywall markup."""
    types: set[str] = set()
    free: bool | None = None
    for script in tree.iterfind(".//script[@type='application/ld+json']"):
        try:
            data = json.loads(script.text or "")
        except (ValueError, RecursionError):
            continue
        for obj in _walk_jsonld(data):
            kinds = _types_of(obj)
            types.update(kinds)
            flag = obj.get("isAccessibleForFree")
            if flag is not None and "webpageelement" not in kinds:
                value = str(flag).strip().casefold() not in {"false", "0", "no"}
                free = value if free is None else free and value
    og = tree.find(".//meta[@property='og:type']")
    og_type = (og.get("content") or "").strip().casefold() if og is not None else None
    paywall = any(
        _PAYWALL_CLASS.search(el.get("class") or "") or _PAYWALL_CLASS.search(el.get("id") or "")
        for el in tree.iterfind(".//body//div")
        if el.get("class") or el.get("id")
    )
    return PageSignals(frozenset(types), free, og_type or None, paywall)


def _key(text: str) -> str:
    return " ".join(_WORD.findall(text.casefold()))


def link_share(tree: lxml.html.HtmlElement, blocks: Sequence[Block]) -> float:
    """How much of the body is made of link texts (of three words or more) found on the page."""
    body = f" {_key(' '.join(b.text for b in blocks))} "
    total = body.count(" ") - 1
    if total <= 0:
        return 0.0
    links = {_key(a.text_content()) for a in tree.iter("a")}
    linked = sum(k.count(" ") + 1 for k in links if k.count(" ") >= 2 and f" {k} " in body)
    return min(1.0, linked / total)


def words(blocks: Sequence[Block]) -> int:
    return sum(len(b.text.split()) for b in blocks)


def reject_reason(
    blocks: Sequence[Block],
    signals: PageSignals,
    *,
    min_words: int,
    raw: Sequence[Block] = (),
    linked: Callable[[], float] = lambda: 0.0,
) -> str | None:
    """The first gate that fails, in order: not_article, paywalled, too_short.

    ``blocks`` is the cleaned body; ``raw`` is what trafilatura returned before
    the boilerplate rules, where subscribe-wall wording still shows;
    ``linked`` computes :func:`link_share` of the cleaned body; it is only
    called for pages that look like lists (it walks every link of the page).
    """
    n = words(blocks)
    is_article = bool(signals.types & _ARTICLE_TYPES) or signals.og_type == "article"
    if signals.types & _LIVE_TYPES:
        return NOT_ARTICLE
    if blocks and _LIVE_TEXT.search(blocks[0].text) and n > 0 and not is_article:
        return NOT_ARTICLE
    if (signals.types & _VIDEO_TYPES) and not is_article and n < 2 * min_words:
        return NOT_ARTICLE
    if (signals.types & _INDEX_TYPES) and not is_article:
        return NOT_ARTICLE
    if not blocks:
        return NOT_ARTICLE
    short_blocks = statistics.median(len(b.text.split()) for b in blocks) < _SHORT_BLOCK_WORDS
    if (short_blocks or not is_article) and linked() >= _INDEX_LINK_SHARE:
        return NOT_ARTICLE
    listy = sum(len(b.text.split()) for b in blocks if b.kind in ("li", "h", "row"))
    if not is_article and n and listy / n > 0.6 and len(blocks) >= 8:
        return NOT_ARTICLE  # a list of links and headlines: an index page
    teaser = n < max(2 * min_words, 250)
    if teaser and (signals.accessible_for_free is False or signals.paywall_markup):
        return PAYWALLED
    if teaser and any(_PAYWALL_TEXT.search(b.text) for b in (raw or blocks)[-4:]):
        return PAYWALLED
    if n < min_words:
        return TOO_SHORT
    return None
