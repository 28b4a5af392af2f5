"""The store: one place for everything that must survive (SQLite or PostgreSQL).

Repository functions take and return plain records; every status transition
is its own committed transaction, so a crash never leaves half a row behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    Engine,
    String,
    and_,
    create_engine,
    event,
    func,
    insert,
    select,
    type_coerce,
    union,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, Connection, ExceptionContext, make_url
from sqlalchemy.exc import SQLAlchemyError

from waikan.errors import (
    ConflictError,
    StorageError,
    StoreError,
    storage_fault,
    storage_message,
)
from waikan.models import Extracted, Status, Summary
from waikan.store import schema
from waikan.store.locks import store_lock
from waikan.store.migrations import migrate

__all__ = [
    "MAX_INT",
    "ArticleRecord",
    "PostStamp",
    "Store",
    "SummaryRecord",
    "open_store",
    "storable",
    "store_lock",
]

# The INTEGER columns' bound (ids, revisions): PostgreSQL refuses a larger parameter with
# a DataError, so a bigger id is "not found" and a bigger revision is stale, before any query.
MAX_INT = 2**31 - 1


# zlib level 1: 4.5x smaller pages at 2.8 ms each; level 6 gains 20 % more for 2.6x the CPU,
# and archiving sat on the fetch path (measured on the naeb corpus).
RAW_LEVEL = 1


def _now() -> datetime:
    return datetime.now(UTC)


def storable(text: str) -> str:
    """Someone else's words (an error, a message) with NUL shown as ``\\x00``.

    PostgreSQL text cannot hold NUL: stored raw, it failed the write, on that store only.
    """
    return text.replace("\x00", "\\x00")


@dataclass(frozen=True)
class ArticleRecord:
    id: int
    url: str
    source_name: str | None
    status: str
    reason: str | None
    title: str | None
    published: str | None
    modified: str | None
    caption: str | None
    image_url: str | None
    paragraphs: tuple[str, ...]
    language: str | None
    word_count: int
    body_sha256: str | None
    raw_id: int | None
    duplicate_of: int | None


@dataclass(frozen=True)
class SummaryRecord:
    id: int
    article_id: int
    backend: str
    model: str | None
    prompt_version: str | None
    paragraphs: tuple[str, ...]
    title_zh: str | None
    is_excerpt: bool
    tokens_in: int
    tokens_out: int


class PostStamp(NamedTuple):
    """What a site build needs to know whether a post changed, without loading its text.

    A named tuple, not a dataclass: a build makes one per post, ten thousand at a time.
    """

    article_id: int
    post_id: int
    revision: int
    summary_id: int
    status: str
    source_name: str | None
    published: str | None
    updated: str  # latest change of the article or its post, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``


def _article(row: Any) -> ArticleRecord:
    m = row._mapping
    return ArticleRecord(
        id=m["id"],
        url=m["url"],
        source_name=m["source_name"],
        status=m["status"],
        reason=m["reason"],
        title=m["title"],
        published=m["published"],
        modified=m["modified"],
        caption=m["caption"],
        image_url=m["image_url"],
        paragraphs=tuple(m["paragraphs"] or ()),
        language=m["language"],
        word_count=m["word_count"],
        body_sha256=m["body_sha256"],
        raw_id=m["raw_id"],
        duplicate_of=m["duplicate_of"],
    )


def _summary(row: Any) -> SummaryRecord:
    m = row._mapping
    return SummaryRecord(
        id=m["id"],
        article_id=m["article_id"],
        backend=m["backend"],
        model=m["model"],
        prompt_version=m["prompt_version"],
        paragraphs=tuple(m["paragraphs"]),
        title_zh=m["title_zh"],
        is_excerpt=bool(m["is_excerpt"]),
        tokens_in=m["tokens_in"],
        tokens_out=m["tokens_out"],
    )


def body_sha256(paragraphs: Sequence[str]) -> str:
    """Hash of the normalized body: whitespace and case folded, so re-serving is exact-dup."""
    text = " ".join(" ".join(paragraphs).split()).casefold()
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _extraction_values(extracted: Extracted) -> dict[str, Any]:
    """The article columns an extraction fills (shared by add and complete)."""
    status = Status.REJECTED if extracted.reject_reason else Status.EXTRACTED
    return {
        "source_name": extracted.source,
        "status": status.value,
        "reason": extracted.reject_reason,
        "title": extracted.title,
        "published": extracted.published,
        "modified": extracted.modified,
        "authors": list(extracted.authors),
        "caption": extracted.caption,
        "image_url": extracted.image_url,
        "paragraphs": list(extracted.paragraphs),
        "language": extracted.language,
        "word_count": extracted.word_count,
        "body_sha256": body_sha256(extracted.paragraphs) if extracted.paragraphs else None,
    }

def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


class Store:
    """Repository over one database. Create with :func:`open_store`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def close(self) -> None:
        self.engine.dispose()

    def _tx(self) -> Any:
        return self.engine.begin()

    # -- raw responses ---------------------------------------------------
    def save_raw(
        self,
        url: str,
        content: bytes,
        *,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
        conn: Connection | None = None,
    ) -> int:
        """Archive a response body (zlib); the same bytes are stored once.

        Two workers may archive the same bytes at once (two URLs serving one page):
        the insert skips a row another transaction holds (waiting for its commit), and
        the row is read back, instead of failing on the unique key.
        """
        digest = hashlib.sha256(content).hexdigest()
        t = schema.raw_responses
        by_digest = select(t.c.id).where(t.c.sha256 == digest)
        with self._maybe_tx(conn) as c:
            found = c.scalar(by_digest)
            if found is not None:
                return int(found)
            dialect = c.dialect.name
            upsert = pg_insert if dialect == "postgresql" else sqlite_insert
            new = c.scalar(
                upsert(t)
                .values(
                    url=url,
                    sha256=digest,
                    status_code=status_code,
                    headers=headers or {},
                    encoding="zlib",
                    content=zlib.compress(content, RAW_LEVEL),
                    size=len(content),
                    fetched_at=_now(),
                )
                .on_conflict_do_nothing(index_elements=[t.c.sha256])
                .returning(t.c.id)
            )
            return int(new if new is not None else c.scalar(by_digest))

    def raw_content(self, raw_id: int) -> bytes:
        with self.engine.connect() as c:
            row = c.execute(
                select(schema.raw_responses.c.content).where(schema.raw_responses.c.id == raw_id)
            ).first()
        if row is None:
            raise StoreError(f"raw response {raw_id} not found")
        return zlib.decompress(row[0])

    def raw_by_sha256(self, digest: str) -> int | None:
        with self.engine.connect() as c:
            found = c.scalar(
                select(schema.raw_responses.c.id).where(schema.raw_responses.c.sha256 == digest)
            )
        return None if found is None else int(found)

    # -- articles --------------------------------------------------------
    def article_by_url(self, url: str) -> ArticleRecord | None:
        with self.engine.connect() as c:
            row = c.execute(select(schema.articles).where(schema.articles.c.url == url)).first()
        return None if row is None else _article(row)

    def article_by_raw(self, raw_id: int) -> ArticleRecord | None:
        with self.engine.connect() as c:
            row = c.execute(
                select(schema.articles)
                .where(schema.articles.c.raw_id == raw_id)
                .order_by(schema.articles.c.id)
            ).first()
        return None if row is None else _article(row)

    def add_article(
        self,
        url: str,
        extracted: Extracted,
        *,
        raw: bytes,
        http_status: int | None = None,
        headers: dict[str, str] | None = None,
        source_id: int | None = None,
        status: Status | None = None,
        reason: str | None = None,
    ) -> ArticleRecord:
        """Store the raw page and its extraction in one transaction (all or nothing).

        ``status``/``reason`` override the extraction's verdict in the same insert, so a
        row a source filter rejects is never visible (or left by a crash) as extracted.
        """
        now = _now()
        values = _extraction_values(extracted)
        if status is not None:
            values.update(status=status.value, reason=reason)
        with self._tx() as c:
            raw_id = self.save_raw(url, raw, status_code=http_status, headers=headers, conn=c)
            new_id = c.execute(
                insert(schema.articles).values(
                    url=url,
                    source_id=source_id,
                    raw_id=raw_id,
                    created_at=now,
                    updated_at=now,
                    **values,
                )
            ).inserted_primary_key[0]
        found = self.article(int(new_id))
        assert found is not None
        return found

    def complete_article(
        self,
        article_id: int,
        extracted: Extracted,
        *,
        raw: bytes,
        http_status: int | None = None,
        headers: dict[str, str] | None = None,
        status: Status | None = None,
        reason: str | None = None,
    ) -> ArticleRecord:
        """A ``discovered`` row becomes extracted (or rejected) with its raw page: one commit.

        ``status``/``reason`` override the extraction's verdict (a source filter rejects).
        """
        values = _extraction_values(extracted)
        if status is not None:
            values.update(status=status.value, reason=reason)
        if values["source_name"] is None:
            values.pop("source_name")  # keep the source's name given at discovery
        with self._tx() as c:
            url = c.scalar(
                select(schema.articles.c.url).where(schema.articles.c.id == article_id)
            )
            raw_id = self.save_raw(
                str(url), raw, status_code=http_status, headers=headers, conn=c
            )
            c.execute(
                update(schema.articles)
                .where(schema.articles.c.id == article_id)
                .values(raw_id=raw_id, updated_at=_now(), **values)
            )
        found = self.article(article_id)
        assert found is not None
        return found

    def article(self, article_id: int) -> ArticleRecord | None:
        if article_id > MAX_INT:
            return None
        with self.engine.connect() as c:
            row = c.execute(
                select(schema.articles).where(schema.articles.c.id == article_id)
            ).first()
        return None if row is None else _article(row)

    def articles(
        self,
        *,
        status: str | None = None,
        ids: Sequence[int] | None = None,
    ) -> list[ArticleRecord]:
        q = select(schema.articles).order_by(schema.articles.c.id)
        if status:
            q = q.where(schema.articles.c.status == status)
        if ids is not None:
            q = q.where(schema.articles.c.id.in_(list(ids)))
        with self.engine.connect() as c:
            return [_article(r) for r in c.execute(q)]

    def set_status(self, article_id: int, status: Status, reason: str | None = None) -> None:
        with self._tx() as c:
            c.execute(
                update(schema.articles)
                .where(schema.articles.c.id == article_id)
                .values(status=status.value, reason=reason, updated_at=_now())
            )

    def counts(self) -> dict[str, int]:
        from sqlalchemy import func

        q = select(schema.articles.c.status, func.count()).group_by(schema.articles.c.status)
        with self.engine.connect() as c:
            return {s: int(n) for s, n in c.execute(q)}

    # -- summaries and posts ---------------------------------------------
    def add_summary(
        self,
        article_id: int,
        summary: Summary,
        *,
        status: Status = Status.SUMMARIZED,
        findings: Sequence[tuple[str, str]] = (),
        expect_revision: int | None = None,
        expect_status: Sequence[str] | None = None,
        conn: Connection | None = None,
    ) -> int:
        """Record a summary, point the article's post at it, set its status: one commit.

        ``findings`` are the guard's (kind, message) pairs; a summary that failed
        the guard is stored with them and ``status=needs_review``. With
        ``expect_revision`` the post moves only from that revision (compare-and-swap
        in the database, so editors in other processes cannot overwrite each other):
        else :class:`ConflictError` and nothing is written. ``expect_status`` does
        the same for the article's status: a reject or unpublish changes no revision,
        so an edit that read the status before it must not silently undo it.
        """
        now = _now()
        with self._maybe_tx(conn) as c:
            sid = int(
                c.execute(
                    insert(schema.summaries).values(
                        article_id=article_id,
                        backend=summary.backend,
                        model=summary.model,
                        prompt_version=summary.prompt_version,
                        paragraphs=list(summary.paragraphs),
                        title_zh=summary.title_zh,
                        is_excerpt=summary.is_excerpt,
                        tokens_in=summary.tokens_in,
                        tokens_out=summary.tokens_out,
                        created_at=now,
                    )
                ).inserted_primary_key[0]
            )
            post = c.execute(
                select(schema.posts.c.id, schema.posts.c.revision).where(
                    schema.posts.c.article_id == article_id
                )
            ).first()
            if expect_revision is not None and (post.revision if post else 0) != expect_revision:
                raise ConflictError(article_id, int(post.revision) if post else 0)
            if post is None:
                c.execute(
                    insert(schema.posts).values(
                        article_id=article_id,
                        summary_id=sid,
                        revision=1,
                        created_at=now,
                        updated_at=now,
                    )
                )
            else:
                p = schema.posts
                cond = p.c.id == post.id
                if expect_revision is not None:
                    cond = and_(cond, p.c.revision == expect_revision)
                res = c.execute(
                    update(p)
                    .where(cond)
                    .values(summary_id=sid, revision=p.c.revision + 1, updated_at=now)
                )
                if res.rowcount != 1:  # another writer committed first (PostgreSQL re-check)
                    raise ConflictError(article_id, self.revision(article_id, conn=c))
            if findings:
                c.execute(
                    insert(schema.summary_findings),
                    [
                        {"summary_id": sid, "article_id": article_id, "kind": k, "message": m}
                        for k, m in findings
                    ],
                )
            # After the posts row is locked (hold_revision's order: posts, then articles).
            a = schema.articles
            cond = a.c.id == article_id
            if expect_status is not None:
                cond = and_(cond, a.c.status.in_(list(expect_status)))
            res = c.execute(
                update(a).where(cond).values(status=status.value, reason=None, updated_at=now)
            )
            if expect_status is not None and res.rowcount != 1:  # a reject/unpublish landed
                raise ConflictError(article_id, int(post.revision) if post else 0)
        return sid

    def hold_revision(self, conn: Connection, article_id: int, revision: int) -> None:
        """Compare-and-swap guard: the post must still be at ``revision`` (0: no post yet).

        A no-op UPDATE of the post row: it takes the row (PostgreSQL) or write (SQLite)
        lock until ``conn`` commits, so a concurrent edit waits and then loses its
        own compare. Raises :class:`ConflictError` when the post moved.
        """
        p = schema.posts
        if revision > MAX_INT:  # no post ever got there (and PostgreSQL would refuse it)
            raise ConflictError(article_id, self.revision(article_id, conn=conn))
        if revision == 0:
            if (now := self.revision(article_id, conn=conn)) != 0:
                raise ConflictError(article_id, now)
            return
        res = conn.execute(
            update(p)
            .where(p.c.article_id == article_id, p.c.revision == revision)
            .values(revision=p.c.revision)
        )
        if res.rowcount != 1:
            raise ConflictError(article_id, self.revision(article_id, conn=conn))

    def revision(self, article_id: int, *, conn: Connection | None = None) -> int:
        """The article's post revision, 0 without a post (revisions start at 1)."""
        p = schema.posts
        q = select(p.c.revision).where(p.c.article_id == article_id)
        if conn is not None:
            return int(conn.scalar(q) or 0)
        with self.engine.connect() as c:
            return int(c.scalar(q) or 0)

    def findings_of(self, summary_id: int) -> list[tuple[str, str]]:
        """The guard's (kind, message) findings stored with a summary."""
        t = schema.summary_findings
        q = select(t.c.kind, t.c.message).where(t.c.summary_id == summary_id).order_by(t.c.id)
        with self.engine.connect() as c:
            return [(k, m) for k, m in c.execute(q)]

    def current_summary(self, article_id: int) -> SummaryRecord | None:
        q = (
            select(schema.summaries)
            .join(schema.posts, schema.posts.c.summary_id == schema.summaries.c.id)
            .where(schema.posts.c.article_id == article_id)
        )
        with self.engine.connect() as c:
            row = c.execute(q).first()
        return None if row is None else _summary(row)

    def summaries_of(self, article_id: int) -> list[SummaryRecord]:
        q = (
            select(schema.summaries)
            .where(schema.summaries.c.article_id == article_id)
            .order_by(schema.summaries.c.id)
        )
        with self.engine.connect() as c:
            return [_summary(r) for r in c.execute(q)]

    def post_stamps(self, statuses: Sequence[str]) -> list[PostStamp]:
        """One light row per post whose article is in ``statuses``, oldest post first."""
        q = _stamp_query().where(schema.articles.c.status.in_(list(statuses)))
        return self._stamps(q.order_by(schema.posts.c.id))

    def post_changes(self, since: datetime) -> list[PostStamp]:
        """Posts (any status) whose article or post row changed at or after ``since``.

        Two index range scans (``ix_articles_updated``, ``ix_posts_updated``), not
        one ``OR`` that no index serves: an incremental site build stays O(changes).
        """
        a, p = schema.articles, schema.posts
        q = union(
            _stamp_query().where(a.c.updated_at >= since),
            _stamp_query().where(p.c.updated_at >= since),
        )
        return sorted(self._stamps(q), key=lambda s: s.post_id)

    def post_count(self, statuses: Sequence[str]) -> int:
        """How many posts have an article in ``statuses`` (a cheap check of a build's list)."""
        a, p = schema.articles, schema.posts
        q = (
            select(func.count())
            .select_from(a.join(p, p.c.article_id == a.c.id))
            .where(a.c.status.in_(list(statuses)))
        )
        with self.engine.connect() as c:
            return int(c.scalar(q) or 0)

    def _stamps(self, q: Any) -> list[PostStamp]:
        with self.engine.connect() as c:
            rows = c.execute(q).all()
        return [
            PostStamp(r[0], r[1], r[2], r[3], r[4], r[5], r[6], _stamp_time(max(r[7], r[8])))
            for r in rows
        ]

    def post_records(
        self, article_ids: Sequence[int]
    ) -> list[tuple[ArticleRecord, SummaryRecord]]:
        """Articles with their current summary, in batches (a site build loads thousands)."""
        out: list[tuple[ArticleRecord, SummaryRecord]] = []
        ids = list(article_ids)
        s, p = schema.summaries, schema.posts
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            q = (
                select(schema.articles, *[col.label(f"s_{col.name}") for col in s.c])
                .join(p, p.c.article_id == schema.articles.c.id)
                .join(s, s.c.id == p.c.summary_id)
                .where(schema.articles.c.id.in_(chunk))
            )
            with self.engine.connect() as c:
                for row in c.execute(q):
                    m = row._mapping
                    summary = SummaryRecord(
                        id=m["s_id"],
                        article_id=m["s_article_id"],
                        backend=m["s_backend"],
                        model=m["s_model"],
                        prompt_version=m["s_prompt_version"],
                        paragraphs=tuple(m["s_paragraphs"]),
                        title_zh=m["s_title_zh"],
                        is_excerpt=bool(m["s_is_excerpt"]),
                        tokens_in=m["s_tokens_in"],
                        tokens_out=m["s_tokens_out"],
                    )
                    out.append((_article(row), summary))
        return out

    # -- helpers -----------------------------------------------------------
    def _maybe_tx(self, conn: Connection | None) -> Any:
        if conn is not None:
            from contextlib import nullcontext

            return nullcontext(conn)
        return self._tx()

    def dump(self) -> Iterator[dict[str, Any]]:
        """Every row of every table, for tests that scan the store (e.g. for secrets)."""
        with self.engine.connect() as c:
            for table in schema.metadata.sorted_tables:
                for row in c.execute(select(table)):
                    yield {"table": table.name, **{k: _plain(v) for k, v in row._mapping.items()}}


def _stamp_query() -> Any:
    a, p = schema.articles, schema.posts
    return select(
        a.c.id,
        p.c.id,
        p.c.revision,
        p.c.summary_id,
        a.c.status,
        a.c.source_name,
        a.c.published,
        # Raw column text: parsing 10,000 datetimes costs more than the query.
        type_coerce(a.c.updated_at, String),
        type_coerce(p.c.updated_at, String),
    ).join(p, p.c.article_id == a.c.id)


def _aware(value: datetime) -> datetime:
    # SQLite hands timezone-aware columns back naive; they were written in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _stamp_time(value: Any) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` from a stored timestamp (SQLite text or a datetime)."""
    if isinstance(value, datetime):
        return _iso(_aware(value))
    text = str(value).replace(" ", "T")[:26]
    return (text + ".000000"[: 26 - len(text)] if len(text) < 26 else text) + "Z"


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return zlib.decompress(value).decode("utf-8", "replace")
        except zlib.error:
            return value.decode("utf-8", "replace")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def open_store(url: str, *, create: bool = True) -> Store:
    """Open (and migrate) the store at an SQLAlchemy URL."""
    if "@" in _userinfo(url):
        # "user:p@ss@host": the parser would take "ss@host" for the host and print it.
        raise StoreError("cannot open store: its URL has an unencoded '@' (write it as %40)")
    try:
        # Pre-ping on PostgreSQL: a long-running worker's pooled connections die with a restart.
        pre_ping = url.startswith("postgresql")
        engine = create_engine(url, future=True, pool_pre_ping=pre_ping)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "handle_error", _fault_hook(engine))
        if create:
            with engine.begin() as conn:
                migrate(conn)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open store {_safe_url(url)}: {safe_error(exc, url)}") from None
    except (ValueError, ImportError) as exc:  # bad URL, unknown dialect or driver
        raise StoreError(f"cannot open store {_safe_url(url)}: {safe_error(exc, url)}") from None
    return Store(engine)


def _fault_hook(engine: Engine) -> Callable[[ExceptionContext], None]:
    """SQLAlchemy's ``handle_error`` hook: a full, read-only or failing disk, or a
    read-only PostgreSQL, becomes one :class:`StorageError` that stops the run.

    Raised from the hook, it replaces the driver's error for every caller of the
    engine, commit failures included; the open transaction rolls back as for any error.
    """
    url = engine.url
    where = url.database if url.get_backend_name() == "sqlite" else _safe_url(str(url))

    def hook(ctx: ExceptionContext) -> None:
        kind = storage_fault(ctx.original_exception)
        if kind == "disk I/O error" and where:  # SQLite says so of any failed write
            kind = _probe(where) or kind
        if kind is not None:
            detail = _first_line(ctx.original_exception)
            raise StorageError(storage_message(kind, where, detail)) from None

    return hook


def _probe(path: str) -> str | None:
    """Which fault a file created beside ``path`` meets (e.g. "read-only file system")."""
    try:
        with tempfile.TemporaryFile(dir=os.path.dirname(path) or "."):
            return None
    except OSError as exc:
        return storage_fault(exc)


# Query parameters that may carry a secret (?password=, ?sslpassword=, ?api_key=…).
_SECRET_PARAM = re.compile(r"pass|secret|token|key", re.IGNORECASE)


def _userinfo(url: str) -> str:
    """``user:password`` of a URL (what lies before the host's last ``@``)."""
    rest = url.partition("://")[2]
    return rest.split("/", 1)[0].split("?", 1)[0].rpartition("@")[0]


def _secrets(url: str | URL) -> list[str]:
    try:
        u = make_url(url)
    except Exception:
        return []
    found = [u.password] if u.password else []
    for key, value in u.query.items():
        if _SECRET_PARAM.search(key):
            found += [value] if isinstance(value, str) else list(value)
    return [str(v) for v in found if str(v)]


def _safe_url(url: str | URL) -> str:
    """The URL to print: its password and secret-looking query parameters hidden."""
    try:
        u = make_url(url)
        query = {k: ("***" if _SECRET_PARAM.search(k) else v) for k, v in u.query.items()}
        return u.set(query=query).render_as_string(hide_password=True).replace("%2A%2A%2A", "***")
    except Exception:  # an unparseable URL may itself hold a password: print nothing of it
        return "(invalid URL)"


def safe_error(exc: BaseException, url: str | URL) -> str:
    """The first line of a driver's error, with the URL's secrets blanked (drivers may
    echo connection parameters)."""
    text = _first_line(exc)
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return text


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__
