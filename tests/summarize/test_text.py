from __future__ import annotations

import pytest

from waikan.summarize.base import fullwidth_punctuation, split_paragraphs
from waikan.summarize.openai_compat import parse_answer


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("处理分歧,同时", "处理分歧，同时"),
        ("处理分歧, 同时", "处理分歧，同时"),
        ("真的吗?是的!", "真的吗？是的！"),
        ("包括:贸易;台湾", "包括：贸易；台湾"),
        ("GDP grew 3.5%, said", "GDP grew 3.5%, said"),
        ("时间 14:03 到", "时间 14:03 到"),
        ("1,000人", "1,000人"),
    ],
)
def test_fullwidth_punctuation(raw: str, expected: str) -> None:
    assert fullwidth_punctuation(raw) == expected


def test_split_paragraphs_blank_lines_and_single_lines() -> None:
    assert split_paragraphs("一\n\n二\n \n三\n\n四\n") == ["一", "二", "三", "四"]
    assert split_paragraphs("一\n二\n三") == ["一", "二", "三"]
    assert split_paragraphs("一\x00\n\n\x00\n\n二") == ["一", "二"]  # NUL: never stored


def test_parse_answer_title() -> None:
    title, paras = parse_answer("标题: 布林肯会见王毅\n\n这篇报道描述了,A。\n\n第二段")
    assert title == "布林肯会见王毅"
    assert paras == ["这篇报道描述了，A。", "第二段"]
    assert parse_answer("这篇报道描述了。")[0] is None
