"""Tables of the store (SQLAlchemy Core): the current shape, used by queries.

Migrations in :mod:`waikan.store.migrations` bring a database to this shape.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

migrations = Table(
    "migrations",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)

sources = Table(
    "sources",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=True),
    Column("url", Text, nullable=False, unique=True),
    Column("kind", String(20), nullable=False, default="auto"),
    Column("language", String(20), nullable=True),
    Column("settings", JSON, nullable=False, default=dict),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

raw_responses = Table(
    "raw_responses",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", Text, nullable=False),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("status_code", Integer, nullable=True),
    Column("headers", JSON, nullable=False, default=dict),
    Column("encoding", String(20), nullable=False, default="zlib"),
    Column("content", LargeBinary, nullable=False),
    Column("size", Integer, nullable=False),
    Column("fetched_at", DateTime(timezone=True), nullable=False),
)

articles = Table(
    "articles",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", Text, nullable=False, unique=True),
    Column("source_id", Integer, ForeignKey("sources.id"), nullable=True),
    Column("source_name", String(200), nullable=True),
    Column("status", String(20), nullable=False),
    Column("reason", Text, nullable=True),
    Column("title", Text, nullable=True),
    Column("published", String(20), nullable=True),
    Column("modified", String(20), nullable=True),
    Column("authors", JSON, nullable=False, default=list),
    Column("caption", Text, nullable=True),
    Column("image_url", Text, nullable=True),
    Column("paragraphs", JSON, nullable=False, default=list),
    Column("language", String(20), nullable=True),
    Column("word_count", Integer, nullable=False, default=0),
    Column("body_sha256", String(64), nullable=True),
    Column("raw_id", Integer, ForeignKey("raw_responses.id"), nullable=True),
    Column("duplicate_of", Integer, ForeignKey("articles.id"), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_articles_status", "status"),
    Index("ix_articles_body_sha256", "body_sha256"),
)

summaries = Table(
    "summaries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("article_id", Integer, ForeignKey("articles.id"), nullable=False),
    Column("backend", String(50), nullable=False),
    Column("model", String(200), nullable=True),
    Column("prompt_version", String(50), nullable=True),
    Column("paragraphs", JSON, nullable=False),
    Column("title_zh", Text, nullable=True),
    Column("is_excerpt", Boolean, nullable=False, default=False),
    Column("tokens_in", Integer, nullable=False, default=0),
    Column("tokens_out", Integer, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_summaries_article", "article_id"),
)

posts = Table(
    "posts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("article_id", Integer, ForeignKey("articles.id"), nullable=False),
    Column("summary_id", Integer, ForeignKey("summaries.id"), nullable=False),
    Column("revision", Integer, nullable=False, default=1),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("article_id", name="uq_posts_article"),
)

V1_TABLES = (sources, raw_responses, articles, summaries, posts)
