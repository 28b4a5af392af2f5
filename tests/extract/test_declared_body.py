"""The JSON-LD articleBody fallback and the author-bio rule (extraction recall/precision)."""

from __future__ import annotations

import json

from waikan.extract import extract
from waikan.extract.body import Block, declared_blocks, prefer_declared
from waikan.extract.boilerplate import clean_blocks

_STORY = [
    f"Paragraph {i} of the story tells how the city council voted on the new transit plan "
    f"after months of debate, with residents split over cost, routes and timing number {i}."
    for i in range(1, 9)
]


def _page(article_body: str, visible: str) -> str:
    ld = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": "Council approves transit plan",
        "articleBody": article_body,
    }
    return (
        "<html><head><title>Council approves transit plan</title>"
        f'<script type="application/ld+json">{json.dumps(ld)}</script></head>'
        f"<body><main>{visible}</main></body></html>"
    )


def _teasers() -> str:
    items = "".join(
        f'<a href="/news/{i}"><span>Tennis Lessons</span><h2>Older story number {i} '
        f"about something else entirely</h2><small>By Staff Dec {i}, 2023</small></a>"
        for i in range(10)
    )
    return f'<div class="carousel">{items}</div>'


def test_script_rendered_story_comes_from_jsonld() -> None:
    doc = extract(_page("\n\n".join(_STORY), _teasers()))
    assert list(doc.paragraphs) == _STORY
    assert not any("Older story" in p for p in doc.paragraphs)


def test_visible_story_is_kept_when_jsonld_is_not_much_longer() -> None:
    visible = "".join(f"<p>{p} Visible copy.</p>" for p in _STORY)
    doc = extract(_page("\n\n".join(_STORY), f"<article>{visible}</article>"))
    assert all(p.endswith("Visible copy.") for p in doc.paragraphs)
    assert len(doc.paragraphs) == len(_STORY)


def test_declared_markup_entities_and_shortcodes_are_cleaned() -> None:
    escaped = (
        "&amp;lt;!-- wp:paragraph --&amp;gt;&amp;lt;p&amp;gt;It&amp;#039;s here.&amp;lt;/p&amp;gt;"
        '\n[ami-related id="3" title="Other story"]\n<p>Second <b>one</b>.</p><p>Third.</p>'
    )
    assert [b.text for b in declared_blocks(escaped)] == ["It's here.", "Second one .", "Third."]
    assert declared_blocks(None) == []


def test_prefer_declared_needs_a_much_longer_body() -> None:
    long = [Block("p", "x" * 600)]
    assert prefer_declared([Block("p", "y" * 300)], long)
    assert not prefer_declared([Block("p", "y" * 500)], long)
    assert not prefer_declared([], [Block("p", "short")])  # too short to trust


def test_author_bio_at_the_foot_goes() -> None:
    body = [Block("p", "The council voted on Tuesday to approve the plan.")] * 3 + [
        Block("p", "Rose Minutaglio is a senior editor at ELLE covering women's issues."),
        Block("p", "Rose has been writing about culture for a decade."),
    ]
    out = clean_blocks(body, authors=["Rose Minutaglio"])
    assert [b.text for b in out] == [body[0].text] * 3


def test_author_name_in_the_story_is_kept() -> None:
    body = [
        Block("p", "Rose Minutaglio is a senior editor, she said, and the plan is sound."),
        *[Block("p", "The council voted on Tuesday to approve the plan.")] * 4,
    ]
    assert len(clean_blocks(body, authors=["Rose Minutaglio"])) == 5  # not at the foot
    tail = [*body[1:], Block("p", "The vote was 7 to 2.")]
    assert clean_blocks(tail, authors=["The Associated Press"]) == tail  # not a person's name
