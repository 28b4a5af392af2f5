"""Telegram rendering and splitting, checked with the test server's own entity parser."""

from __future__ import annotations

import pytest
from tests.servers.telegram_server import parse_html

from waikan.models import Post
from waikan.render import render_post
from waikan.render.telegram import (
    Segment,
    photo_caption,
    post_blocks,
    split_messages,
    utf16_len,
)


def make_post(**kw: object) -> Post:
    base: dict[str, object] = dict(
        id=7,
        channel="真相集中营",
        source="Reuters",
        title='AT&T <b>bold</b> "quoted"',
        published="2023-10-27T14:03:40Z",
        caption="Caption & credit",
        paragraphs=("One.", "Two."),
        summary=("这篇报道描述了……", "第二段。"),
        url="https://example.com/a?x=1&y=2",
    )
    base.update(kw)
    return Post(**base)  # type: ignore[arg-type]


def test_utf16_counts_astral_characters_twice() -> None:
    assert utf16_len("a中😀") == 4


def test_special_characters_survive_entity_parsing() -> None:
    post = make_post()
    text, entities = parse_html(render_post(post, "telegram"))
    assert 'AT&T <b>bold</b> "quoted"' in text
    assert text.startswith("真相集中营\n\nReuters-AT&T")
    links = [e for e in entities if e["type"] == "text_link"]
    assert links[-1]["url"] == "https://example.com/a?x=1&y=2"


def test_layout_matches_seed_lines() -> None:
    post = make_post()
    text, _ = parse_html(render_post(post, "telegram"))
    lines = text.split("\n")
    assert lines[:6] == [
        "真相集中营",
        "",
        'Reuters-AT&T <b>bold</b> "quoted"',
        "",
        "October 27, 2023 \u00a0 1\u00a0min \u00a0 5\u00a0words",
        "",
    ]
    assert "2023-10-27T14:03:40Z\nCaption & credit\n\nOne.\n\nTwo." in text


@pytest.mark.parametrize("limit", [50, 200, 4096])
def test_split_keeps_every_character_in_order(limit: int) -> None:
    sentences = " ".join(f"Sentence {i} says <{i}> & more 😀." for i in range(300))
    han = "中文句子没有空格" * 400  # no break opportunity at all: hard cuts
    blocks = [(Segment("Title", "b"),), (Segment(sentences),), (Segment(han, "i"),)]
    messages = split_messages(blocks, limit)
    texts = []
    for html in messages:
        text, entities = parse_html(html)
        assert utf16_len(text) <= limit
        assert all(e["offset"] + e["length"] <= utf16_len(text) for e in entities)
        texts.append(text)
    joined = "".join("".join(texts).split())
    assert joined == "".join(("Title" + sentences + han).split())


def test_split_prefers_sentence_boundaries() -> None:
    para = " ".join(f"This is sentence number {i}." for i in range(400))
    messages = split_messages([(Segment(para),)], 4096)
    assert len(messages) > 1
    for html in messages[:-1]:
        assert html.endswith(".")


def test_photo_caption_within_limit() -> None:
    post = make_post(title="Long " * 400)
    caption = photo_caption(post)
    text, _ = parse_html(caption)
    assert utf16_len(text) <= 1024 and text.endswith("words")


def test_blocks_without_date_or_caption() -> None:
    post = make_post(published=None, caption=None, url=None)
    text = "\n\n".join("".join(s.text for s in b) for b in post_blocks(post))
    assert "\n\nOne.\n\nTwo." in text and "Z\n" not in text
