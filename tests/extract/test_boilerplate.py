"""waikan's boilerplate rules: wire datelines, trailers, bylines and link blocks."""

from __future__ import annotations

import pytest

from waikan.extract.body import Block
from waikan.extract.boilerplate import clean_blocks, is_furniture, strip_dateline


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("WASHINGTON, Oct 27 (Reuters) - U.S. Secretary", "U.S. Secretary"),
        ("NAIROBI, Kenya (AP) — Farmers in Kenya", "Farmers in Kenya"),
        ("LONDON (Reuters) -Britain's economy", "Britain's economy"),
        ("ATLANTA -- Federal drug officials", "Federal drug officials"),
        ("NEW YORK, Dec. 4 — Stocks fell", "Stocks fell"),
        ("(Reuters) - Oil prices rose", "Oil prices rose"),
        ("BEIJING/TAIPEI (Reuters) - China said", "China said"),
    ],
)
def test_datelines_are_removed(text: str, want: str) -> None:
    assert strip_dateline(text) == want


@pytest.mark.parametrize(
    "text",
    [
        "U.S. officials said on Friday - after a long meeting - that talks would continue.",
        "NASA said the launch was delayed.",
        "The WHO - the World Health Organization - warned of a new wave.",
        "In 2023 (Reuters) reported record profits - analysts agreed.",
    ],
)
def test_ordinary_sentences_keep_their_start(text: str) -> None:
    assert strip_dateline(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "Reporting by Humeyra Pamuk and Simon Lewis; Editing by Don Durfee and Jonathan Oatis",
        "(Reporting by Will Dunham; Editing by Tom Brown)",
        "Our Standards: The Thomson Reuters Trust Principles.",
        "Sign up here.",
        "Purchase Licensing Rights",
        "Item 1 of 2 Antony Blinken meets Wang Yi. REUTERS/Elizabeth Frantz",
        "Associated Press writer Jane Doe in Nairobi contributed to this report.",
        "Advertisement",
        "ADVERTISEMENT",
        "Read more: How to make cosmetic treatments safer",
        "Get the day’s top headlines delivered to your inbox by subscribing to our newsletter.",
        "Contact Kayla Jimenez at kjimenez@usatoday.com. Follow her on X at @kaylajjimenez.",
        "Install the Sky News app for free",
        "Sunday 17 December 2023 17:23, UK",
        "By Humeyra Pamuk and Simon Lewis",
        "___",
        "Copyright 2023 The Associated Press. All rights reserved.",
    ],
)
def test_furniture(text: str) -> None:
    assert is_furniture(text)


@pytest.mark.parametrize(
    "text",
    [
        "Wang arrived at the State Department late on Thursday and held a meeting with Blinken.",
        "By the end of the week, the two sides had agreed to meet again in November.",
        "Read the statement carefully, he said, because every word was negotiated.",
        "The company said it would advertise the new product widely in the spring.",
        "Updated at 1:23 p.m.",
    ],
)
def test_story_sentences_are_not_furniture(text: str) -> None:
    assert not is_furniture(text)


def _p(text: str, kind: str = "p") -> Block:
    return Block(kind, text)


def test_clean_blocks_drops_headline_related_block_and_trailers() -> None:
    blocks = [
        _p("Blinken and Wang meet", "h"),
        _p("WASHINGTON, Oct 27 (Reuters) - Blinken and Wang met on Friday for talks."),
        _p("They discussed trade, Taiwan and the Middle East at length."),
        _p("Related stories", "h"),
        _p("China's exports fall again", "li"),
        _p("Biden to meet Xi in San Francisco", "li"),
        _p("Reporting by Humeyra Pamuk; Editing by Don Durfee"),
        _p("Our Standards: The Thomson Reuters Trust Principles."),
    ]
    out = clean_blocks(blocks, title="Blinken and Wang meet")
    assert [b.text for b in out] == [
        "Blinken and Wang met on Friday for talks.",
        "They discussed trade, Taiwan and the Middle East at length.",
    ]


def test_standfirst_repeated_by_the_first_sentence_goes() -> None:
    blocks = [
        _p("Federal drug officials are warning Georgia to shelve its plans"),
        _p("ATLANTA -- Federal drug officials are warning Georgia to shelve its plans to sell."),
        _p("More text follows here."),
    ]
    out = clean_blocks(blocks)
    assert out[0].text == "Federal drug officials are warning Georgia to shelve its plans to sell."


def test_data_table_rows_are_dropped_when_there_is_prose() -> None:
    prose = [_p("word " * 40) for _ in range(5)]
    rows = [_p("CPU | Apple M3 Max", "row"), _p("Memory | 48GB", "row")]
    assert all(b.kind != "row" for b in clean_blocks(prose + rows))
    assert [b.kind for b in clean_blocks(rows)] == ["row", "row"]
