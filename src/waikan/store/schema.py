"""Tables of the store (SQLAlchemy Core): the current shape, used by queries.

Migrations in :mod:`waikan.store.migrations` bring a database to this shape.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
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

# -- dedupe (m002_dedupe): signatures, stories and their members --------------------

dedupe_state = Table(
    "dedupe_state",
    metadata,
    Column("id", Integer, primary_key=True),
    # Bumped first thing in every dedupe transaction: the row lock serialises deciders.
    Column("seq", Integer, nullable=False, default=0),
)

stories = Table(
    "stories",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("canonical_id", Integer, ForeignKey("articles.id"), nullable=False),
    Column("title", Text, nullable=True),
    Column("published", String(20), nullable=True),
    Column("pending_update_id", Integer, ForeignKey("articles.id"), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_stories_canonical", "canonical_id"),
)

signatures = Table(
    "signatures",
    metadata,
    Column("article_id", Integer, ForeignKey("articles.id"), primary_key=True),
    Column("seq", Integer, nullable=False, unique=True),
    Column("scheme", String(40), nullable=False),
    Column("canonical_url", Text, nullable=False),
    Column("body_sha256", String(64), nullable=True),
    Column("minhash", LargeBinary, nullable=False),
    Column("shingles", Integer, nullable=False),
    Column("terms", JSON, nullable=False, default=list),
    Column("published", String(20), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_signatures_canonical_url", "canonical_url"),
    Index("ix_signatures_body_sha256", "body_sha256"),
)

story_members = Table(
    "story_members",
    metadata,
    Column("article_id", Integer, ForeignKey("articles.id"), primary_key=True),
    Column("story_id", Integer, ForeignKey("stories.id"), nullable=False),
    # canonical | url | body | near | story | update
    Column("relation", String(20), nullable=False),
    Column("matched_id", Integer, ForeignKey("articles.id"), nullable=True),
    Column("similarity", Float, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_story_members_story", "story_id"),
)

DEDUPE_TABLES = (dedupe_state, stories, signatures, story_members)

# -- publishing (m003_publish): the outbox and the audit log -------------------------

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("article_id", Integer, ForeignKey("articles.id"), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("destination", String(100), nullable=False),
    # pending | sending | sent | failed | uncertain | deleted
    Column("status", String(20), nullable=False),
    # Sent message ids and the one step in flight, committed around every remote call.
    Column("remote", JSON, nullable=False, default=dict),
    Column("batch", String(64), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("article_id", "revision", "destination", name="uq_outbox_key"),
    Index("ix_outbox_status", "status"),
    Index("ix_outbox_destination_sent", "destination", "sent_at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(50), nullable=False),
    Column("article_id", Integer, ForeignKey("articles.id"), nullable=True),
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=True),
    Column("note", Text, nullable=True),
    Index("ix_audit_log_article", "article_id"),
)

PUBLISH_TABLES = (outbox, audit_log)

# -- sources and fetching (m004_sources): poll state, seen items, fetch attempts -------

source_state = Table(
    "source_state",
    metadata,
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True),
    Column("etag", Text, nullable=True),
    Column("last_modified", Text, nullable=True),
    Column("polls", Integer, nullable=False, default=0),
    Column("last_polled_at", DateTime(timezone=True), nullable=True),
    Column("next_poll_at", DateTime(timezone=True), nullable=True),
    Column("last_status", String(40), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("errors", Integer, nullable=False, default=0),
)

# Every item URL a source has listed, taken or not: a new source's backfill skips
# the items it already lists, and later polls take only URLs not seen before.
source_items = Table(
    "source_items",
    metadata,
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column("url", Text, nullable=False),
    Column("taken", Boolean, nullable=False, default=False),
    Column("seen_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("source_id", "url", name="uq_source_items"),
)

# Transient fetch failures per article: after fetch.max_attempts runs it is failed.
fetch_attempts = Table(
    "fetch_attempts",
    metadata,
    Column("article_id", Integer, ForeignKey("articles.id"), primary_key=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

SOURCE_TABLES = (source_state, source_items, fetch_attempts)

# -- summaries you can trust (issue 3): guard findings, spend, cache, user glossary ----

summary_findings = Table(
    "summary_findings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("summary_id", Integer, ForeignKey("summaries.id"), nullable=False),
    Column("article_id", Integer, ForeignKey("articles.id"), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("message", Text, nullable=False),
    Index("ix_summary_findings_summary", "summary_id"),
)

llm_spend = Table(
    "llm_spend",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("calls", Integer, nullable=False, default=0),
    Column("cached", Integer, nullable=False, default=0),
    Column("tokens_in", Integer, nullable=False, default=0),
    Column("tokens_out", Integer, nullable=False, default=0),
    Column("cost", Float, nullable=False, default=0.0),
)

summary_cache = Table(
    "summary_cache",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("backend", String(50), nullable=False),
    Column("model", String(200), nullable=True),
    Column("prompt_version", String(50), nullable=True),
    Column("paragraphs", JSON, nullable=False),
    Column("title_zh", Text, nullable=True),
    Column("tokens_in", Integer, nullable=False, default=0),
    Column("tokens_out", Integer, nullable=False, default=0),
    Column("findings", JSON, nullable=False, default=list),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

glossary_entries = Table(
    "glossary_entries",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("en", String(300), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("zh_hans", String(200), nullable=False),
    Column("zh_hant_tw", String(200), nullable=False, default=""),
    Column("zh_hant_hk", String(200), nullable=False, default=""),
    Column("variants", JSON, nullable=False, default=list),
    Column("aliases", JSON, nullable=False, default=list),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

SUMMARIZE_TABLES = (summary_findings, llm_spend, summary_cache, glossary_entries)

# -- site builds (m006_site): the posts list read without touching article bodies ----

ix_articles_site = Index(
    "ix_articles_site",
    articles.c.status,
    articles.c.id,
    articles.c.source_name,
    articles.c.published,
    articles.c.updated_at,
)

# -- the editor's desk (m007_web): accounts, API tokens, sessions, login failures ---

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(20), nullable=False),  # admin | editor
    Column("password_hash", Text, nullable=False),  # argon2id
    Column("created_at", DateTime(timezone=True), nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    # SHA-256 of a 256-bit random token: a fast hash is enough for that much entropy.
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_sha256", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("scope", String(10), nullable=False),  # account | address
    Column("key", String(200), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_login_failures_key", "scope", "key", "at"),
)

# An admin paused sending to a destination from the desk: its rows wait, pending.
destination_pauses = Table(
    "destination_pauses",
    metadata,
    Column("destination", String(100), primary_key=True),
    Column("paused_by", String(200), nullable=False),
    Column("paused_at", DateTime(timezone=True), nullable=False),
)

WEB_TABLES = (users, api_tokens, web_sessions, login_failures, destination_pauses)

# The desk's queue filters page by id within a source or by creation day.
ix_articles_source_id = Index("ix_articles_source_id", articles.c.source_name, articles.c.id)
ix_articles_source_status = Index(
    "ix_articles_source_status", articles.c.source_name, articles.c.status, articles.c.id
)
ix_articles_created = Index("ix_articles_created", articles.c.created_at)
# The dashboard reads the last days of summaries and posts by time.
ix_summaries_created = Index("ix_summaries_created", summaries.c.created_at)
ix_posts_created = Index("ix_posts_created", posts.c.created_at)

# -- incremental site builds (m008_site_changes): posts changed since the last build ----
# Two range scans (article rows, post rows) find what a build must look at again.
ix_articles_updated = Index("ix_articles_updated", articles.c.updated_at)
ix_posts_updated = Index("ix_posts_updated", posts.c.updated_at)

# -- /metrics (m011_desk_metrics): each scrape groups these; covering indexes, no table scans --
ix_outbox_destination_status = Index(
    "ix_outbox_destination_status", outbox.c.destination, outbox.c.status
)
ix_summary_findings_kind = Index("ix_summary_findings_kind", summary_findings.c.kind)

# -- distributed runs (m009_queue): messages a worker could not run ---------------------
# Undecodable bodies, unknown task names and invalid arguments land here, not in a
# retry loop; ``waikan status`` shows them.
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(20), nullable=False),  # undecodable | unknown | invalid
    Column("task", String(200), nullable=True),
    Column("body", Text, nullable=True),  # the first 2,000 characters
    Column("error", Text, nullable=False),
    Index("ix_dead_letters_at", "at"),
)

# Per-host politeness across workers: the earliest start of the next request to a host.
host_turns = Table(
    "host_turns",
    metadata,
    Column("host", String(300), primary_key=True),
    Column("next_at", DateTime(timezone=True), nullable=False),
)

QUEUE_TABLES = (dead_letters, host_turns)

# -- shared model limits (m010_llm_limits): every worker's sends and budget holds --------
# One row per request sent to a model (``key``: the endpoint and model), kept for the
# rate window, so requests and tokens per minute hold across all workers together.
llm_sends = Table(
    "llm_sends",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(300), nullable=False),
    Column("sent_at", Float, nullable=False),  # epoch seconds
    Column("tokens", Integer, nullable=False),
    Index("ix_llm_sends_key_sent", "key", "sent_at"),
)

# Budget room held for a request in flight; deleted when its spend is recorded (in the
# same transaction) or it fails. A dead worker's hold stops counting at ``expires``.
llm_holds = Table(
    "llm_holds",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("day", String(10), nullable=False),
    Column("model", String(200), nullable=False),
    Column("tokens", Integer, nullable=False),
    Column("cost", Float, nullable=False),
    Column("expires", Float, nullable=False),  # epoch seconds, renewed while alive
    Index("ix_llm_holds_day", "day"),
)

LLM_LIMIT_TABLES = (llm_sends, llm_holds)

# -- task outcomes (m012_task_outcomes): what the workers did, for ``waikan status`` ------
# One row per minute, task and outcome (ok | noop | failed | retried), upserted by each
# task: ~30,000 rows a day however many tasks run; rows older than a week are pruned.
task_stats = Table(
    "task_stats",
    metadata,
    Column("minute", DateTime(timezone=True), primary_key=True),
    Column("task", String(50), primary_key=True),
    Column("outcome", String(20), primary_key=True),
    Column("count", Integer, nullable=False, default=0),
)

# A task's failure (rare): its first id (an article, a source, a run's token), the run
# that sent it (its token; NULL for a message without one) and one error line without
# secrets. A distributed run takes a failure of one of ITS tasks as final instead of
# waiting a lease; the latest :data:`~waikan.queue.outcomes.KEEP` kept.
task_failures = Table(
    "task_failures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("task", String(50), nullable=False),
    Column("key", BigInteger, nullable=True),
    Column("run", BigInteger, nullable=True),
    Column("error", Text, nullable=False),
    Index("ix_task_failures_run_task", "run", "task"),
)

TASK_OUTCOME_TABLES = (task_stats, task_failures)
