"""The summarize stage for real: glossary, cache, budget, guard, one retry, parallel calls.

For each article, in order:
1. the glossary entries the article mentions go into the request;
2. the cache, keyed by (normalized body hash, prompt version, model, glossary
   hits), answers repeats and duplicates without a call;
3. the daily budget must have room, else the run stops and articles stay
   pending;
4. a long article is condensed chunk by chunk (map) before the summary (reduce);
5. the guard checks the answer; a failing one is retried once with the
   problems listed, and a second failure goes to ``needs_review`` with its
   findings stored — never to ``summarized``.

At most ``llm.concurrency`` requests are at the model at once, on twice as many
threads: while some wait for answers, others check answers and write the store,
so the endpoint is kept as busy as the setting allows. The first error that
dooms the rest (endpoint down, key rejected, budget spent) stops new work.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from waikan.errors import (
    ConflictError,
    StorageError,
    SummarizeError,
    SummaryDropped,
    WaikanError,
)
from waikan.models import Status, Summary
from waikan.store import ArticleRecord, Store, body_sha256, schema
from waikan.summarize import backend_for
from waikan.summarize.base import Backend, SummaryRequest
from waikan.summarize.budget import Budget, BudgetExceeded
from waikan.summarize.glossary import Entry, Glossary, Hit, builtin, read_file
from waikan.summarize.glossary_store import user_entries
from waikan.summarize.guard import Article, Finding, check
from waikan.summarize.limits import shared as shared_limits
from waikan.summarize.openai_compat import EndpointDown, KeyRejected, OpenAICompatBackend
from waikan.summarize.prompt import load_prompt
from waikan.summarize.tokens import count_messages, count_tokens, warm_up

if TYPE_CHECKING:
    from waikan.config import Config
    from waikan.workspace import Workspace

__all__ = ["STOPPERS", "Outcome", "Summarizer", "load_glossary", "user_entries"]

MAX_GLOSSARY_LINES = 30
# The errors that doom every later summary of a run: the first stops it (inline and distributed).
STOPPERS = (EndpointDown, KeyRejected, BudgetExceeded)
_THREADS_PER_REQUEST = 2


@dataclass(frozen=True)
class Outcome:
    article: ArticleRecord
    findings: tuple[Finding, ...] = ()
    calls: int = 0
    cached: bool = False


def load_glossary(store: Store, config: Config) -> Glossary:
    """Built-in < ``summarize.glossary_file`` < user entries in the store."""
    layers: list[Sequence[Entry]] = [builtin()]
    extra = str(config["summarize.glossary_file"])
    if extra:
        layers.append(read_file(Path(config.home) / extra))
    layers.append(user_entries(store))
    return Glossary.of(*layers)


def cache_key(article: ArticleRecord, prompt_version: str, model: str, hits: list[Hit]) -> str:
    body = article.body_sha256 or body_sha256(article.paragraphs)
    names = ",".join(sorted(f"{h.entry.key}={h.entry.zh_hans}" for h in hits))
    raw = f"{body}|{prompt_version}|{model}|{names}"
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class Summarizer:
    def __init__(self, ws: Workspace, backend: Backend | None = None) -> None:
        self.ws = ws
        self.store = ws.store
        self.config = ws.config
        self.backend = backend or backend_for(ws.config)
        self.glossary = load_glossary(self.store, ws.config)
        self.budget = Budget(self.store, ws.config)
        if isinstance(self.backend, OpenAICompatBackend):  # RPM/TPM across all workers
            warm_up()  # the tokenizer, once, before the worker threads count tokens
            b = self.backend
            b.limiter = shared_limits(b.limiter, self.store, b.base_url, b.model)
        self.min_han = int(ws.config["summarize.min_han"])
        self.max_han = int(ws.config["summarize.max_han"])
        self.context_tokens = int(ws.config["llm.context_tokens"])
        self.concurrency = int(ws.config["llm.concurrency"])
        self._inflight: dict[str, threading.Lock] = {}
        self._inflight_lock = threading.Lock()
        self._last_hits = threading.local()
        # SQLite takes one writer at a time and makes the others sleep and poll (1, 2, 5 …
        # 100 ms): with 16 threads that waiting cost more than the writes. Writers of this
        # process queue on a lock instead; PostgreSQL writers need no such queue.
        sqlite = self.store.engine.dialect.name == "sqlite"
        self._writes: AbstractContextManager[Any] = threading.Lock() if sqlite else nullcontext()
        self._requests = threading.BoundedSemaphore(self.concurrency)  # at the model
        self.stop: WaikanError | None = None

    # -- many articles ---------------------------------------------------------------
    def run(
        self,
        articles: Sequence[ArticleRecord],
        on_done: Callable[[Outcome], None],
        on_error: Callable[[ArticleRecord, WaikanError], None],
    ) -> None:
        """Summarize ``articles`` in parallel; callbacks run in the caller's thread order.

        Each answer is stored only if the article's post revision (read at its turn)
        and status (as listed) are unchanged: a re-summarize never overwrites what an
        editor did meanwhile; that article fails with ``ConflictError`` (before its
        model call when the change is already there, else :class:`SummaryDropped`).
        """
        lock = threading.Lock()

        def work(article: ArticleRecord) -> None:
            if self.stop is not None:
                return
            try:
                # What this run read, compared before the call and where the answer is
                # stored (as a desk regenerate does): an edit, approval or reject made
                # before or while the model answers wins.
                seen = self.store.revision(article.id)
                outcome = self.summarize(
                    article, expect_revision=seen, expect_status=(article.status,)
                )
            except STOPPERS as exc:
                with lock:
                    first = self.stop is None
                    self.stop = self.stop or exc
                    if first:
                        on_error(article, exc)
                return
            except StorageError as exc:
                with lock:
                    self.stop = self.stop or exc
                raise  # a full or read-only store: the run stops with this one error
            except WaikanError as exc:
                with lock:
                    on_error(article, exc)
                return
            with lock:
                on_done(outcome)

        if self.concurrency <= 1 or len(articles) <= 1:
            for article in articles:
                work(article)
            return

        def work_group(group: list[ArticleRecord]) -> None:
            for article in group:
                work(article)

        # Copies of one body run one after the other on one thread: the copies then come
        # from the cache without holding a thread blocked while the first is at the model.
        groups: dict[str, list[ArticleRecord]] = {}
        for a in articles:
            groups.setdefault(a.body_sha256 or body_sha256(a.paragraphs), []).append(a)
        threads = self.concurrency * _THREADS_PER_REQUEST
        with ThreadPoolExecutor(threads, thread_name_prefix="summarize") as pool:
            for future in [pool.submit(work_group, g) for g in groups.values()]:
                future.result()

    # -- one article ---------------------------------------------------------------------
    def summarize(
        self,
        article: ArticleRecord,
        *,
        expect_revision: int | None = None,
        expect_status: Sequence[str] | None = None,
        then: Callable[[Connection, Summary], None] | None = None,
    ) -> Outcome:
        """One article's summary, stored.

        ``expect_revision``/``expect_status`` are compared just before a model call (a
        post that already moved costs no call: plain :class:`ConflictError`) and swapped
        where the answer is stored (:meth:`Store.add_summary`), since the call runs
        outside any transaction: a desk regenerate or re-summarize must not replace an
        edit that landed meanwhile (:class:`SummaryDropped`; the paid answer is still
        cached for the next try). ``then`` writes in that same transaction (the
        regenerate's audit row).
        """
        store = partial(
            self._store, expect_revision=expect_revision, expect_status=expect_status, then=then
        )
        if not any(p.strip() for p in article.paragraphs):
            self.store.set_status(article.id, Status.FAILED, "empty_article")
            raise SummarizeError(f"article {article.id} has no text to summarize (empty article)")
        text = Article.of(article.title, article.caption, article.paragraphs, article.published)
        hits = self._hits(text.text)
        request = SummaryRequest(
            title=article.title,
            source=article.source_name,
            published=article.published,
            paragraphs=article.paragraphs,
            language=article.language,
            glossary=_prompt_names(hits),
        )
        backend = self.backend
        if not isinstance(backend, OpenAICompatBackend):
            return store(article, backend.summarize(request), (), calls=0)
        key = cache_key(article, backend.prompt.version, backend.model, hits)
        with self._key_lock(key):
            cached = self._cache_get(key)
            if cached is not None:
                summary, findings = cached
                with self._writes:
                    self.budget.record(summary.model or backend.model, 0, 0, cached=True)
                return store(article, summary, findings, calls=0, cached=True)
            if expect_revision is not None or expect_status is not None:
                self._unmoved(article.id, expect_revision, expect_status)
            summary, calls = self._call(backend, request)
            findings = self._check(summary, text, hits)
            if findings:
                retry = replace(request, feedback=tuple(f.message for f in findings))
                summary, more = self._call(backend, retry)
                calls += more
                findings = self._check(summary, text, hits)
            return store(article, summary, findings, calls=calls, cache=key)

    def _unmoved(self, article_id: int, revision: int | None, status: Sequence[str] | None) -> None:
        """ConflictError unless the post and status are still what the caller read: a
        batch lists statuses long before an article's turn, and a call costs money."""
        a, p = schema.articles, schema.posts
        q = (
            select(a.c.status, p.c.revision)
            .select_from(a.outerjoin(p, p.c.article_id == a.c.id))
            .where(a.c.id == article_id)
        )
        with self.store.engine.connect() as c:
            row = c.execute(q).first()
        now = int(row.revision or 0) if row is not None else 0
        if (
            row is None
            or (revision is not None and now != revision)
            or (status is not None and row.status not in status)
        ):
            raise ConflictError(article_id, now)

    def _hits(self, text: str) -> list[Hit]:
        """Glossary hits, kept for the thread's last text: copies of a body run right after
        it on the same thread (see run), and their cache key needs the same hits."""
        last = getattr(self._last_hits, "value", None)
        if last is not None and last[0] == text:
            return list(last[1])
        hits = self.glossary.find(text)
        self._last_hits.value = (text, hits)
        return list(hits)

    def _check(self, summary: Summary, text: Article, hits: list[Hit]) -> tuple[Finding, ...]:
        return tuple(
            check(
                summary.paragraphs,
                text,
                self.glossary,
                hits=hits,
                min_han=self.min_han,
                max_han=self.max_han,
            )
        )

    def _call(self, backend: OpenAICompatBackend, request: SummaryRequest) -> tuple[Summary, int]:
        """One summary, by map-reduce when the article is over the context budget."""
        calls = 0
        body = "\n\n".join(request.paragraphs)
        # Every o200k token is at least one byte: an article of no more bytes than the
        # budget fits without counting (counting costs ~10 ms of CPU per article).
        fits = len(body.encode("utf-8")) <= self.context_tokens
        if not fits and count_tokens(body) > self.context_tokens:
            notes, calls = self._map(backend, request)
            request = replace(request, paragraphs=tuple(notes))
        messages = backend.messages(request)
        tokens = count_messages(messages)
        with self._writes:
            hold = self.budget.reserve(backend.model, tokens, backend.max_tokens)
        try:
            with self._requests:
                summary = backend.summarize(request)
        except BaseException:
            with self._writes:
                self.budget.release(hold)
            raise
        with self._writes:
            self.budget.record(
                summary.model or backend.model, summary.tokens_in, summary.tokens_out, hold=hold
            )
        return summary, calls + 1

    def _map(self, backend: OpenAICompatBackend, request: SummaryRequest) -> tuple[list[str], int]:
        """Notes for each chunk of a long article (the map step)."""
        map_prompt = load_prompt(None, builtin="map.txt")
        chunks = _chunks(request.paragraphs, self.context_tokens)
        notes: list[str] = []
        for i, chunk in enumerate(chunks, 1):
            messages = map_prompt.messages(
                title=request.title,
                source=request.source,
                published=request.published,
                article="\n\n".join(chunk),
                part=f"{i}/{len(chunks)}",
            )
            tokens = count_messages(messages)
            with self._writes:
                hold = self.budget.reserve(backend.model, tokens, backend.max_tokens)
            try:
                with self._requests:
                    content, model, tin, tout = backend.complete(messages)
            except BaseException:
                with self._writes:
                    self.budget.release(hold)
                raise
            with self._writes:
                self.budget.record(model, tin, tout, hold=hold)
            notes.append(content.strip())
        return notes, len(chunks)

    # -- store, cache ----------------------------------------------------------------------
    def _store(
        self,
        article: ArticleRecord,
        summary: Summary,
        findings: Sequence[Finding],
        *,
        calls: int,
        cached: bool = False,
        cache: str | None = None,
        expect_revision: int | None = None,
        expect_status: Sequence[str] | None = None,
        then: Callable[[Connection, Summary], None] | None = None,
    ) -> Outcome:
        """Store the summary and, under the key ``cache``, the answer for later copies: one
        transaction (a write transaction is the expensive part of an article on SQLite).

        A lost compare-and-swap rolls both back; the answer is then cached on its own, so
        the next re-summarize or regenerate of the article reuses what was paid for.
        """
        status = Status.NEEDS_REVIEW if findings else Status.SUMMARIZED
        try:
            with self._writes, self.store.engine.begin() as c:
                if cache is not None:
                    _cache_put(c, cache, summary, findings)
                self.store.add_summary(
                    article.id,
                    summary,
                    status=status,
                    findings=[(f.kind, f.message) for f in findings],
                    expect_revision=expect_revision,
                    expect_status=expect_status,
                    conn=c,
                )
                if then is not None:
                    then(c, summary)
        except ConflictError as exc:
            if cache is not None:
                with self._writes, self.store.engine.begin() as c:
                    _cache_put(c, cache, summary, findings)
            raise SummaryDropped(article.id, exc.revision, calls) from exc
        # What add_summary changed of the article; no read back.
        updated = replace(article, status=status.value, reason=None)
        return Outcome(updated, tuple(findings), calls, cached)

    def _key_lock(self, key: str) -> threading.Lock:
        with self._inflight_lock:
            return self._inflight.setdefault(key, threading.Lock())

    def _cache_get(self, key: str) -> tuple[Summary, tuple[Finding, ...]] | None:
        t = schema.summary_cache
        with self.store.engine.connect() as c:
            row = c.execute(select(t).where(t.c.key == key)).first()
        if row is None:
            return None
        summary = Summary(
            paragraphs=tuple(row.paragraphs),
            backend=row.backend,
            model=row.model,
            prompt_version=row.prompt_version,
            tokens_in=0,
            tokens_out=0,
            title_zh=row.title_zh,
        )
        findings = tuple(Finding(k, m) for k, m in (row.findings or []))
        return summary, findings


def _cache_put(c: Connection, key: str, summary: Summary, findings: Sequence[Finding]) -> None:
    """Cache an answer; when another worker cached the same story first, theirs is kept."""
    values: dict[str, Any] = {
        "key": key,
        "backend": summary.backend,
        "model": summary.model,
        "prompt_version": summary.prompt_version,
        "paragraphs": list(summary.paragraphs),
        "title_zh": summary.title_zh,
        "tokens_in": summary.tokens_in,
        "tokens_out": summary.tokens_out,
        "findings": [[f.kind, f.message] for f in findings],
        "created_at": datetime.now(UTC),
    }
    # INSERT … ON CONFLICT DO NOTHING: a failed INSERT would abort the whole transaction.
    dialect = postgresql if c.dialect.name == "postgresql" else sqlite
    c.execute(dialect.insert(schema.summary_cache).values(**values).on_conflict_do_nothing())


def _prompt_names(hits: list[Hit]) -> tuple[tuple[str, str], ...]:
    """The glossary lines for the prompt: most-mentioned first, titles last, capped."""
    ranked = sorted(hits, key=lambda h: (h.entry.kind == "title", -h.count, h.first))
    return tuple((h.entry.en, h.entry.zh_hans) for h in ranked[:MAX_GLOSSARY_LINES])


def _chunks(paragraphs: Sequence[str], budget: int) -> list[list[str]]:
    """Consecutive paragraphs packed into chunks of at most ``budget`` tokens; a paragraph
    longer than that is cut by characters (rare: a page without paragraph breaks)."""
    chunks: list[list[str]] = [[]]
    used = 0
    for para in paragraphs:
        n = count_tokens(para)
        pieces = [para]
        if n > budget:
            size = max(200, len(para) * budget // n)
            pieces = [para[i : i + size] for i in range(0, len(para), size)]
        for piece in pieces:
            k = count_tokens(piece) if len(pieces) > 1 else n
            if used + k > budget and chunks[-1]:
                chunks.append([])
                used = 0
            chunks[-1].append(piece)
            used += k
    return [c for c in chunks if c]


def summarize_articles(
    ws: Workspace,
    articles: Sequence[ArticleRecord],
    on_done: Callable[[Outcome], None],
    on_error: Callable[[ArticleRecord, WaikanError], None],
) -> Summarizer:
    summarizer = Summarizer(ws)
    summarizer.run(articles, on_done, on_error)
    return summarizer
