"""Append-only list of migrations; applied names are recorded in ``migrations``.

Never edit or reorder an entry that has shipped: add a new one. A migration
that adds a column checks for it first, so a fresh database (whose first
migration already creates the current tables) and an old one converge.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select
from sqlalchemy.schema import CreateTable

from waikan.store import schema
from waikan.store.locks import store_lock

Migration = Callable[[Connection], None]


def m001_initial(conn: Connection) -> None:
    schema.metadata.create_all(conn, tables=list(schema.V1_TABLES))


def m002_dedupe(conn: Connection) -> None:
    schema.metadata.create_all(conn, tables=list(schema.DEDUPE_TABLES), checkfirst=True)
    if conn.scalar(select(schema.dedupe_state.c.id).where(schema.dedupe_state.c.id == 1)) is None:
        conn.execute(insert(schema.dedupe_state).values(id=1, seq=0))


def m003_publish(conn: Connection) -> None:
    schema.metadata.create_all(conn, tables=list(schema.PUBLISH_TABLES), checkfirst=True)


def m004_sources(conn: Connection) -> None:
    schema.metadata.create_all(conn, tables=list(schema.SOURCE_TABLES), checkfirst=True)


def m005_summarize(conn: Connection) -> None:
    schema.metadata.create_all(conn, tables=list(schema.SUMMARIZE_TABLES), checkfirst=True)


def m006_site(conn: Connection) -> None:
    # A covering index: a site build lists every post without reading article bodies.
    schema.ix_articles_site.create(conn, checkfirst=True)


def m007_web(conn: Connection) -> None:
    schema.metadata.create_all(conn, tables=list(schema.WEB_TABLES), checkfirst=True)
    schema.ix_articles_source_id.create(conn, checkfirst=True)
    schema.ix_articles_source_status.create(conn, checkfirst=True)
    schema.ix_articles_created.create(conn, checkfirst=True)
    schema.ix_summaries_created.create(conn, checkfirst=True)
    schema.ix_posts_created.create(conn, checkfirst=True)


def m008_site_changes(conn: Connection) -> None:
    # An incremental site build asks only for the posts changed since the last build.
    schema.ix_articles_updated.create(conn, checkfirst=True)
    schema.ix_posts_updated.create(conn, checkfirst=True)


def m009_queue(conn: Connection) -> None:
    schema.metadata.create_all(conn, tables=list(schema.QUEUE_TABLES), checkfirst=True)


def m010_llm_limits(conn: Connection) -> None:
    schema.metadata.create_all(conn, tables=list(schema.LLM_LIMIT_TABLES), checkfirst=True)


def m011_desk_metrics(conn: Connection) -> None:
    schema.ix_outbox_destination_status.create(conn, checkfirst=True)
    schema.ix_summary_findings_kind.create(conn, checkfirst=True)


def m012_task_outcomes(conn: Connection) -> None:
    schema.metadata.create_all(conn, tables=list(schema.TASK_OUTCOME_TABLES), checkfirst=True)


MIGRATIONS: tuple[tuple[str, Migration], ...] = (
    ("m001_initial", m001_initial),
    ("m002_dedupe", m002_dedupe),
    ("m003_publish", m003_publish),
    ("m004_sources", m004_sources),
    ("m005_summarize", m005_summarize),
    ("m006_site", m006_site),
    ("m007_web", m007_web),
    ("m008_site_changes", m008_site_changes),
    ("m009_queue", m009_queue),
    ("m010_llm_limits", m010_llm_limits),
    ("m011_desk_metrics", m011_desk_metrics),
    ("m012_task_outcomes", m012_task_outcomes),
)


def migrate(conn: Connection) -> list[str]:
    """Apply pending migrations inside the caller's transaction; return their names."""
    # Serialize migrators: several processes may open a fresh database at once.
    if conn.dialect.name == "postgresql":
        # Before the CREATE: concurrent CREATE TABLE IF NOT EXISTS races on PostgreSQL.
        store_lock(conn, "migrations")
    conn.execute(CreateTable(schema.migrations, if_not_exists=True))
    if conn.dialect.name != "postgresql":
        store_lock(conn, "migrations")  # SQLite's lock is a write to that table
    done = set(conn.scalars(select(schema.migrations.c.name)))
    applied = []
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        fn(conn)
        conn.execute(insert(schema.migrations).values(name=name, applied_at=datetime.now(UTC)))
        applied.append(name)
    return applied
