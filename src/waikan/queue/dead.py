"""Dead letters: messages no worker can run, kept in the store instead of retried forever."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, insert, select

from waikan.store import Store, schema, storable

__all__ = ["DeadLetter", "dead_letters", "record_dead_letter"]

log = logging.getLogger(__name__)

KINDS = ("undecodable", "unknown", "invalid", "poison")


@dataclass(frozen=True)
class DeadLetter:
    id: int
    at: datetime
    kind: str
    task: str | None
    body: str | None
    error: str


def record_dead_letter(store: Store, kind: str, task: str | None, body: object, error: str) -> None:
    """Keep a message that cannot run (``kind`` one of :data:`KINDS`) and log one line."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else repr(body)
    text = storable(text)
    first_line = storable(error.splitlines()[0] if error else kind)
    log.error("dead letter (%s) task=%s: %s", kind, task, first_line[:300])
    with store.engine.begin() as c:
        c.execute(
            insert(schema.dead_letters).values(
                at=datetime.now(UTC),
                kind=kind,
                task=task,
                body=text[:2000],
                error=first_line[:2000],
            )
        )


def dead_letters(store: Store, limit: int = 20) -> tuple[int, list[DeadLetter]]:
    """The total count and the latest ``limit`` dead letters, newest first."""
    t = schema.dead_letters
    with store.engine.connect() as c:
        total = int(c.scalar(select(func.count()).select_from(t)) or 0)
        rows = c.execute(select(t).order_by(t.c.id.desc()).limit(limit)).all()
    return total, [DeadLetter(r.id, r.at, r.kind, r.task, r.body, r.error) for r in rows]
