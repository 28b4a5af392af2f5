"""Sources in the store: the source rows, their poll state, the items they listed.

Every poll is recorded in one transaction — new ``discovered`` article rows,
the item URLs seen, the new ETag / Last-Modified and the next poll time —
so a crash at any moment either keeps the whole poll or none of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from waikan.errors import InputError
from waikan.models import Status
from waikan.sources.listing import Item
from waikan.store import Store, schema

__all__ = ["Discovered", "SourceRecord", "SourceRepo"]

# Per-source settings kept in ``sources.settings`` (JSON); defaults come from [sources].
SOURCE_KEYS = (
    "every",
    "backfill",
    "max_age",
    "max_items",
    "priority",
    "tags",
    "include",
    "exclude",
    "include_regex",
    "exclude_regex",
    "body_policy",
    "first_n",
)
BODY_POLICIES = ("full", "first_n", "none")


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # SQLite hands back naive datetimes
    return value


@dataclass(frozen=True)
class SourceRecord:
    id: int
    name: str | None
    url: str
    kind: str
    language: str | None
    settings: dict[str, Any] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    polls: int = 0
    last_polled_at: datetime | None = None
    next_poll_at: datetime | None = None
    last_status: str | None = None
    last_error: str | None = None
    errors: int = 0

    @property
    def label(self) -> str:
        return self.name or self.url

    def setting(self, key: str, default: Any) -> Any:
        value = self.settings.get(key)
        return default if value is None else value

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "url": self.url,
            "kind": self.kind,
            "language": self.language,
            **{k: self.settings.get(k) for k in SOURCE_KEYS if self.settings.get(k) is not None},
            "polls": self.polls,
            "last_polled_at": _iso(self.last_polled_at),
            "next_poll_at": _iso(self.next_poll_at),
            "last_status": self.last_status,
            "last_error": self.last_error,
        }


@dataclass(frozen=True)
class Discovered:
    """An article row waiting to be fetched."""

    id: int
    url: str
    source_id: int | None
    source_name: str | None


def _pk(result: Any) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _iso(value: datetime | None) -> str | None:
    value = _aware(value)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _record(row: Any) -> SourceRecord:
    m = row._mapping
    return SourceRecord(
        id=m["id"],
        name=m["name"],
        url=m["url"],
        kind=m["kind"],
        language=m["language"],
        settings=dict(m["settings"] or {}),
        etag=m["etag"],
        last_modified=m["last_modified"],
        polls=m["polls"] or 0,
        last_polled_at=_aware(m["last_polled_at"]),
        next_poll_at=_aware(m["next_poll_at"]),
        last_status=m["last_status"],
        last_error=m["last_error"],
        errors=m["errors"] or 0,
    )


class SourceRepo:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine

    def _query(self) -> Any:
        s, st = schema.sources, schema.source_state
        return (
            select(
                s,
                st.c.etag,
                st.c.last_modified,
                st.c.polls,
                st.c.last_polled_at,
                st.c.next_poll_at,
                st.c.last_status,
                st.c.last_error,
                st.c.errors,
            )
            .select_from(s.outerjoin(st, st.c.source_id == s.c.id))
            .order_by(s.c.id)
        )

    # -- the source list ------------------------------------------------------------
    def add(
        self,
        url: str,
        *,
        kind: str,
        name: str | None,
        language: str | None,
        settings: dict[str, Any],
        conn: Connection | None = None,
    ) -> SourceRecord:
        with self._maybe_tx(conn) as c:
            if c.scalar(select(schema.sources.c.id).where(schema.sources.c.url == url)):
                raise InputError(f"{url}: already a source")
            new_id = _pk(
                c.execute(
                    insert(schema.sources).values(
                        url=url,
                        kind=kind,
                        name=name,
                        language=language,
                        settings=settings,
                        created_at=_now(),
                    )
                )
            )
            c.execute(insert(schema.source_state).values(source_id=new_id, polls=0, errors=0))
        found = self.get(str(new_id)) if conn is None else None
        return found or SourceRecord(new_id, name, url, kind, language, settings)

    def all(self) -> list[SourceRecord]:
        with self.engine.connect() as c:
            return [_record(r) for r in c.execute(self._query())]

    def get(self, ref: str) -> SourceRecord | None:
        """A source by id or by URL."""
        q = self._query()
        if ref.isdigit():
            q = q.where(schema.sources.c.id == int(ref))
        else:
            q = q.where(schema.sources.c.url == ref)
        with self.engine.connect() as c:
            row = c.execute(q).first()
        return None if row is None else _record(row)

    def due(self, now: datetime | None = None) -> list[SourceRecord]:
        now = now or _now()
        st = schema.source_state
        q = self._query().where(or_(st.c.next_poll_at.is_(None), st.c.next_poll_at <= now))
        with self.engine.connect() as c:
            return [_record(r) for r in c.execute(q)]

    def remove(self, source: SourceRecord) -> None:
        """Forget a source and what it listed; its articles stay, without a source id."""
        with self.engine.begin() as c:
            c.execute(
                update(schema.articles)
                .where(schema.articles.c.source_id == source.id)
                .values(source_id=None)
            )
            c.execute(
                delete(schema.source_items).where(schema.source_items.c.source_id == source.id)
            )
            c.execute(
                delete(schema.source_state).where(schema.source_state.c.source_id == source.id)
            )
            c.execute(delete(schema.sources).where(schema.sources.c.id == source.id))

    def set_kind(self, source: SourceRecord, kind: str, name: str | None) -> None:
        with self.engine.begin() as c:
            c.execute(
                update(schema.sources)
                .where(schema.sources.c.id == source.id)
                .values(kind=kind, name=source.name or name)
            )

    # -- polls ------------------------------------------------------------------------
    def seen(self, source_id: int, urls: Sequence[str]) -> set[str]:
        found: set[str] = set()
        si = schema.source_items
        with self.engine.connect() as c:
            for start in range(0, len(urls), 500):
                chunk = list(urls[start : start + 500])
                found.update(
                    c.scalars(
                        select(si.c.url).where(si.c.source_id == source_id, si.c.url.in_(chunk))
                    )
                )
        return found

    def record_poll(
        self,
        source: SourceRecord,
        *,
        taken: Sequence[Item],
        skipped: Iterable[str],
        etag: str | None,
        last_modified: str | None,
        status: str,
        every_minutes: float,
        source_name: str | None,
    ) -> list[int]:
        """One poll, all or nothing; returns the ids of new ``discovered`` articles."""
        now = _now()
        a, si = schema.articles, schema.source_items
        new_ids: list[int] = []
        # Body policy ``none`` never fetches the page: the feed's summary is the body.
        feed_text = source.setting("body_policy", "full") == "none"
        with self.engine.begin() as c:
            for item in taken:
                exists = c.scalar(select(a.c.id).where(a.c.url == item.url))
                if exists is None:
                    row = insert(a).values(
                        url=item.url,
                        source_id=source.id,
                        source_name=source_name,
                        status=Status.DISCOVERED.value,
                        title=item.title,
                        published=_iso(item.published),
                        authors=[],
                        paragraphs=[item.summary] if feed_text and item.summary else [],
                        word_count=0,
                        created_at=now,
                        updated_at=now,
                    )
                    new_ids.append(_pk(c.execute(row)))
            rows = [{"url": i.url, "taken": True} for i in taken]
            rows += [{"url": u, "taken": False} for u in dict.fromkeys(skipped)]
            if rows:
                c.execute(
                    insert(si),
                    [{"source_id": source.id, "seen_at": now, **r} for r in rows],
                )
            c.execute(
                update(schema.source_state)
                .where(schema.source_state.c.source_id == source.id)
                .values(
                    etag=etag,
                    last_modified=last_modified,
                    polls=schema.source_state.c.polls + 1,
                    last_polled_at=func.now(),  # the database's clock, as run.started
                    next_poll_at=now + timedelta(minutes=every_minutes),
                    last_status=status,
                    last_error=None,
                    errors=0,
                )
            )
        return new_ids

    def record_error(self, source: SourceRecord, error: str, every_minutes: float) -> None:
        now = _now()
        with self.engine.begin() as c:
            c.execute(
                update(schema.source_state)
                .where(schema.source_state.c.source_id == source.id)
                .values(
                    last_polled_at=func.now(),
                    next_poll_at=now + timedelta(minutes=every_minutes),
                    last_status="error",
                    last_error=error,
                    errors=schema.source_state.c.errors + 1,
                )
            )

    def mark_seen(self, source_id: int, url: str, *, taken: bool = True) -> None:
        si = schema.source_items
        with self.engine.begin() as c:
            found = c.scalar(
                select(func.count()).where(si.c.source_id == source_id, si.c.url == url)
            )
            if not found:
                c.execute(
                    insert(si).values(source_id=source_id, url=url, taken=taken, seen_at=_now())
                )

    # -- articles waiting for the fetcher -----------------------------------------------
    def discovered(self) -> list[Discovered]:
        """Every ``discovered`` article, higher-priority sources first, then oldest first."""
        a, s = schema.articles, schema.sources
        q = (
            select(a.c.id, a.c.url, a.c.source_id, a.c.source_name, s.c.settings)
            .select_from(a.outerjoin(s, s.c.id == a.c.source_id))
            .where(a.c.status == Status.DISCOVERED.value)
            .order_by(a.c.id)
        )
        with self.engine.connect() as c:
            rows = list(c.execute(q).all())

        def priority(row: Any) -> int:
            try:
                return -int((row[4] or {}).get("priority") or 0)
            except (TypeError, ValueError):
                return 0

        rows.sort(key=priority)
        return [Discovered(r[0], r[1], r[2], r[3]) for r in rows]

    def fail_attempt(self, article_id: int, error: str, max_attempts: int) -> bool:
        """Count a transient failure; True (and the article ``failed``) once attempts run out.

        ``updated_at`` is the database's time: the coordinator compares it with its
        run's start (``now()`` there), and workers' clocks may drift.
        """
        fa = schema.fetch_attempts
        now = _now()
        with self.engine.begin() as c:
            attempts = c.scalar(select(fa.c.attempts).where(fa.c.article_id == article_id))
            if attempts is None:
                attempts = 1
                c.execute(
                    insert(fa).values(
                        article_id=article_id,
                        attempts=1,
                        last_error=error,
                        updated_at=func.now(),
                    )
                )
            else:
                attempts += 1
                c.execute(
                    update(fa)
                    .where(fa.c.article_id == article_id)
                    .values(attempts=attempts, last_error=error, updated_at=func.now())
                )
            gave_up = attempts >= max_attempts
            c.execute(
                update(schema.articles)
                .where(schema.articles.c.id == article_id)
                .values(
                    status=Status.FAILED.value if gave_up else Status.DISCOVERED.value,
                    reason=error,
                    updated_at=now,
                )
            )
        return gave_up

    def _maybe_tx(self, conn: Connection | None) -> Any:
        if conn is not None:
            from contextlib import nullcontext

            return nullcontext(conn)
        return self.engine.begin()
