"""User glossary entries in the store: they survive, are shared by workers, and win."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import delete, select

from waikan.store import Store, schema
from waikan.summarize.glossary import Entry

__all__ = ["remove_entry", "save_entries", "user_entries"]


def user_entries(store: Store) -> list[Entry]:
    t = schema.glossary_entries
    with store.engine.connect() as c:
        rows = list(c.execute(select(t).order_by(t.c.en)))
    return [
        Entry(
            en=r.en,
            kind=r.kind,
            zh_hans=r.zh_hans,
            zh_hant_tw=r.zh_hant_tw,
            zh_hant_hk=r.zh_hant_hk,
            variants=tuple(r.variants or ()),
            aliases=tuple(r.aliases or ()),
            origin="user",
        )
        for r in rows
    ]


def save_entries(store: Store, entries: Sequence[Entry]) -> int:
    """Insert or replace entries in one transaction: a bad file leaves nothing behind."""
    t = schema.glossary_entries
    now = datetime.now(UTC)
    with store.engine.begin() as c:
        for e in entries:
            c.execute(delete(t).where(t.c.key == e.key))
            c.execute(
                t.insert().values(
                    key=e.key,
                    en=e.en,
                    kind=e.kind,
                    zh_hans=e.zh_hans,
                    zh_hant_tw=e.zh_hant_tw,
                    zh_hant_hk=e.zh_hant_hk,
                    variants=list(e.variants),
                    aliases=list(e.aliases),
                    updated_at=now,
                )
            )
    return len(entries)


def remove_entry(store: Store, key: str) -> bool:
    t = schema.glossary_entries
    with store.engine.begin() as c:
        return bool(c.execute(delete(t).where(t.c.key == key)).rowcount)
