"""Story clusters: different outlets' reports of one event, written differently.

Rewrites share few word shingles, so near-duplicate detection misses them;
what they do share are the event's particulars: names of people, places and
organisations, numbers, and the salient words of the topic. A report is
reduced to such a set of *terms*; MinHash/LSH over the terms finds
candidates, and the exact weighted overlap of the stored term sets, within
a time window, decides. Two stories on the same topic about different
events share the topic words but not the names and numbers, which weigh
more. They may still share the topic's standing names (a regulator, a law,
a minister); what tells them apart is then the figures, as an editor checks:
two reports of one event quote the same amount, count or rate, so when both
carry figures and none agree the overlap is discounted (``FIGURE_PENALTY``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from waikan.store import Store, schema

__all__ = [
    "Outlet",
    "StoryRecord",
    "list_stories",
    "parse_time",
    "story_of",
    "story_similarity",
    "story_terms",
]

NAME_WEIGHT = 3.0
NUMBER_WEIGHT = 2.0
WORD_WEIGHT = 1.0
# Similarity kept when both reports carry figures (years aside) and share none of them.
FIGURE_PENALTY = 0.8
_STEM = 6  # a crude stemmer: words agree on their first six letters (negotiate/negotiations)

_SENTENCE = re.compile(r"(?<=[.!?\"”])\s+|\n+")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’\-]*|\d[\d,.]*\d|\d")
_YEAR = re.compile(r"(?:19|20)\d\d")  # a date's year: every report of a year shares it

# Capitalised words that name nothing in particular.
_NOT_NAMES = set(
    """
    a an the this that these those he she it they we i you his her its their our my your
    mr mrs ms dr sir prof gov sen rep president minister officials official chief
    monday tuesday wednesday thursday friday saturday sunday today yesterday tomorrow
    january february march april may june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec but and or if when while after before
    in on at of for to from by with as about over under into than then there here what who
    why how where which also however meanwhile still now some many most more all both
    reporting editing writing additional contributed read said says according new
    """.split()
)

_STOP = set(
    """
    about above across after again against also although among another anyone anything
    around because been before being below between both cannot could does doing down
    during each either enough even ever every from further have having here hers herself
    himself however into itself just least less like made make makes many might more most
    much must myself near neither never none often once only other others otherwise ought
    ours ourselves over own perhaps rather really said same says should since some such
    than that their theirs them themselves then there therefore these they thing things
    this those though through thus today told together too toward towards under until
    upon very want wants well were what whatever when where whether which while whom
    whose will with within without would year years yesterday your yours yourself
    week weeks month months time times people percent including included according
    added adding saying statement reporters told tells monday tuesday wednesday thursday
    friday saturday sunday first second third last next former later early late many
    several already still where back just also going went come came take took taken give
    given since across among
    """.split()
)


def story_terms(title: str | None, paragraphs: Sequence[str], limit: int = 400) -> list[str]:
    """The report's event terms: ``n:`` names, ``d:`` numbers, ``w:`` word stems.

    A capitalised word is a name unless it starts the sentence, where it is one
    only when a name follows ("Clemson University sued"). A number right after
    a name is part of it ("PlayStation 5", "GTA 6"), not a figure of the event.
    Only the first ``limit`` words are read: the lede and the first paragraphs
    carry the event; a long feature's tail only adds noise (and cost), so the
    text after them is never even split.
    """
    out: set[str] = set()
    add = out.add
    left = limit
    for part in (title or "", *paragraphs):
        for sentence in _SENTENCE.split(part):
            words = _WORD.findall(sentence)
            if len(words) > left:
                words = words[:left]
            left -= len(words)
            after_name = False
            for i, word in enumerate(words):
                if word[0].isdigit():
                    number = word.replace(",", "").rstrip(".")
                    if after_name:
                        add("n:" + number)
                    elif number not in _SMALL:
                        add("d:" + number)
                    continue
                clean = word.strip("'’-").removesuffix("'s").removesuffix("’s")
                low = clean.lower()
                after_name = False
                if not low:
                    continue
                if _is_name(clean, low) and (i or (len(words) > 1 and _starts_name(words[1]))):
                    add("n:" + low)
                    after_name = True
                elif len(low) >= 4 and low not in _STOP:
                    add("w:" + low[:_STEM])
            if left <= 0:
                return sorted(out)
    return sorted(out)


def _is_name(clean: str, low: str) -> bool:
    return clean[0].isupper() and len(low) > 1 and low not in _NOT_NAMES


def _starts_name(word: str) -> bool:
    clean = word.strip("'’-")
    return bool(clean) and _is_name(clean, clean.lower().removesuffix("'s").removesuffix("’s"))


_WEIGHTS = {"n": NAME_WEIGHT, "d": NUMBER_WEIGHT}
_SMALL = {"1", "2", "3"}


# weight per bare term, their total, the report's figures (numbers other than years)
Prepared = tuple[dict[str, float], float, frozenset[str]]


def prepare(terms: Iterable[str]) -> Prepared:
    """Weight per bare term (kinds merged), total, figures: compute once, compare many times."""
    weights: dict[str, float] = {}
    get = weights.get
    total = 0.0
    figures = []
    for t in terms:
        w = _WEIGHTS.get(t[0], WORD_WEIGHT)
        bare = t[2:]
        weights[bare] = get(bare, 0.0) + w
        total += w
        if t[0] == "d" and not _YEAR.fullmatch(bare):
            figures.append(bare)
    return weights, total, frozenset(figures)


def prepared_similarity(a: Prepared, b: Prepared) -> float:
    (wa, ta, fa), (wb, tb, fb) = a, b
    if not ta or not tb:
        return 0.0
    shared = wa.keys() & wb.keys()
    sim = (sum(wa[k] for k in shared) + sum(wb[k] for k in shared)) / (ta + tb)
    if fa and fb and fa.isdisjoint(fb):
        sim *= FIGURE_PENALTY
    return sim


def story_similarity(a: Iterable[str], b: Iterable[str]) -> float:
    """Weighted Dice overlap of two term sets (0..1), discounted when their figures disagree.

    Names and numbers weigh more than topic words. A term counts as shared when
    it is in both sets under any kind (a name at a sentence start reads as a word).
    Two reports that both quote figures (numbers other than years) and share none
    report different facts, however many of the topic's names they share: the
    overlap is multiplied by ``FIGURE_PENALTY``.
    """
    return prepared_similarity(prepare(a), prepare(b))


def parse_time(value: str | None) -> datetime | None:
    """A stored ``published`` value as an aware datetime (a bare day is midnight UTC)."""
    if not value:
        return None
    try:
        if len(value) == 10:
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


# -- stories as stored ---------------------------------------------------------------


@dataclass(frozen=True)
class Outlet:
    """One outlet's report in a story: what a post lists and links."""

    article_id: int
    source: str | None
    url: str
    title: str | None
    published: str | None
    relation: str

    def as_dict(self) -> dict[str, object]:
        return {
            "article_id": self.article_id,
            "source": self.source,
            "url": self.url if self.url.startswith(("http://", "https://")) else None,
            "title": self.title,
            "published": self.published,
            "relation": self.relation,
        }


@dataclass(frozen=True)
class StoryRecord:
    id: int
    canonical_id: int
    title: str | None
    published: str | None
    pending_update_id: int | None
    outlets: tuple[Outlet, ...]


def _outlet_name(o: Outlet) -> str:
    return (o.source or urlsplit(o.url).hostname or o.url).casefold()


def _load_stories(store: Store, where: Any, limit: int | None = None) -> list[StoryRecord]:
    s, m, a = schema.stories, schema.story_members, schema.articles
    q = select(s).where(where).order_by(s.c.id.desc())
    if limit is not None:
        q = q.limit(limit)
    with store.engine.connect() as c:
        heads = list(c.execute(q))
        if not heads:
            return []
        rows = list(
            c.execute(
                select(
                    m.c.story_id,
                    m.c.relation,
                    a.c.id,
                    a.c.source_name,
                    a.c.url,
                    a.c.title,
                    a.c.published,
                )
                .join(a, a.c.id == m.c.article_id)
                .where(m.c.story_id.in_([h.id for h in heads]))
                .order_by(a.c.id)
            )
        )
    members: dict[int, list[Outlet]] = {h.id: [] for h in heads}
    for r in rows:
        members[r.story_id].append(
            Outlet(r.id, r.source_name, r.url, r.title, r.published, r.relation)
        )
    out = []
    for h in heads:
        ordered = sorted(
            members[h.id], key=lambda o: (o.article_id != h.canonical_id, o.article_id)
        )
        seen: set[str] = set()
        outlets = []
        for o in ordered:  # one entry per outlet: the canonical, else its first report
            if _outlet_name(o) not in seen:
                seen.add(_outlet_name(o))
                outlets.append(o)
        out.append(
            StoryRecord(
                h.id, h.canonical_id, h.title, h.published, h.pending_update_id, tuple(outlets)
            )
        )
    return out


def story_of(store: Store, article_id: int) -> StoryRecord | None:
    """The story an article belongs to, with its outlets (canonical first)."""
    sid = select(schema.story_members.c.story_id).where(
        schema.story_members.c.article_id == article_id
    )
    found = _load_stories(store, schema.stories.c.id.in_(sid.scalar_subquery()))
    return found[0] if found else None


def list_stories(store: Store, limit: int | None = None, min_outlets: int = 1) -> list[StoryRecord]:
    """Stories, newest first, with at least ``min_outlets`` outlets."""
    found = _load_stories(store, schema.stories.c.id.is_not(None), limit)
    return [s for s in found if len(s.outlets) >= min_outlets]
