"""Task outcomes in the store: per-minute counts and the latest failures.

Each task run adds one to its (minute, task, outcome) row — one small upsert,
whatever the volume — and a failure also keeps its error line. ``waikan status``
reads both; a distributed run takes a failure of one of its tasks as final.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from waikan.store import Store, schema, storable

__all__ = [
    "KEEP",
    "OUTCOMES",
    "TaskFailure",
    "failures_since",
    "latest_failures",
    "record_outcome",
    "task_counts",
]

log = logging.getLogger(__name__)

OUTCOMES = ("ok", "noop", "failed", "retried")
KEEP = 1000  # failures kept (newest); older ones, and any older than STATS_DAYS, pruned
STATS_DAYS = 7
PRUNE_EVERY = 3600.0  # seconds between one process's prunes of task_stats

_pruned: dict[int, float] = {}  # id(engine) → monotonic time of this process's last prune


@dataclass(frozen=True)
class TaskFailure:
    at: datetime
    task: str
    key: int | None
    error: str


def _minute(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


def record_outcome(
    store: Store, task: str, outcome: str, key: int | None = None, error: str | None = None
) -> None:
    """Count one run of ``task``; with ``error`` (a failure) keep its line too, one commit.

    Raises what the store raises: the caller (app._wrap) logs it and goes on.
    """
    now = datetime.now(UTC)
    engine = store.engine
    values = {"minute": _minute(now), "task": task, "outcome": outcome, "count": 1}
    t = schema.task_stats
    keys, more = [t.c.minute, t.c.task, t.c.outcome], {"count": t.c.count + 1}
    upsert = (
        pg_insert(t).values(**values).on_conflict_do_update(index_elements=keys, set_=more)
        if engine.dialect.name == "postgresql"
        else sqlite_insert(t).values(**values).on_conflict_do_update(index_elements=keys, set_=more)
    )
    with engine.begin() as c:
        c.execute(upsert)
        if error is not None:
            f = schema.task_failures
            # PostgreSQL's clock: a run compares it with its own start, read there too.
            at = func.now() if engine.dialect.name == "postgresql" else now
            line = storable(error.splitlines()[0] if error else outcome)[:2000]
            c.execute(insert(f).values(at=at, task=task, key=key, error=line))
            _prune_failures(c, now)
        last = _pruned.get(id(engine))
        if last is None or time.monotonic() - last >= PRUNE_EVERY:
            _pruned[id(engine)] = time.monotonic()
            c.execute(delete(t).where(t.c.minute < now - timedelta(days=STATS_DAYS)))


def _prune_failures(c: Connection, now: datetime) -> None:
    """Keep the newest :data:`KEEP` failures of the last :data:`STATS_DAYS` days: two
    deletes on the primary key, each of a row or two (one per failure recorded)."""
    f = schema.task_failures
    cut = c.scalar(select(f.c.id).order_by(f.c.id.desc()).offset(KEEP).limit(1))
    if cut is not None:
        c.execute(delete(f).where(f.c.id <= cut))
    c.execute(delete(f).where(f.c.at < now - timedelta(days=STATS_DAYS)))


def task_counts(store: Store, since: datetime) -> dict[str, dict[str, int]]:
    """task → outcome → runs, of the minutes from ``since`` on."""
    t = schema.task_stats
    q = (
        select(t.c.task, t.c.outcome, func.sum(t.c.count))
        .where(t.c.minute >= _minute(since))
        .group_by(t.c.task, t.c.outcome)
    )
    out: dict[str, dict[str, int]] = {}
    with store.engine.connect() as c:
        for task, outcome, n in c.execute(q):
            out.setdefault(task, {})[outcome] = int(n)
    return out


def latest_failures(store: Store, limit: int = 5) -> tuple[int, list[TaskFailure]]:
    """How many failures are kept, and the latest ``limit``, newest first."""
    f = schema.task_failures
    with store.engine.connect() as c:
        total = int(c.scalar(select(func.count()).select_from(f)) or 0)
        rows = c.execute(select(f).order_by(f.c.id.desc()).limit(limit)).all()
    return total, [TaskFailure(r.at, r.task, r.key, r.error) for r in rows]


def failures_since(c: Connection, task: str, keys: list[int], since: datetime) -> dict[int, str]:
    """The error lines of ``task``'s failures for ``keys`` recorded at or after ``since``
    (the latest of each)."""
    if not keys:
        return {}
    f = schema.task_failures
    q = (
        select(f.c.key, f.c.error)
        .where(f.c.task == task, f.c.key.in_(keys), f.c.at >= since)
        .order_by(f.c.id)
    )
    return {int(k): e for k, e in c.execute(q)}
