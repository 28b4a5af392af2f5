"""What the desk's pages read: each query walks an index and stops at one page.

The queue pages by id (keyset, never OFFSET), so its last page costs what its
first does; the dashboard reads only the last days through time indexes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import String, and_, exists, func, select

from waikan.config import Config
from waikan.errors import WaikanError
from waikan.store import Store, schema

REVIEW_STATUSES = ("summarized", "needs_review")
STATUSES = (
    "review",
    "summarized",
    "needs_review",
    "approved",
    "published",
    "rejected",
    "extracted",
    "failed",
    "",
)


@dataclass(frozen=True)
class QueueFilter:
    status: str = "review"
    source: str = ""
    destination: str = ""
    day: str = ""

    def params(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}


@dataclass
class QueuePage:
    rows: list[dict[str, Any]] = field(default_factory=list)
    newer: int | None = None  # id to page towards newer rows (after=)
    older: int | None = None  # id to page towards older rows (before=)


def _day_range(day: str) -> tuple[str, str]:
    d = date.fromisoformat(day)
    return d.isoformat(), (d + timedelta(days=1)).isoformat()


def queue(
    store: Store,
    f: QueueFilter,
    *,
    before: int | None = None,
    after: int | None = None,
    last: bool = False,
    size: int = 50,
) -> QueuePage:
    """One page of articles, newest first; ``before``/``after``/``last`` move by keyset."""
    a = schema.articles
    q = select(a.c.id, a.c.status, a.c.reason, a.c.title, a.c.source_name, a.c.published, a.c.url)
    conds: list[Any] = []
    if f.source:
        conds.append(a.c.source_name == f.source)
    if f.day:
        lo, hi = _day_range(f.day)
        conds.append(and_(a.c.published >= lo, a.c.published < hi))
    if f.destination:
        o = schema.outbox
        conds.append(exists().where(o.c.article_id == a.c.id, o.c.destination == f.destination))
    if before is not None:
        conds.append(a.c.id < before)
    ascending = after is not None or last
    if after is not None:
        conds.append(a.c.id > after)
    order = a.c.id.asc() if ascending else a.c.id.desc()
    # One query per status, merged: "status IN (...) ORDER BY id" would sort every match.
    statuses = list(REVIEW_STATUSES) if f.status == "review" else [f.status] if f.status else [""]
    rows: list[dict[str, Any]] = []
    with store.engine.connect() as c:
        for status in statuses:
            extra = [a.c.status == status] if status else []
            part = q.where(*conds, *extra).order_by(order).limit(size + 1)
            rows.extend(dict(r._mapping) for r in c.execute(part))
    rows.sort(key=lambda r: r["id"], reverse=not ascending)
    rows = rows[: size + 1]
    more = len(rows) > size
    rows = rows[:size]
    if ascending:
        rows.reverse()
    page = QueuePage(rows=rows)
    if rows:
        first_id, last_id = rows[0]["id"], rows[-1]["id"]
        if last:
            page.newer = first_id if more else None
        elif after is not None:
            page.newer = first_id if more else None
            page.older = last_id
        else:
            page.older = last_id if more else None
            page.newer = first_id if before is not None else None
    return page


def sources_names(store: Store) -> list[str]:
    s = schema.sources
    with store.engine.connect() as c:
        return [r[0] for r in c.execute(select(s.c.name).where(s.c.name.is_not(None)))]


def destinations(config: Config) -> list[str]:
    """The configured destination ids (the queue's filter choices), without a table scan."""
    from waikan.publish.config import read_publish_table

    try:
        return sorted(read_publish_table(config))
    except WaikanError:
        return []


def audit_of(store: Store, article_id: int | None, limit: int = 500) -> list[dict[str, Any]]:
    t = schema.audit_log
    q = select(t).order_by(t.c.id.desc()).limit(limit)
    if article_id is not None:
        q = q.where(t.c.article_id == article_id)
    with store.engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(q)]


# -- dashboard -------------------------------------------------------------------------


def _days(n: int, today: date) -> list[str]:
    return [(today - timedelta(days=n - 1 - i)).isoformat() for i in range(n)]


def _day_of(value: Any) -> str:
    return str(value)[:10]


def dashboard(store: Store, days: int = 14, today: date | None = None) -> dict[str, Any]:
    """Per-day series for the last ``days`` days, read through the time indexes."""
    today = today or datetime.now(UTC).date()
    labels = _days(days, today)
    since = datetime.combine(date.fromisoformat(labels[0]), datetime.min.time(), tzinfo=UTC)
    a, s, p, f, sp = (
        schema.articles,
        schema.summaries,
        schema.posts,
        schema.summary_findings,
        schema.llm_spend,
    )
    with store.engine.connect() as c:
        per_source: dict[str, dict[str, int]] = {}
        day_expr = func.substr(func.cast(a.c.created_at, String), 1, 10)
        if store.engine.dialect.name == "postgresql":
            day_expr = func.to_char(a.c.created_at, "YYYY-MM-DD")
        q = (
            select(day_expr, a.c.source_name, func.count())
            .where(a.c.created_at >= since)
            .group_by(day_expr, a.c.source_name)
        )
        for day, source, n in c.execute(q):
            per_source.setdefault(source or "?", {})[_day_of(day)] = int(n)
        spend: dict[str, dict[str, float]] = {}
        q2 = select(sp.c.day, sp.c.calls, sp.c.tokens_in, sp.c.tokens_out, sp.c.cost).where(
            sp.c.day >= labels[0]
        )
        for day, calls, t_in, t_out, cost in c.execute(q2):
            row = spend.setdefault(day, {"calls": 0, "tokens": 0, "cost": 0.0})
            row["calls"] += calls
            row["tokens"] += t_in + t_out
            row["cost"] += cost
        # The first summary of the window, through the time index (min(id) would walk ids).
        first_summary = c.scalar(
            select(s.c.id).where(s.c.created_at >= since).order_by(s.c.created_at).limit(1)
        )
        kinds: dict[str, int] = {}
        if first_summary is not None:
            q3 = (
                select(f.c.kind, func.count())
                .where(f.c.summary_id >= first_summary)
                .group_by(f.c.kind)
            )
            kinds = {k: int(n) for k, n in c.execute(q3)}
        q4 = (
            select(p.c.created_at, a.c.published)
            .join(a, a.c.id == p.c.article_id)
            .where(p.c.created_at >= since)
            .limit(5000)
        )
        latency: list[float] = []
        for created, published in c.execute(q4):
            minutes = _minutes_between(published, created)
            if minutes is not None:
                latency.append(minutes)
    return {
        "labels": labels,
        "per_source": per_source,
        "spend": spend,
        "kinds": kinds,
        "latency": latency,
        "today": labels[-1],
    }


def _minutes_between(published: str | None, created: Any) -> float | None:
    if not published or len(published) < 16:
        return None
    try:
        start = datetime.fromisoformat(published.replace("Z", "+00:00"))
    except ValueError:
        return None
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    end = created if isinstance(created, datetime) else datetime.fromisoformat(str(created))
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    minutes = (end - start).total_seconds() / 60
    return minutes if minutes >= 0 else None
