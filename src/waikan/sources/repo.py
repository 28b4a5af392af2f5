"""Sources in the store: the source rows, their poll state, the items they listed.

Every poll is recorded in one transaction — new ``discovered`` article rows,
the item URLs seen, the new ETag / Last-Modified and the next poll time —
so a crash at any moment either keeps the whole poll or none of it.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Text, cast, delete, func, insert, not_, or_, select, update
from sqlalchemy.engine import Connection

from waikan.config import SETTINGS
from waikan.errors import ConfigError, InputError
from waikan.models import Status
from waikan.sources.listing import LISTING_KINDS, Item
from waikan.store import Store, schema

__all__ = ["RANGES", "Discovered", "SourceRecord", "SourceRepo", "read_settings", "usable"]

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
STORED_KINDS = ("auto", *LISTING_KINDS, "warc", "dir")
_COUNT = 1_000_000  # the most of a count setting (and |priority|): more is a typo
# The least and most value of each number setting, shared by ``sources add``'s options;
# those [sources] also sets take the config table's bounds (a row holds what it may).
RANGES: dict[str, tuple[float, float]] = {
    **{
        s.key: (s.minimum, s.maximum)
        for s in SETTINGS
        if s.table == "sources" and s.minimum is not None and s.maximum is not None
    },
    "priority": (-_COUNT, _COUNT),
    "first_n": (1, _COUNT),
}
# What each setting must hold; a hand-edited value of another type makes the source broken.
_NUMBER, _INT, _TEXT, _WORDS = (int, float), (int,), (str,), (list, str)
_TYPES: dict[str, tuple[type, ...]] = {
    "every": _NUMBER,
    "backfill": _INT,
    "max_age": _NUMBER,
    "max_items": _INT,
    "priority": _INT,
    "tags": (list,),
    "include": _WORDS,
    "exclude": _WORDS,
    "include_regex": _TEXT,
    "exclude_regex": _TEXT,
    "body_policy": _TEXT,
    "first_n": _INT,
    "paused": (bool,),
}


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
    broken: str | None = None  # why the stored row cannot be used as it is (see read_settings)

    @property
    def label(self) -> str:
        return self.name or self.url

    def broken_line(self) -> str:
        """The one error line a run prints for a broken source it skips."""
        return (
            f"source {self.id}: {self.broken}; skipped until the row is fixed "
            f"or removed (waikan sources remove {self.id})"
        )

    def setting(self, key: str, default: Any) -> Any:
        value = self.settings.get(key)
        return default if value is None else value

    @property
    def paused(self) -> bool:
        """Paused on the desk (``settings.paused``); as far as a broken row tells."""
        return self.settings.get("paused") is True

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
            "broken": self.broken,
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


def _shown(raw: str) -> str:
    return raw if len(raw) <= 40 else raw[:39] + "…"


def read_settings(raw: str | None) -> tuple[dict[str, Any], str | None]:
    """A row's ``settings`` (read as text) and, when unusable, why; never raises.

    The column is the operator's: a hand-edited value that is not a JSON object,
    or a setting of the wrong type or out of its range (:data:`RANGES`; NaN and
    infinities too), makes the source broken (reported and skipped by runs)
    instead of failing every run; nothing is rewritten.
    """
    if raw is None:
        return {}, None
    problem = _settings_problem(raw)
    try:
        value = json.loads(raw)  # a new dict each time: callers may change theirs
    except ValueError:
        return {}, problem
    return (value if isinstance(value, dict) else {}), problem


@functools.lru_cache(maxsize=16384)
def _settings_problem(raw: str) -> str | None:
    """Why ``raw`` is unusable, or None. Cached by the text: a run reads every source
    more than once, and compiling a source's RE2 filters costs ~30 µs."""
    try:
        value = json.loads(raw)
    except ValueError:
        return f"settings is not valid JSON: {_shown(raw)}"
    if value is None:  # JSON null, as SQLAlchemy stores a None: no settings
        return None
    if not isinstance(value, dict):
        return f"settings is not a JSON object: {_shown(raw)}"
    for key, types in _TYPES.items():
        got = value.get(key)
        if got is None:
            continue
        if not isinstance(got, types) or (isinstance(got, bool) and bool not in types):
            return f"settings.{key} has the wrong type: {_shown(json.dumps(got))}"
        if isinstance(got, float) and not math.isfinite(got):  # JSON's NaN, Infinity
            return f"settings.{key} is not a finite number: {json.dumps(got)}"
        if isinstance(got, list) and not all(isinstance(w, str) for w in got):
            return f"settings.{key} is not a list of strings"
        if key in RANGES and isinstance(got, int | float):
            least, most = RANGES[key]
            if got < least:
                return f"settings.{key} is below {least:.10g}: {_shown(json.dumps(got))}"
            if got > most:
                return f"settings.{key} is above {most:.10g}: {_shown(json.dumps(got))}"
    if value.get("body_policy", "full") not in BODY_POLICIES:
        return f"settings.body_policy is not one of {', '.join(BODY_POLICIES)}"
    from waikan.sources.filters import Filters  # RE2: only when a source is read

    try:
        Filters.check(value, "")
    except ConfigError as exc:
        return "settings." + str(exc).removeprefix("source : ")
    return None


def _row_problem(kind: object, url: object) -> str | None:
    if kind not in STORED_KINDS:
        return f"kind {kind!r} is not a source type ({', '.join(STORED_KINDS)})"
    if not isinstance(url, str) or not url.strip():
        return "url is empty"
    if kind not in ("warc", "dir") and not url.startswith(("http://", "https://")):
        return f"url is not an http(s) URL: {_shown(url)}"
    return None


def _record(row: Any) -> SourceRecord:
    m = row._mapping
    settings, broken = read_settings(m["settings"])
    return SourceRecord(
        id=m["id"],
        name=m["name"],
        url=m["url"],
        kind=m["kind"],
        language=m["language"],
        settings=settings,
        broken=_row_problem(m["kind"], m["url"]) or broken,
        etag=m["etag"],
        last_modified=m["last_modified"],
        polls=m["polls"] or 0,
        last_polled_at=_aware(m["last_polled_at"]),
        next_poll_at=_aware(m["next_poll_at"]),
        last_status=m["last_status"],
        last_error=m["last_error"],
        errors=m["errors"] or 0,
    )


def usable(
    sources: Iterable[SourceRecord],
    on_broken: Callable[[SourceRecord], object],
    *,
    named: bool = False,
) -> list[SourceRecord]:
    """The sources a run can poll; each broken one goes to ``on_broken`` instead (skipped).

    A broken source that is also paused is skipped quietly: whoever paused it asked
    for quiet (``sources list`` and the desk still show it), unless the run ``named``
    it (``waikan fetch --source``).
    """
    out = []
    for s in sources:
        if not s.broken:
            out.append(s)
        elif named or not s.paused:
            on_broken(s)
    return out


class SourceRepo:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine

    def _query(self) -> Any:
        s, st = schema.sources, schema.source_state
        return (
            select(
                *(c for c in s.c if c.name != "settings"),
                # As text: a row whose JSON the driver cannot decode is still listed.
                cast(s.c.settings, Text).label("settings"),
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
        """The sources to poll now, and every broken one: each run reports it (and skips it).

        Of the sources not due, only the id, kind, url and settings text are read:
        whether the row is broken is known from the cache of :func:`read_settings`.
        """
        now = now or _now()
        s, st = schema.sources, schema.source_state
        when = or_(st.c.next_poll_at.is_(None), st.c.next_poll_at <= now)
        rest = (
            select(s.c.id, s.c.kind, s.c.url, cast(s.c.settings, Text))
            .select_from(s.outerjoin(st, st.c.source_id == s.c.id))
            .where(not_(when))
        )
        with self.engine.connect() as c:
            found = [_record(r) for r in c.execute(self._query().where(when))]
            broken = [
                sid
                for sid, kind, url, raw in c.execute(rest)
                if _row_problem(kind, url) or (raw is not None and _settings_problem(raw))
            ]
            if broken:
                found += [_record(r) for r in c.execute(self._query().where(s.c.id.in_(broken)))]
        return sorted(found, key=lambda r: r.id)

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
    def discovered(self, sources: Mapping[int, SourceRecord] | None = None) -> list[Discovered]:
        """Every ``discovered`` article, higher-priority sources first, then oldest first.

        Articles of a broken source wait: its body policy, filters and language are
        unknown until the row is fixed (or the source removed). ``sources``: every
        source by id, when the caller has read them (else they are read here).
        """
        a = schema.articles
        q = (
            select(a.c.id, a.c.url, a.c.source_id, a.c.source_name)
            .where(a.c.status == Status.DISCOVERED.value)
            .order_by(a.c.id)
        )
        if sources is None:
            sources = {s.id: s for s in self.all()}
        with self.engine.connect() as c:
            rows = list(c.execute(q).all())
        rows = [r for r in rows if r[2] not in sources or not sources[r[2]].broken]

        def priority(row: Any) -> int:
            source = sources.get(row[2])
            return -int(source.setting("priority", 0)) if source is not None else 0

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
