"""Dedupe: one story, one post (SPEC §2.4).

Exact duplicates (canonical URL, normalized-body hash), near-duplicates
(MinHash/LSH over word shingles) and story clusters (the same event as other
outlets wrote it) all end the same way: the article joins a story, and every
member but the story's canonical one becomes ``duplicate`` with
``duplicate_of`` the canonical article, so only canonical articles are ever
summarized.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence

from waikan.config import Config
from waikan.dedupe.index import Decision, Deduper, Features, Settings, features, pending
from waikan.store import ArticleRecord, Store

__all__ = ["Decision", "Deduper", "Features", "Settings", "dedupe", "deduper_for", "features"]

BATCH = 200  # articles decided per transaction: the lock is held for well under a second

_DEDUPERS: weakref.WeakKeyDictionary[Store, Deduper] = weakref.WeakKeyDictionary()


def deduper_for(store: Store, settings: Settings) -> Deduper:
    """This process's index over ``store``, built from it on first use."""
    found = _DEDUPERS.get(store)
    if found is None or found.settings != settings:
        found = Deduper(store, settings)
        found.catch_up()
        _DEDUPERS[store] = found
    return found


def dedupe(
    store: Store,
    config: Config,
    ids: Sequence[int] | None = None,
    on_decision: Callable[[ArticleRecord, Decision], None] | None = None,
) -> list[Decision]:
    """Decide every extracted article not yet seen by dedupe (or only ``ids``), oldest first."""
    deduper = deduper_for(store, Settings.from_config(config))
    todo = pending(store, ids)
    out = []
    for start in range(0, len(todo), BATCH):
        batch = todo[start : start + BATCH]
        # Signatures are the costly part: made before the batch takes the lock.
        made = [(article, features(article)) for article in batch]
        for article, decision in zip(batch, deduper.decide_many(made), strict=True):
            if decision is None:
                continue
            out.append(decision)
            if on_decision is not None:
                on_decision(article, decision)
    return out
