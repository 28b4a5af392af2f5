"""The text layout's rules for missing parts (SPEC §1), and the other renderings."""

from __future__ import annotations

import json

import pytest

from waikan.models import Post
from waikan.render import render_post
from waikan.render.post import meta_line

BODY = ("First paragraph has five words.", "Second one has four.")


def make(**kw: object) -> Post:
    base: dict[str, object] = dict(
        id=1,
        channel="频道",
        source="Reuters",
        title="Headline",
        published="2023-10-27T14:03:40Z",
        caption="A caption. REUTERS/Someone",
        paragraphs=BODY,
        summary=("第一段。", "第二段。"),
    )
    base.update(kw)
    return Post(**base)  # type: ignore[arg-type]


def test_full_layout() -> None:
    text = render_post(make())
    assert text == (
        "频道\n\nReuters-Headline\n\n"
        "October 27, 2023 \u00a0 1\u00a0min \u00a0 12\u00a0words\n\n"
        "第一段。 第二段。\n\n"
        "2023-10-27T14:03:40Z\nA caption. REUTERS/Someone\n\n"
        "First paragraph has five words.\n\nSecond one has four."
    )


def test_no_caption_timestamp_then_blank() -> None:
    text = render_post(make(caption=None))
    assert "第二段。\n\n2023-10-27T14:03:40Z\n\nFirst paragraph" in text
    assert "9\u00a0words" in text


def test_no_date_no_timestamp_line() -> None:
    text = render_post(make(published=None))
    assert text.split("\n")[4] == "1\u00a0min \u00a0 12\u00a0words"
    assert "第二段。\n\nA caption. REUTERS/Someone\n\nFirst" in text


def test_neither_date_nor_caption() -> None:
    text = render_post(make(published=None, caption=None))
    assert "第二段。\n\nFirst paragraph" in text
    assert not text.endswith("\n")


def test_no_source_title_is_headline_alone() -> None:
    assert render_post(make(source=None)).split("\n")[2] == "Headline"


def test_day_only_date() -> None:
    text = render_post(make(published="2024-03-05"))
    assert text.split("\n")[4].startswith("March 5, 2024 \u00a0 ")
    assert "\n\n2024-03-05\nA caption." in text


@pytest.mark.parametrize(("words", "minutes"), [(1, 1), (265, 1), (266, 2), (370, 2), (531, 3)])
def test_reading_time(words: int, minutes: int) -> None:
    post = make(paragraphs=(" ".join(["w"] * words),), caption=None)
    assert meta_line(post).split(" \u00a0 ")[1] == f"{minutes}\u00a0min"


def test_reading_rate_is_configurable() -> None:
    post = make(paragraphs=(" ".join(["w"] * 200),), caption=None, reading_wpm=100)
    assert "2\u00a0min" in meta_line(post)


def test_json_has_all_fields() -> None:
    data = json.loads(render_post(make(title_zh="中文标题"), "json"))
    assert data["summary"] == ["第一段。", "第二段。"]
    assert data["word_count"] == 12 and data["reading_minutes"] == 1
    assert data["title_zh"] == "中文标题"
    for key in ("channel", "source", "title", "published", "caption", "paragraphs", "url"):
        assert key in data


def test_markdown_front_matter_and_escaping() -> None:
    text = render_post(make(paragraphs=("<script>alert(1)</script> *bold*",)), "markdown")
    front, _, body = text.removeprefix("---\n").partition("\n---\n")
    assert 'title: "Headline"' in front and 'published: "2023-10-27T14:03:40Z"' in front
    assert "<script>" not in body and "\\<script\\>" in body


def test_html_escapes_source_text() -> None:
    html = render_post(
        make(title='<img src=x onerror="alert(1)">', paragraphs=("<script>x</script>",)),
        "html",
    )
    assert "<script>x</script>" not in html and "&lt;script&gt;" in html
    assert "<img src=x" not in html
    assert "\u00a0min" in html


def test_html_links_only_http_urls() -> None:
    assert 'href="javascript:' not in render_post(make(url="javascript:alert(1)"), "html")
    assert 'href="https://example.com/a"' in render_post(make(url="https://example.com/a"), "html")
