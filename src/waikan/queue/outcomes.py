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
    "failures_of_run",
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


def _db_now(c: Connection) -> datetime:
    now = c.scalar(select(func.now()))
    assert isinstance(now, datetime)
    return now


def record_outcome(
    store: Store,
    task: str,
    outcome: str,
    key: int | None = None,
    error: str | None = None,
    *,
    run: int | None = None,
    retries: int = 0,
) -> None:
    """Count one run of ``task`` (and the ``retries`` it took, as "retried"); with
    ``error`` (a failure) keep its line too, for run ``run``: one commit.

    The minute is the database's (PostgreSQL), as the windows ``waikan status`` reads,
    so a worker whose clock is off still counts in them. Raises what the store raises:
    the caller (app._wrap) logs it and goes on.
    """
    now = datetime.now(UTC)
    engine = store.engine
    pg = engine.dialect.name == "postgresql"
    t = schema.task_stats
    counts = {outcome: 1}
    if retries:
        counts["retried"] = counts.get("retried", 0) + retries
    with engine.begin() as c:
        if pg:
            now = _db_now(c)
        for name, n in counts.items():
            upsert = (pg_insert(t) if pg else sqlite_insert(t)).values(
                minute=_minute(now), task=task, outcome=name, count=n
            )
            c.execute(
                upsert.on_conflict_do_update(
                    index_elements=[t.c.minute, t.c.task, t.c.outcome],
                    set_={"count": t.c.count + n},
                )
            )
        if error is not None:
            f = schema.task_failures
            line = storable(error.splitlines()[0] if error else outcome)[:2000]
            c.execute(insert(f).values(at=now, task=task, key=key, run=run, error=line))
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


def task_counts(store: Store, minutes: int) -> dict[str, dict[str, int]]:
    """task → outcome → runs, of the last ``minutes`` whole minutes and the current one,
    by the database's clock (as they were counted)."""
    t = schema.task_stats
    with store.engine.connect() as c:
        now = _db_now(c) if store.engine.dialect.name == "postgresql" else datetime.now(UTC)
        since = _minute(now - timedelta(minutes=minutes))
        q = (
            select(t.c.task, t.c.outcome, func.sum(t.c.count))
            .where(t.c.minute >= since)
            .group_by(t.c.task, t.c.outcome)
        )
        out: dict[str, dict[str, int]] = {}
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


def failures_of_run(c: Connection, task: str, keys: list[int], run: int) -> dict[int, str]:
    """The error lines of the failures of run ``run``'s ``task`` tasks for ``keys`` (the
    latest of each): a failure of another run's copy is not this run's."""
    if not keys:
        return {}
    f = schema.task_failures
    q = (
        select(f.c.key, f.c.error)
        .where(f.c.run == run, f.c.task == task, f.c.key.in_(keys))
        .order_by(f.c.id)
    )
    return {int(k): e for k, e in c.execute(q)}
