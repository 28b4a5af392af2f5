"""The stage tasks: each claims its row, re-reads its status and does only what is pending.

A task may run twice (a redelivery after a worker died, a coordinator that
enqueued again): the advisory lock keeps two copies from running at once, and
the status check makes the second one a no-op, so no page is stored twice, no
model call is paid twice for a finished summary and no post is sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text

from waikan.errors import ConflictError, WaikanError
from waikan.fetch import Fetcher
from waikan.models import Status
from waikan.queue.limits import SharedTurns
from waikan.store import ArticleRecord, Store
from waikan.summarize.base import Backend
from waikan.workspace import Workspace

__all__ = ["Failed", "Partial", "claim", "dedupe", "fetch", "poll", "publish", "summarize"]

log = logging.getLogger(__name__)


class Failed(str):
    """A task's "failed" result that carries its error line (kept as a task failure)."""

    error: str

    def __new__(cls, error: str) -> Failed:
        made = super().__new__(cls, "failed")
        made.error = error
        return made


class Partial(str):
    """A result whose work failed as foreseen (a page that failed or waits for a later
    run, a feed that errored, a destination that refused): counted as a failed run of the
    task by ``waikan status``; the reason is on the row, not kept as a task failure."""


# Advisory lock namespaces (first key of pg_try_advisory_lock(int, int)).
POLL, FETCH, SUMMARIZE, DEDUPE, PUBLISH = 1, 2, 3, 4, 5


@contextmanager
def claim(store: Store, namespace: int, key: int, *, wait: bool = False) -> Iterator[bool]:
    """Hold a PostgreSQL session lock on (namespace, key) while the body runs.

    Yields False when another worker holds it (``wait=False``). The lock dies
    with the connection, so a killed worker never leaves a row claimed.
    """
    with store.engine.connect() as c:
        fn = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
        got = c.scalar(text(f"SELECT {fn}(:n, :k)"), {"n": namespace, "k": key})
        c.commit()
        got = True if wait else bool(got)
        try:
            yield got
        finally:
            if got:
                c.scalar(text("SELECT pg_advisory_unlock(:n, :k)"), {"n": namespace, "k": key})
                c.commit()


def poll(ws: Workspace, source_id: int, token: int | None = None) -> str:
    """Poll one listing source: its new items become ``discovered`` rows.

    ``token``: the run that sent it (only recorded with a failure, see app._wrap)."""
    from waikan.sources.poll import poll_source
    from waikan.sources.repo import SourceRepo

    with claim(ws.store, POLL, source_id) as mine:
        if not mine:
            return "busy"
        source = SourceRepo(ws.store).get(str(source_id))
        if source is None:
            return "gone"
        if source.broken:  # the coordinator reports it; a task sent before the edit stops here
            log.warning("%s", source.broken_line())
            return "broken"
        loop, fetcher = _process_fetcher(ws)
        result = loop.run_until_complete(poll_source(ws, source, fetcher))
        if result.error:
            log.warning("source %s: %s", source.label, result.error)
            return Partial(f"{result.new} new, error")
        return f"{result.new} new"


def fetch(ws: Workspace, article_id: int, token: int | None = None) -> str:
    """Fetch and extract one ``discovered`` article; its raw page and row in one commit.

    ``token``: the run that sent it (only recorded with a failure, see app._wrap)."""
    store = ws.store
    with claim(store, FETCH, article_id) as mine:
        if not mine:
            return "busy"
        record = store.article(article_id)
        if record is None or record.status != Status.DISCOVERED.value:
            return "done"
        loop, fetcher = _process_fetcher(ws)
        status = loop.run_until_complete(_fetch_one(ws, record, fetcher))
        failed = (Status.FAILED.value, Status.DISCOVERED.value)  # DISCOVERED: a later run
        return Partial(status) if status in failed else status


_fetchers: tuple[int, Store, asyncio.AbstractEventLoop, Fetcher, SharedTurns] | None = None


def _process_fetcher(ws: Workspace) -> tuple[asyncio.AbstractEventLoop, Fetcher]:
    """One event loop and Fetcher per worker process (polls and fetches): robots.txt and
    connections are reused. Its host turns are shared by all workers.

    A new workspace (after a database outage) gets a new one; the old one is closed.
    """
    global _fetchers
    from waikan.fetch import FetchSettings

    if _fetchers is not None and (_fetchers[0] != os.getpid() or _fetchers[1] is not ws.store):
        old, _fetchers = _fetchers, None
        if old[0] == os.getpid():  # a forked child leaves its parent's loop alone
            with contextlib.suppress(Exception):
                old[2].run_until_complete(old[3].aclose())
            old[2].close()
            old[4].close()
    if _fetchers is None:
        settings = FetchSettings.from_config(ws.config)
        turns = SharedTurns(ws.store, settings.per_host)
        fetcher = Fetcher(settings, turns=turns)
        _fetchers = (os.getpid(), ws.store, asyncio.new_event_loop(), fetcher, turns)
    return _fetchers[2], _fetchers[3]


async def _fetch_one(ws: Workspace, record: ArticleRecord, fetcher: Fetcher) -> str:
    from waikan.extract.limited import Limits
    from waikan.sources.article import fetch_article
    from waikan.sources.repo import Discovered, SourceRepo

    store, cfg = ws.store, ws.config
    with store.engine.connect() as row:
        source_id = row.scalar(
            text("SELECT source_id FROM articles WHERE id = :i"), {"i": record.id}
        )
    source = SourceRepo(store).get(str(source_id)) if source_id is not None else None
    if source is not None and source.broken:  # sent before the edit: waits, as in a run
        log.warning("article %s: %s", record.id, source.broken_line())
        return "broken"
    done = await fetch_article(
        store,
        fetcher,
        Discovered(record.id, record.url, source_id, record.source_name),
        source,
        min_words=int(cfg["extract.min_words"]),
        limits=Limits.from_config(cfg),
        max_attempts=int(cfg["fetch.max_attempts"]),
    )
    return done.status


def _finished(ws: Workspace, token: int) -> None:
    """Tell the coordinator that the serialized stage of run ``token`` is done.

    A broker restarting now is waited out here (up to ~30 s): the stage's work is
    done, and a Celery retry would need the broker to publish it.
    """
    import time

    import redis

    for attempt in range(30):
        client = redis.Redis.from_url(str(ws.config["queue.url"]), socket_timeout=5)
        try:
            client.set(f"waikan:done:{token}", 1, ex=86400)
            return
        except (redis.RedisError, OSError):
            if attempt == 29:
                raise
            time.sleep(1)
        finally:
            client.close()


def dedupe(ws: Workspace, token: int) -> str:
    """Decide every extracted article not yet deduplicated, oldest first (one at a time)."""
    from waikan import pipeline

    with claim(ws.store, DEDUPE, 0, wait=True):
        report = pipeline.dedupe(ws)
    _finished(ws, token)
    return f"{len(report.done)} decided"


def failed_key(token: int, article_id: int) -> str:
    """Where a summarize task of run ``token`` leaves its article's error line for the
    coordinator: the article is then done for that run, as after an inline run's one try."""
    return f"waikan:failed:{token}:{article_id}"


# Marks a line left for the coordinator that is a note, not an error (an editor's change
# kept over the answer): the run prints it and its exit code ignores it, as inline.
NOTE = "note: "


def stop_key(token: int) -> str:
    """Set by the first error of run ``token`` that dooms its other summaries."""
    return f"waikan:stopped:{token}"


def summarize(ws: Workspace, article_id: int, token: int | None = None) -> str:
    """Summarize one ``extracted`` article; a finished one is left alone (no second call).

    ``token`` (the run's; messages queued without it still run) makes a failure final
    for that run, as in an inline run: the error line is left for the coordinator (not
    re-sent after the lease), a copy of the task does not call the model again, and
    the first error that dooms the rest (endpoint down, key rejected, budget spent)
    stops the run's later summaries before their model call, reported once.
    """
    from waikan.pipeline import failure_message
    from waikan.summarize.service import STOPPERS, Outcome, Summarizer

    store = ws.store
    with claim(store, SUMMARIZE, article_id) as mine:
        if not mine:
            return "busy"
        record = store.article(article_id)
        if record is None or record.status != Status.EXTRACTED.value:
            return "done"
        if token is not None:
            ended = _run_ended(ws, token, article_id)
            if ended is not None:
                return ended
        errors: list[tuple[str, WaikanError]] = []

        def done(_outcome: Outcome) -> None:
            pass

        def failed(article: ArticleRecord, exc: WaikanError) -> None:
            errors.append((failure_message(article.id, exc), exc))

        Summarizer(ws, backend=_process_backend(ws)).run([record], done, failed)
        if not errors:
            return "summarized"
        message, exc = errors[0]
        if isinstance(exc, ConflictError):  # an editor's change won: a note, as inline
            log.info("%s", message)
            if token is not None:
                _record_failure(ws, token, article_id, NOTE + message, stops=False)
            return "kept"
        stops = isinstance(exc, STOPPERS)
        log.warning("%s", message)
        if token is not None:
            _record_failure(ws, token, article_id, message, stops=stops)
        return Failed(message)


def _run_ended(ws: Workspace, token: int, article_id: int) -> str | None:
    """What a copy of the task, or one after the run's stopping error, is: "failed" when
    this article already failed in run ``token``, "stopped" (recorded without a line of
    its own) when another article's error stopped the run, else None (go on)."""
    import redis

    client = redis.Redis.from_url(str(ws.config["queue.url"]))
    try:
        stopped, failed = client.mget([stop_key(token), failed_key(token, article_id)])
        if failed is not None:
            return "failed"
        if stopped is not None:
            client.set(failed_key(token, article_id), "", ex=86400)
            return "stopped"
    except (redis.RedisError, OSError):  # the broker away: try; the coordinator waits on
        pass
    finally:
        client.close()
    return None


def _record_failure(
    ws: Workspace, token: int, article_id: int, message: str, *, stops: bool
) -> None:
    """Leave the error line for run ``token``'s coordinator (kept a day, as ``_finished``).

    Of the stopping errors only the run's first keeps its line (an inline run reports
    the one that stopped it); the others are recorded without one.
    """
    import redis

    client = redis.Redis.from_url(str(ws.config["queue.url"]))
    try:
        if stops and not client.set(stop_key(token), message, nx=True, ex=86400):
            message = ""
        client.set(failed_key(token, article_id), message, ex=86400)
    except (redis.RedisError, OSError) as exc:  # the lease sends the article again
        log.warning("article %s: cannot record the failure for the run: %s", article_id, exc)
    finally:
        client.close()


_backend: tuple[Workspace, Backend] | None = None


def _process_backend(ws: Workspace) -> Backend:
    """One model backend per worker process (per workspace), reused by its summarize tasks.

    A new one per task cost ~90 ms (the HTTP client and its TLS context) and a new
    connection to the model: ~15% of a task whose model answers in 600 ms.
    """
    global _backend
    from waikan.summarize import backend_for

    if _backend is None or _backend[0] is not ws:
        _backend = (ws, backend_for(ws.config))
    return _backend[1]


def publish(ws: Workspace, token: int) -> str:
    """Review and send what is due (the publisher's own lock and outbox keep it once)."""
    from waikan import pipeline

    with claim(ws.store, PUBLISH, 0, wait=True):
        report = pipeline.publish(ws)
    _finished(ws, token)
    line = f"{len(report.done)} published, {len(report.errors)} errors"
    return Partial(line) if report.errors else line
