"""Destinations an admin paused from the desk: a run plans their rows but sends none.

Posts they want stay ``approved`` (settle needs every wanting destination's
delivery), so resuming sends what waited, once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, insert, select

from waikan.publish import outbox
from waikan.store import Store, schema

__all__ = ["pause", "paused", "resume"]


def paused(store: Store) -> set[str]:
    t = schema.destination_pauses
    with store.engine.connect() as c:
        return {r[0] for r in c.execute(select(t.c.destination))}


def pause(store: Store, destination: str, who: str) -> bool:
    """Pause ``destination``; False if it already was. Audited."""
    t = schema.destination_pauses
    with store.engine.begin() as c:
        if c.scalar(select(t.c.destination).where(t.c.destination == destination)):
            return False
        c.execute(
            insert(t).values(destination=destination, paused_by=who, paused_at=datetime.now(UTC))
        )
        outbox.audit(
            c, actor=who, action="pause", article_id=None, after={"destination": destination}
        )
    return True


def resume(store: Store, destination: str, who: str) -> bool:
    t = schema.destination_pauses
    with store.engine.begin() as c:
        gone = c.execute(delete(t).where(t.c.destination == destination)).rowcount
        if gone:
            outbox.audit(
                c, actor=who, action="resume", article_id=None, after={"destination": destination}
            )
    return bool(gone)
