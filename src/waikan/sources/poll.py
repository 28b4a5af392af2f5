"""The fetch stage: poll the sources that are due, then fetch and extract what they listed.

1. Poll: each due source's listing is fetched (conditional GET), parsed,
   canonicalized and filtered; its new items become ``discovered`` article
   rows in the same transaction that records the poll. A new source takes
   at most ``backfill`` existing items; ``max_age`` drops old items.
2. Fetch: every ``discovered`` article is fetched politely, extracted in a
   worker thread and stored with its raw response in one transaction
   (``extracted`` / ``rejected``); a transient failure leaves it
   ``discovered`` for the next run until ``fetch.max_attempts``.

Local sources (WARC files, folders) skip both: their pages are extracted
and stored directly. One failing source is reported and the others go on.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from waikan.dedupe.urls import canonicalize
from waikan.errors import (
    ExtractError,
    FetchError,
    InputError,
    OversizeError,
    StorageError,
    WaikanError,
)
from waikan.extract.limited import Limits
from waikan.fetch import (
    FEED_ACCEPT,
    Fetched,
    Fetcher,
    FetchSettings,
)
from waikan.models import Extracted, Status
from waikan.sources.article import RETRY_LATER, SourcePolicy, fetch_article
from waikan.sources.listing import Item, Listing, newest_first, parse_listing
from waikan.sources.local import iter_dir, iter_warc
from waikan.sources.repo import Discovered, SourceRecord, SourceRepo, usable
from waikan.store import ArticleRecord

if TYPE_CHECKING:
    from waikan.workspace import Workspace

__all__ = ["FetchReport", "PollReport", "fetch_stage", "first_poll", "poll_source"]

MAX_CHILD_SITEMAPS = 20
# Extraction runs beside the network in one thread. In-process, a second one bought little
# speed (the GIL) and cost ~70 MB of malloc arenas over 3,000 pages; isolated
# (``extract.isolate``), a second worker process was faster on an idle machine but took
# the 10,000-page peak from 325 MB to 620 MB (bench/bench_fetch.py, target < 500 MB).
EXTRACT_THREADS = 1


@dataclass
class PollReport:
    """What one source's poll found."""

    source: SourceRecord
    listed: int = 0
    new: int = 0
    not_modified: bool = False
    error: str | None = None
    title: str | None = None
    kind: str | None = None


@dataclass
class FetchReport:
    """The stage's report: polls, stored articles, errors (one line each)."""

    stage: str = "fetch"
    done: list[ArticleRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    polls: list[PollReport] = field(default_factory=list)
    retry_later: int = 0

    @property
    def exit_code(self) -> int:
        if self.errors:
            return 1
        bad = {Status.REJECTED.value, Status.FAILED.value}
        return 3 if any(a.status in bad for a in self.done) else 0


Callback = Callable[[ArticleRecord], None]


class _Run:
    """State shared by one run's tasks."""

    def __init__(
        self,
        ws: Workspace,
        fetcher: Fetcher,
        report: FetchReport,
        on_item: Callback | None,
        on_error: Callable[[str], None] | None,
    ) -> None:
        self.ws = ws
        self.cfg = ws.config
        self.repo = SourceRepo(ws.store)
        self.fetcher = fetcher
        self.report = report
        self.on_item = on_item
        self.on_error = on_error
        self.min_words = int(self.cfg["extract.min_words"])
        self.limits = Limits.from_config(self.cfg)
        self.max_attempts = int(self.cfg["fetch.max_attempts"])
        self.pool = ThreadPoolExecutor(
            max_workers=EXTRACT_THREADS, thread_name_prefix="waikan-extract"
        )
        # Storing compresses the raw page (zlib releases the GIL): its own thread keeps
        # the event loop free for the network and overlaps with extraction on a 2nd core.
        self.db_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="waikan-store")
        self.policies: dict[int, SourcePolicy] = {}

    @functools.cached_property
    def sources(self) -> dict[int, SourceRecord]:
        """Every source by id, read once, when first needed (a worker's poll never does)."""
        return {s.id: s for s in self.repo.all()}

    # -- helpers --------------------------------------------------------------------
    def default(self, source: SourceRecord, key: str) -> Any:
        return source.setting(key, self.cfg[f"sources.{key}"])

    def policy_of(self, source: SourceRecord) -> SourcePolicy:
        if source.id not in self.policies:
            self.policies[source.id] = SourcePolicy.of(source)
        return self.policies[source.id]

    def error(self, message: str) -> None:
        self.report.errors.append(message)
        if self.on_error:
            self.on_error(message)

    def broken(self, source: SourceRecord) -> None:
        """A source whose row cannot be used: reported, not polled, its row left as it is."""
        self.report.polls.append(PollReport(source, error=source.broken))
        self.error(source.broken_line())

    def stored(self, record: ArticleRecord) -> None:
        if self.on_item:
            self.on_item(record)
        # A run may store thousands: the report keeps the status line, not the body.
        self.report.done.append(replace(record, paragraphs=()))

    async def in_thread(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, functools.partial(fn, *args, **kw))

    async def in_store(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.db_pool, functools.partial(fn, *args, **kw))

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.db_pool.shutdown(wait=True, cancel_futures=True)

    async def extract(self, content: bytes | str, url: str | None, source: str | None) -> Extracted:
        return await self.in_thread(  # type: ignore[no-any-return]
            self.limits.extract, content, url=url, source_name=source, min_words=self.min_words
        )

    # -- 1. polls -------------------------------------------------------------------
    async def poll(self, source: SourceRecord) -> PollReport:
        result = PollReport(source)
        every = float(self.default(source, "every"))
        try:
            if source.kind in ("warc", "dir"):
                await self.poll_local(source, result)
                self.repo.record_poll(
                    source,
                    taken=[],
                    skipped=[],
                    etag=None,
                    last_modified=None,
                    status="ok",
                    every_minutes=every,
                    source_name=source.name,
                )
            else:
                await self.poll_listing(source, result, every)
        except StorageError:
            raise  # nothing more can be stored: the run stops with this one error
        except (WaikanError, OSError) as exc:
            message = str(exc) if isinstance(exc, WaikanError) else f"{type(exc).__name__}: {exc}"
            result.error = message
            self.repo.record_error(source, message, every)
            self.error(f"source {source.label}: {message}")
        return result

    async def poll_listing(self, source: SourceRecord, result: PollReport, every: float) -> None:
        s = self.fetcher.settings
        got = await self.fetcher.get(
            source.url,
            etag=source.etag,
            last_modified=source.last_modified,
            accept=FEED_ACCEPT,
            max_bytes=s.max_feed_bytes,
            limit_name="fetch.max_feed_bytes",
        )
        if got.not_modified:
            result.not_modified = True
            self.repo.record_poll(
                source,
                taken=[],
                skipped=[],
                etag=source.etag,
                last_modified=source.last_modified,
                status="not_modified",
                every_minutes=every,
                source_name=source.name,
            )
            return
        listing = await self.listing(source, got)
        taken, skipped = self.choose(source, listing.items)
        result.listed, result.title, result.kind = len(listing.items), listing.title, listing.kind
        if source.kind == "auto" or (source.name is None and listing.title):
            self.repo.set_kind(source, listing.kind, listing.title)
        new_ids = self.repo.record_poll(
            source,
            taken=taken,
            skipped=skipped,
            etag=got.headers.get("etag"),
            last_modified=got.headers.get("last-modified"),
            status="ok",
            every_minutes=every,
            source_name=source.name or listing.title,
        )
        result.new = len(new_ids)

    async def listing(self, source: SourceRecord, got: Fetched) -> Listing:
        kind = source.kind if source.kind != "auto" else "auto"
        listing: Listing = await self.in_thread(
            parse_listing, got.content, url=source.url, kind=kind
        )
        if listing.children:  # a sitemap index: read its newest sitemaps
            for child in newest_first(listing.children)[:MAX_CHILD_SITEMAPS]:
                try:
                    sub = await self.fetcher.get(
                        child.url,
                        accept=FEED_ACCEPT,
                        max_bytes=self.fetcher.settings.max_feed_bytes,
                        limit_name="fetch.max_feed_bytes",
                    )
                    part: Listing = await self.in_thread(
                        parse_listing, sub.content, url=child.url, kind="sitemap"
                    )
                except (FetchError, InputError) as exc:
                    self.error(f"source {source.label}: {exc}")
                    continue
                listing.items.extend(part.items)
        return listing

    def choose(self, source: SourceRecord, items: Sequence[Item]) -> tuple[list[Item], list[str]]:
        """Which new items to take now, and which to remember as seen without taking."""
        unique: dict[str, Item] = {}
        for item in items:
            url = canonicalize(item.url)
            if url.startswith(("http://", "https://")) and url not in unique:
                unique[url] = Item(url, item.title, item.summary, item.published)
        seen = self.repo.seen(source.id, list(unique))
        fresh = [i for u, i in unique.items() if u not in seen]
        max_age = float(self.default(source, "max_age"))
        cutoff = datetime.now(UTC) - timedelta(hours=max_age) if max_age > 0 else None
        filters = self.policy_of(source).filters
        eligible: list[Item] = []
        skipped: list[str] = []
        for item in newest_first(fresh):
            too_old = cutoff is not None and item.published is not None and item.published < cutoff
            if too_old or filters.excluded(item.title, item.summary):
                skipped.append(item.url)
            else:
                eligible.append(item)
        if source.polls == 0:  # a new source: every listed item is old news but `backfill`
            backfill = int(self.default(source, "backfill"))
            return eligible[:backfill], skipped + [i.url for i in eligible[backfill:]]
        max_items = int(self.default(source, "max_items"))
        return eligible[:max_items], skipped  # the rest stay unseen: taken on the next poll

    async def poll_local(self, source: SourceRecord, result: PollReport) -> None:
        """Pages of a WARC file or folder go straight to extraction and the store."""
        max_bytes = int(self.cfg["fetch.max_bytes"])
        if source.kind == "warc":
            pages = iter_warc(Path(source.url), max_bytes)
            while True:
                page = await self.in_thread(next, pages, None)
                if page is None:
                    break
                result.listed += 1
                await self.store_local(
                    source, page.key, page.url, page.content, page.headers, result
                )
        else:
            from waikan.pipeline import canonical_link, read_file, store_oversize

            for path in await self.in_thread(lambda: list(iter_dir(Path(source.url)))):
                result.listed += 1
                key = path.resolve().as_uri()
                if self.repo.seen(source.id, [key]):
                    continue
                try:
                    raw = read_file(path, max_bytes)
                except OversizeError as exc:  # the file's fault: rejected once, as add does
                    self.stored(store_oversize(self.ws.store, key, exc, source_id=source.id))
                    result.new += 1
                    self.repo.mark_seen(source.id, key)
                    continue
                except InputError as exc:
                    self.error(f"source {source.label}: {exc}")
                    self.repo.mark_seen(source.id, key, taken=False)
                    continue
                await self.store_local(source, key, canonical_link(raw) or key, raw, {}, result)

    async def store_local(
        self,
        source: SourceRecord,
        key: str,
        url: str | None,
        content: bytes,
        headers: dict[str, str],
        result: PollReport,
    ) -> None:
        if self.repo.seen(source.id, [key]):
            return
        store = self.ws.store
        canonical = canonicalize(url or key)
        existing = store.article_by_url(canonical)
        if existing is None and store.raw_by_sha256(hashlib.sha256(content).hexdigest()) is None:
            try:
                extracted = await self.extract(content, url, source.name)
            except ExtractError as exc:
                self.error(f"source {source.label}: {key}: {exc}")
            else:
                extracted, status, reason = self.policy_of(source).apply(extracted)
                record = store.add_article(
                    canonical,
                    extracted,
                    raw=content,
                    http_status=200 if headers else None,
                    headers=headers,
                    source_id=source.id,
                    status=status,
                    reason=reason,
                )
                result.new += 1
                self.stored(record)
        self.repo.mark_seen(source.id, key)

    # -- 2. articles -----------------------------------------------------------------
    async def fetch_article(self, item: Discovered) -> None:
        source = self.sources.get(item.source_id) if item.source_id is not None else None
        done = await fetch_article(
            self.ws.store,
            self.fetcher,
            item,
            source,
            min_words=self.min_words,
            max_attempts=self.max_attempts,
            limits=self.limits,
            policy=self.policy_of(source) if source is not None else None,
            extract_in=self.in_thread,
            store_in=self.in_store,
        )
        if done.status == RETRY_LATER:
            self.report.retry_later += 1
            self.error(f"{done.error} (will retry on a later run)")
        elif done.error is not None:
            self.failed(item.id, done.error)
        elif done.record is not None:
            self.stored(done.record)

    def failed(self, article_id: int, message: str) -> None:
        self.error(message)
        record = self.ws.store.article(article_id)
        if record is not None:
            self.report.done.append(record)

    async def fetch_all(self, pending: Sequence[Discovered]) -> None:
        queue: asyncio.Queue[Discovered] = asyncio.Queue()
        for item in pending:
            queue.put_nowait(item)

        async def worker() -> None:
            while True:
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await self.fetch_article(item)

        workers = max(1, min(len(pending), self.fetcher.settings.concurrency * 2))
        await asyncio.gather(*(worker() for _ in range(workers)))


async def _fetch_async(
    ws: Workspace,
    *,
    everything: bool,
    source_ids: Sequence[int] | None,
    on_item: Callback | None,
    on_error: Callable[[str], None] | None,
    on_total: Callable[[int], None] | None,
) -> FetchReport:
    report = FetchReport()
    settings = FetchSettings.from_config(ws.config)
    async with Fetcher(settings) as fetcher:
        run = _Run(ws, fetcher, report, on_item, on_error)
        try:
            if source_ids is not None:
                due = [s for s in run.sources.values() if s.id in set(source_ids)]
            elif everything:
                due = list(run.sources.values())
            else:
                due = run.repo.due()
            # One line for each broken source (a paused one only when named); the others run.
            due = usable(due, run.broken, named=source_ids is not None)
            if source_ids is None:  # a source paused on the desk waits, even for --now
                due = [s for s in due if not s.setting("paused", False)]
            due.sort(key=lambda s: -int(s.setting("priority", 0) or 0))
            report.polls += await asyncio.gather(*(run.poll(s) for s in due))
            pending = run.repo.discovered(run.sources)
            if on_total:
                on_total(len(pending))
            await run.fetch_all(pending)
        finally:
            run.shutdown()
    return report


def fetch_stage(
    ws: Workspace,
    *,
    everything: bool = False,
    source_ids: Sequence[int] | None = None,
    on_item: Callback | None = None,
    on_error: Callable[[str], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> FetchReport:
    """Poll due sources (all with ``everything``), then fetch every discovered article."""
    return asyncio.run(
        _fetch_async(
            ws,
            everything=everything,
            source_ids=source_ids,
            on_item=on_item,
            on_error=on_error,
            on_total=on_total,
        )
    )


def first_poll(ws: Workspace, source: SourceRecord) -> PollReport:
    """The poll ``waikan sources add`` makes at once: learn the kind and title, apply backfill.

    A failure raises (the source is not added).
    """

    async def go() -> PollReport:
        settings = FetchSettings.from_config(ws.config)
        async with Fetcher(settings) as fetcher:
            run = _Run(ws, fetcher, FetchReport(), None, None)
            try:
                every = float(run.default(source, "every"))
                result = PollReport(source)
                await run.poll_listing(source, result, every)
                return result
            finally:
                run.shutdown()

    return asyncio.run(go())


async def poll_source(ws: Workspace, source: SourceRecord, fetcher: Fetcher) -> PollReport:
    """One poll on the caller's fetcher (a worker's), as in a run: a failure is recorded
    on the source (its health, the next poll time) and in the report's ``error``."""
    run = _Run(ws, fetcher, FetchReport(), None, None)
    try:
        return await run.poll(source)
    finally:
        run.shutdown()
