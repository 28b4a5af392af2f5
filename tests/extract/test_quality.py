"""Quality gates: not_article, paywalled, too_short — and no rejection of normal articles."""

from __future__ import annotations

import json

import lxml.html
import pytest

from waikan.extract import extract
from waikan.extract.body import Block
from waikan.extract.quality import page_signals, reject_reason

PROSE = (
    "The council voted on Tuesday to approve the new budget after a long debate that lasted"
    " well into the night, with members split over spending on roads and schools."
)


def _html(body: str, *, jsonld: object = None, og_type: str | None = "article") -> str:
    head = "<title>Budget approved</title>"
    if og_type:
        head += f'<meta property="og:type" content="{og_type}">'
    if jsonld is not None:
        head += f'<script type="application/ld+json">{json.dumps(jsonld)}</script>'
    body = f"<body><article><h1>Budget approved</h1>{body}</article></body>"
    return f"<html><head>{head}</head>{body}</html>"


ARTICLE = "".join(f"<p>{PROSE} Paragraph {i}.</p>" for i in range(10))


def test_normal_article_passes() -> None:
    assert extract(_html(ARTICLE)).reject_reason is None


def test_paywall_flag_with_full_text_is_not_a_teaser() -> None:
    ld = {"@type": "NewsArticle", "headline": "Budget", "isAccessibleForFree": False}
    assert extract(_html(ARTICLE, jsonld=ld)).reject_reason is None


def test_paywall_flag_with_short_body_is_paywalled() -> None:
    ld = {"@type": "NewsArticle", "headline": "Budget", "isAccessibleForFree": "False"}
    page = _html(f"<p>{PROSE}</p><p>{PROSE} More.</p>", jsonld=ld)
    assert extract(page).reject_reason == "paywalled"


def test_subscribe_wall_wording_with_short_body_is_paywalled() -> None:
    wall = "<p>Subscribe to continue reading this story.</p>"
    page = _html(f"<p>{PROSE}</p><p>{PROSE} Two.</p>{wall}")
    assert extract(page).reject_reason == "paywalled"


def test_live_blog_is_not_an_article() -> None:
    ld = {"@type": "LiveBlogPosting", "headline": "Live updates"}
    got = extract(_html(ARTICLE, jsonld=ld))
    assert got.reject_reason == "not_article"
    assert got.paragraphs == ()  # a non-article claims no body
    assert extract(_html(ARTICLE)).paragraphs  # the same text on an article page is kept


def test_index_page_is_not_an_article() -> None:
    items = "".join(
        f"<li><a href='/story/{i}'>Headline number {i} about the budget</a></li>" for i in range(30)
    )
    page = _html(f"<h2>Latest news</h2><ul>{items}</ul>", og_type="website")
    assert extract(page).reject_reason == "not_article"


def test_short_body_is_too_short() -> None:
    assert extract(_html(f"<p>{PROSE}</p>")).reject_reason == "too_short"
    assert extract(_html(f"<p>{PROSE}</p>"), min_words=10).reject_reason is None


def test_min_words_counts_body_words() -> None:
    blocks = [Block("p", "word " * 50)]
    signals = page_signals(lxml.html.document_fromstring(_html("")))
    assert reject_reason(blocks, signals, min_words=51) == "too_short"
    assert reject_reason(blocks, signals, min_words=50) is None


@pytest.mark.parametrize("nesting", [5_000])
def test_hostile_jsonld_is_ignored(nesting: int) -> None:
    deep = "[" * nesting + "]" * nesting
    page = _html(ARTICLE).replace(
        "</head>", f'<script type="application/ld+json">{deep}</script></head>'
    )
    assert extract(page).reject_reason is None
