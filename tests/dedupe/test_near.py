"""MinHash/LSH and the dedupe decision on a real SQLite store, including bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.conftest import DATA

from waikan.dedupe import Deduper, Settings
from waikan.dedupe.exact import url_key
from waikan.dedupe.near import (
    NUM_PERM,
    LSHIndex,
    containment,
    jaccard,
    minhash,
    shingle_hashes,
    tokens,
)
from waikan.models import Extracted, Status
from waikan.store import Store

REPORTS = json.loads((DATA / "dedupe" / "quake-reports.json").read_text())["reports"]
WIRE = REPORTS[0]["paragraphs"]
ZH = [
    "秘鲁南部阿雷基帕地区周二凌晨发生六点四级地震，造成至少十二人死亡，约一百四十人受伤。",
    "美国地质调查局说，震中位于阿雷基帕市西北约六十公里处，震源深度三十五公里。",
    "秘鲁民防部门说，两千三百多所房屋受损，山体滑坡阻断了通往科尔卡峡谷的道路。",
    "总统博鲁阿尔特宣布受灾地区进入为期六十天的紧急状态，并表示将前往灾区视察。",
]


def sig(paragraphs: list[str]) -> tuple[np.ndarray, int]:
    h = shingle_hashes(tokens("\n".join(paragraphs)))
    return minhash(h), len(h)


def test_signatures_are_stable_and_estimate_overlap() -> None:
    a, na = sig(WIRE)
    again, _ = sig(list(WIRE))
    assert a.dtype == np.uint32 and len(a) == NUM_PERM
    assert np.array_equal(a, again)
    trimmed, nt = sig(WIRE[:3])
    j = jaccard(a, trimmed)
    assert 0.3 < j < 0.9
    assert containment(j, na, nt) > 0.85  # the trimmed copy is inside the full one
    other, no = sig(REPORTS[1]["paragraphs"])  # the same event, rewritten: not a near-duplicate
    assert containment(jaccard(a, other), na, no) < 0.3


def test_case_spacing_and_punctuation_do_not_matter() -> None:
    a, _ = sig(WIRE)
    b, _ = sig([p.upper().replace(",", " ,  ") for p in WIRE])
    assert jaccard(a, b) == 1.0


def test_lsh_finds_copies_and_forgets_removed_ones() -> None:
    index = LSHIndex(bands=32, rows=4)
    a, _ = sig(WIRE)
    index.insert(1, a)
    index.insert(2, sig(REPORTS[5]["paragraphs"])[0])
    edited = [*WIRE[:-1], WIRE[-1].replace("thousands", "hundreds")]
    assert index.query(sig(edited)[0])[0] == 1
    assert 1 not in index.query(sig(REPORTS[3]["paragraphs"])[0])
    index.remove(1)
    assert index.query(sig(edited)[0]) == [] and len(index) == 1
    with pytest.raises(ValueError):
        LSHIndex(bands=64, rows=4)


def test_chinese_text_is_shingled_by_character() -> None:
    assert tokens("秘鲁地震 Peru") == ["秘", "鲁", "地", "震", "peru"]
    a, na = sig(ZH)
    b, nb = sig([*ZH[:3], ZH[3].replace("视察", "查看灾情")])
    c, nc = sig([ZH[2], ZH[0]])
    assert containment(jaccard(a, b), na, nb) > 0.8
    assert containment(jaccard(a, c), na, nc) > 0.8
    d, nd = sig(["日本东京周三举行马拉松比赛，数万名跑者参加，天气晴朗，组织者说比赛顺利完成。"])
    assert containment(jaccard(a, d), na, nd) < 0.2


def test_empty_set_matches_nothing() -> None:
    empty = minhash(shingle_hashes([]))
    index = LSHIndex()
    index.insert(1, empty)
    assert len(index) == 0 and index.query(empty) == []
    assert containment(0.0, 0, 10) == 0.0


def test_url_key_folds_spellings_of_one_page() -> None:
    base = url_key("https://www.example.com/news/a-1")
    assert url_key("http://example.com/news/a-1/?utm_source=x#top") == base
    assert url_key("https://example.com/news/a-2") != base
    assert url_key("file:///tmp/a.html") == "file:///tmp/a.html"


# -- the decision, on a real store ---------------------------------------------------


def add(
    store: Store,
    url: str,
    paragraphs: list[str],
    *,
    source: str = "Andes Wire",
    title: str = "Quake",
    published: str | None = "2024-03-05T09:00:00Z",
) -> int:
    ex = Extracted(
        title=title, source=source, published=published, caption=None, paragraphs=tuple(paragraphs)
    )
    return store.add_article(url, ex, raw=url.encode() + repr(paragraphs).encode()[:64]).id


def decide(store: Store, article_id: int, settings: Settings | None = None) -> str:
    deduper = Deduper(store, settings or Settings())
    deduper.catch_up()
    record = store.article(article_id)
    assert record is not None
    decision = deduper.decide(record)
    assert decision is not None
    return decision.relation


def test_exact_body_and_url_duplicates(store: Store) -> None:
    a = add(store, "https://andeswire.example/a", WIRE)
    b = add(store, "https://mirror.example/copy", [p.replace("  ", " ") for p in WIRE])
    c = add(store, "http://www.andeswire.example/a/?utm_source=feed", WIRE[:-1], source="x")
    assert decide(store, a) == "canonical"
    assert decide(store, b) == "body"
    assert decide(store, c) == "url"
    for dup in (b, c):
        rec = store.article(dup)
        assert rec is not None and rec.status == Status.DUPLICATE.value and rec.duplicate_of == a
    assert decide_again_is_noop(store, b)


def decide_again_is_noop(store: Store, article_id: int) -> bool:
    deduper = Deduper(store)
    deduper.catch_up()
    record = store.article(article_id)
    assert record is not None
    return deduper.decide(record) is None


def test_better_version_becomes_canonical_before_any_summary(store: Store) -> None:
    short = add(store, "https://a.example/1", WIRE[:3], published="2024-03-05T08:00:00Z")
    full = add(store, "https://b.example/1", WIRE, published="2024-03-05T09:00:00Z")
    assert decide(store, short) == "canonical"
    assert decide(store, full) == "canonical"  # it took over: longer body, nothing paid yet
    old = store.article(short)
    assert old is not None and old.status == "duplicate" and old.duplicate_of == full


def test_preferred_source_wins(store: Store) -> None:
    a = add(store, "https://a.example/1", WIRE, source="Pacific Herald")
    b = add(store, "https://b.example/1", WIRE[:-1], source="Andes Wire")
    prefs = Settings(preferred_sources=("andes wire",))
    decide(store, a, prefs)
    assert decide(store, b, prefs) == "canonical"
    rec = store.article(a)
    assert rec is not None and rec.duplicate_of == b


@pytest.mark.parametrize(
    ("policy", "relation", "canonical_is_new", "pending"),
    [
        ("never", "near", False, False),
        ("ask", "update", False, True),
        ("always", "canonical", True, False),
    ],
)
def test_update_policy_after_a_summary(
    store: Store, policy: str, relation: str, canonical_is_new: bool, pending: bool
) -> None:
    from waikan.dedupe.stories import story_of
    from waikan.models import Summary

    first = add(store, "https://a.example/quake", WIRE[:4], published="2024-03-05T09:00:00Z")
    settings = Settings(update_policy=policy, update_fraction=0.2)
    decide(store, first, settings)
    store.add_summary(
        first, Summary(paragraphs=("旧摘要",), backend="x", model=None, prompt_version="1")
    )
    newer = [
        *WIRE[:4],
        WIRE[4],
        "Rescuers said on Wednesday the toll had risen to 15 after two more bodies were "
        "found in Caylloma province and a child died in hospital in Arequipa city.",
    ]
    later = add(store, "https://b.example/quake-updated", newer, published="2024-03-06T09:00:00Z")
    assert decide(store, later, settings) == relation
    story = story_of(store, later)
    assert story is not None
    assert (story.canonical_id == later) is canonical_is_new
    assert (story.pending_update_id == later) is pending
    assert len(store.summaries_of(first)) == 1  # the old summary stays in the history
    status = {a.id: a.status for a in store.articles()}
    assert status[later] == ("extracted" if canonical_is_new else "duplicate")
