"""Deciding in batches: the same outcome as one by one, and all or nothing on failure."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from tests.dedupe.test_near import REPORTS, WIRE, add

from waikan.dedupe import Deduper, Settings, features
from waikan.store import Store, open_store, schema


def articles(store: Store) -> list[int]:
    """Copies, rewrites and unrelated bodies of one event, as a wire would bring them."""
    ids = [add(store, "https://andeswire.example/q", WIRE, source="Andes Wire")]
    ids.append(add(store, "https://b.example/q", WIRE[:-1], source="B"))  # trimmed copy
    ids.append(add(store, "https://c.example/q", WIRE, source="C"))  # same body
    for i, r in enumerate(REPORTS[1:6]):
        ids.append(add(store, f"https://r{i}.example/q", r["paragraphs"], source=r["outlet"]))
    ids.append(add(store, "https://andeswire.example/q?utm_source=x", WIRE[:3]))  # same URL
    ids.append(add(store, "https://u.example/other", ["An unrelated text about tennis."] * 3))
    return ids


def outcome(store: Store) -> list[tuple[int, int, str]]:
    with store.engine.connect() as c:
        rows = c.execute(schema.story_members.select().order_by("article_id"))
        return [(r.article_id, r.story_id, r.relation) for r in rows]


def test_a_batch_decides_as_one_by_one(tmp_path: Path) -> None:
    one, batch = (open_store(f"sqlite:///{tmp_path / n}.db") for n in ("one", "batch"))
    try:
        ids = articles(one)
        assert articles(batch) == ids
        single = Deduper(one, Settings())
        for i in ids:
            record = one.article(i)
            assert record is not None
            single.decide(record)
        records = [batch.article(i) for i in ids]
        made = [(r, features(r)) for r in records if r is not None]
        decisions = Deduper(batch, Settings()).decide_many(made)
        assert all(d is not None for d in decisions)
        assert outcome(batch) == outcome(one)
        relations = {rel for _a, _s, rel in outcome(one)}
        assert {"canonical", "near", "body", "url", "story"} <= relations
        # Deciding again decides nothing: every article is already in a story.
        assert Deduper(batch, Settings()).decide_many(made) == [None] * len(made)
    finally:
        one.close()
        batch.close()


def test_a_failed_batch_leaves_no_trace(store: Store) -> None:
    first, trimmed, same = articles(store)[:3]
    deduper = Deduper(store, Settings())
    deduper.decide(store.article(first))  # type: ignore[arg-type]
    # A real failure half-way through the batch: a stray row the last decision collides with.
    now = datetime.now(UTC)
    with store.engine.begin() as c:
        key = c.execute(
            insert(schema.stories).values(canonical_id=first, created_at=now, updated_at=now)
        ).inserted_primary_key
        assert key is not None
        stray = {"article_id": same, "story_id": key[0], "relation": "x", "created_at": now}
        c.execute(insert(schema.story_members).values(**stray))
    made = [(r, features(r)) for r in (store.article(trimmed), store.article(same)) if r]
    with pytest.raises(IntegrityError):
        deduper.decide_many(made)
    assert [a for a, _s, _r in outcome(store)] == [first, same]  # the trimmed copy rolled back
    assert trimmed not in deduper._entries  # … and forgotten in memory, not half-indexed
    with store.engine.begin() as c:
        c.execute(delete(schema.story_members).where(schema.story_members.c.article_id == same))
        c.execute(delete(schema.stories).where(schema.stories.c.id == key[0]))
    decisions = deduper.decide_many(made)
    assert [d.relation if d else None for d in decisions] == ["near", "body"]
