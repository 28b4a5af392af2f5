"""Story clustering: reports of one event join, same-topic reports of other events stay apart."""

from __future__ import annotations

import pytest
from tests.dedupe.test_near import add, decide

from waikan.dedupe import stories
from waikan.dedupe.stories import FIGURE_PENALTY, story_similarity, story_terms
from waikan.store import Store

# One release (A, and C rewritten by another outlet) and another release of the same office
# on the same topic (B): the same agency and minister, different figures.
INFLATION = (
    "Norway inflation rises to 4.8%",
    [
        "Statistics Norway said on Thursday that consumer prices in Norway rose 4.8% in the "
        "year to October, up from 3.3% in September.",
        "Finance Minister Trygve Slagsvold Vedum said the government would keep its budget "
        "tight in 2024.",
    ],
)
REWRITE = (
    "Norwegian inflation climbs",
    [
        "OSLO — Norwegian inflation climbed to 4.8% in October from 3.3% a month earlier, "
        "figures from Statistics Norway showed on Thursday.",
        "Finance Minister Trygve Slagsvold Vedum promised a tight budget.",
    ],
)
GROWTH = (
    "Norway economy grows in third quarter",
    [
        "The economy of Norway grew 0.5% in the third quarter, Statistics Norway said on "
        "Friday, helped by oil and gas exports to Germany and Britain while household "
        "spending stalled.",
        "Minister Vedum welcomed the growth and said it would slow in 2024 as interest "
        "payments bite.",
    ],
)


def test_a_number_after_a_name_is_part_of_the_name_not_a_figure() -> None:
    terms = story_terms("Sony sells PlayStation 5 consoles", ["Sales rose by 7 percent."])
    assert "n:5" in terms and "d:5" not in terms
    assert "d:7" in terms


def test_a_sentence_start_is_a_name_only_when_a_name_follows() -> None:
    terms = story_terms(None, ["Clemson University sued the league.", "Prices rose again."])
    assert {"n:clemson", "n:university"} <= set(terms)
    assert "n:prices" not in terms and "w:prices" in terms


def test_disagreeing_figures_discount_the_overlap() -> None:
    base = ["n:statistics", "n:norway", "n:vedum", "w:inflat", "w:budget"]
    agree = story_similarity([*base, "d:4.8"], [*base, "d:4.8", "d:3.3"])
    differ = story_similarity([*base, "d:4.8"], [*base, "d:0.5"])
    undiscounted = (2 * 11) / (2 * 13)  # 3 names of 3 and 2 words of 1 shared; a figure of 2 not
    assert differ == pytest.approx(FIGURE_PENALTY * undiscounted)
    assert agree > differ
    # a shared year is no agreement on the event's figures; one side without figures: no discount
    assert story_similarity([*base, "d:2024", "d:4.8"], [*base, "d:2024", "d:0.5"]) < (
        story_similarity([*base, "d:2024"], [*base, "d:2024", "d:0.5"])
    )
    assert story_similarity(base, [*base, "d:0.5"]) == pytest.approx(22 / 24)


def _cluster(store: Store) -> tuple[int, int, int]:
    ids = []
    for n, (title, paras) in enumerate((INFLATION, REWRITE, GROWTH)):
        ids.append(add(store, f"https://outlet{n}.example/{n}", paras, title=title, source=f"o{n}"))
        decide(store, ids[-1])
    stories_of = [stories.story_of(store, i) for i in ids]
    assert all(s is not None for s in stories_of)
    a, c, b = (s.id for s in stories_of if s is not None)
    return a, c, b


def test_same_office_other_release_stays_apart(store: Store) -> None:
    inflation, rewrite, growth = _cluster(store)
    assert rewrite == inflation  # the rewrite, quoting the same figures, joins
    assert growth != inflation  # the growth release shares the names, not the figures


def test_without_the_figure_rule_the_other_release_would_join(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rule is what keeps them apart: the names and topic words alone pass the threshold."""
    monkeypatch.setattr(stories, "FIGURE_PENALTY", 1.0)
    inflation, rewrite, growth = _cluster(store)
    assert rewrite == inflation == growth
