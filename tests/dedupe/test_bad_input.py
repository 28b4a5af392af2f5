"""Bad bodies through dedupe, each on its own: decided, bounded, never put in the wrong story."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import run_inproc
from tests.dedupe.pages import page, write
from tests.dedupe.test_near import WIRE, ZH, add, decide
from tests.dedupe.test_pipeline import env_for

from waikan.dedupe import features
from waikan.dedupe.stories import story_of
from waikan.store import Store

RU = [
    "Землетрясение магнитудой 6,4 произошло во вторник на юге Перу, погибли не менее 12 человек.",
    "По данным Геологической службы США, эпицентр находился в 60 километрах от Арекипы.",
    "Власти объявили чрезвычайное положение в пострадавших районах на 60 дней.",
]
AR = [
    "ضرب زلزال بقوة 6.4 درجات جنوب بيرو يوم الثلاثاء وأسفر عن مقتل 12 شخصا على الأقل.",
    "وقالت هيئة المسح الجيولوجي الأمريكية إن مركز الزلزال كان على بعد 60 كيلومترا من أريكيبا.",
    "وأعلنت الحكومة حالة الطوارئ في المناطق المتضررة لمدة 60 يوما.",
]


def test_empty_body(store: Store) -> None:
    first = add(store, "https://e.example/empty", [])
    f = features(store.article(first))  # type: ignore[arg-type]
    assert f.shingles == 0 and f.body_sha256 is None  # only the title has terms
    assert decide(store, first) == "canonical"
    # Nothing is known of an empty page: a second one is not a copy of the first, and
    # a real report is not a copy of either.
    assert decide(store, add(store, "https://f.example/empty", [])) == "canonical"
    wire = add(store, "https://andeswire.example/x", WIRE)
    assert decide(store, wire) == "canonical"
    story = story_of(store, wire)
    assert story is not None and [o.article_id for o in story.outlets] == [wire]


def test_one_repeated_word(store: Store) -> None:
    buffalo = add(store, "https://e.example/buffalo", ["buffalo " * 400])
    f = features(store.article(buffalo))  # type: ignore[arg-type]
    assert f.shingles == 1  # one distinct shingle, however long the body
    assert decide(store, buffalo) == "canonical"
    assert decide(store, add(store, "https://e.example/word", ["word " * 400])) == "canonical"
    # The same word in another case and count is the same text to dedupe.
    assert decide(store, add(store, "https://f.example/buffalo", ["Buffalo " * 300])) == "near"
    wire = add(store, "https://andeswire.example/x", [*WIRE, "buffalo " * 50])
    assert decide(store, wire) == "canonical"  # one shared shingle is no match


def test_half_a_million_words(store: Store) -> None:
    rng = np.random.default_rng(7)
    vocab = [f"w{i}" for i in range(20_000)]
    text = " ".join(vocab[i] for i in rng.integers(0, len(vocab), 500_000))
    huge = add(store, "https://e.example/huge", [text])
    record = store.article(huge)
    assert record is not None and record.word_count == 500_000
    f = features(record)
    assert f.shingles > 400_000 and len(f.terms) <= 400  # story terms read the lede only
    assert decide(store, huge) == "canonical"
    # A copy missing its last tenth is still found among half a million shingles.
    trimmed = add(store, "https://f.example/huge", [text[: len(text) * 9 // 10]])
    assert decide(store, trimmed) == "near"
    wire = add(store, "https://andeswire.example/x", WIRE)
    assert decide(store, wire) == "canonical"


@pytest.mark.parametrize(("name", "paragraphs"), [("zh", ZH), ("ru", RU), ("ar", AR)])
def test_non_latin_text(store: Store, name: str, paragraphs: list[str]) -> None:
    first = add(store, f"https://{name}.example/1", paragraphs, source=f"{name} wire")
    f = features(store.article(first))  # type: ignore[arg-type]
    assert f.shingles > 10  # tokenised, not dropped as punctuation
    assert decide(store, first) == "canonical"
    edited = [*paragraphs[:-1], paragraphs[-1] + " 2024"]
    copy = add(store, f"https://{name}.example/2", edited, source=f"{name} copy")
    # A near-duplicate; it may take over as the canonical (nothing summarized yet).
    assert decide(store, copy) in ("near", "canonical")
    story = story_of(store, copy)
    assert story is not None and {o.article_id for o in story.outlets} == {first, copy}
    # The English report of the same quake is no near-duplicate of the translation.
    wire = add(store, f"https://andeswire.example/{name}", WIRE)
    assert decide(store, wire) in ("canonical", "story")
    assert decide(store, add(store, f"https://{name}.example/3", ["。" * 50])) == "canonical"


def test_bad_bodies_through_the_cli(tmp_path: Path) -> None:
    """The same bodies as pages: one-line rejections or plain stories, never a traceback."""
    folder = tmp_path / "pages"
    bodies = {"empty": [], "repeated": ["buffalo " * 400], "zh": ZH, "ru": RU}
    for name, paragraphs in bodies.items():
        write(
            folder,
            f"{name}.html",
            page(
                outlet=name, url=f"https://{name}.example/a", headline=name, paragraphs=paragraphs
            ),
        )
    env = env_for(tmp_path / "ws", WAIKAN_EXTRACT_MIN_WORDS="1")
    added = run_inproc(["add", str(folder)], env)
    assert "Traceback" not in added.err
    assert all(line.startswith("waikan: error: ") for line in added.err.splitlines() if line)
    assert added.code in (0, 3)  # 3: some page rejected by extraction, said in one line each
    extracted = [line for line in added.out.splitlines() if "\textracted\t" in line]
    assert len(extracted) >= 3  # the repeated word and both non-Latin texts at least
    listed = run_inproc(["stories", "--json"], env)
    assert listed.code == 0 and "Traceback" not in listed.err
    stories = [json.loads(line) for line in listed.out.splitlines()]
    # Each page is its own story: no odd body swallowed another.
    assert len(stories) == len(extracted)
    assert all(len(s["outlets"]) == 1 for s in stories)
