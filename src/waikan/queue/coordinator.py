"""``waikan run --distributed``: the inline stages, each fanned out to workers as tasks.

The stages keep their order and their barriers (every fetch ends before
dedupe, dedupe before summaries), so a distributed run leaves the store as an
inline run would. The coordinator waits on store rows, not on broker
messages: a row still pending ``queue.lease`` seconds after its task was sent
is enqueued again (a Redis restart may have lost the message; the task is
idempotent), at most :data:`MAX_SENDS` times. A summary that failed is not
pending: its task leaves the error line for the run (one try, as inline); nor is
a row whose task failed with an unexpected error since the run began (the worker
keeps the error in ``task_failures``): its line is reported once, without
waiting a lease. A broker outage is waited out (up to the run's timeout): a send
it refuses is not counted as a try, and a failed check counts as "not done yet".
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING

import kombu.exceptions
import redis
from celery import Celery
from sqlalchemy import or_, select, text
from sqlalchemy.exc import OperationalError

from waikan.errors import WaikanError
from waikan.models import Status
from waikan.pipeline import StageReport
from waikan.store import schema
from waikan.workspace import Workspace

if TYPE_CHECKING:
    from waikan.sources.repo import Discovered

__all__ = ["BROKER_ERRORS", "MAX_SENDS", "run_distributed", "run_on_workers", "wait_for_workers"]

# What a broker restart or outage raises: the run treats it as "not done yet" and waits on.
BROKER_ERRORS = (redis.RedisError, kombu.exceptions.OperationalError, OSError)

MAX_SENDS = 3
POLL_EVERY = 0.1
FAILURES_EVERY = 1.0  # seconds between looks at task_failures (rare: not every poll)


class _Stopped(Exception):
    """A stop was requested (``waikan serve`` got SIGTERM): stop waiting; tasks sent still run."""


class _Run:
    def __init__(
        self, ws: Workspace, app: Celery, timeout: float, should_stop: Callable[[], bool]
    ) -> None:
        self.ws = ws
        self.app = app
        self.should_stop = should_stop
        self.lease = float(ws.config["queue.lease"])
        self.deadline = time.monotonic() + timeout
        self.redis = redis.Redis.from_url(str(ws.config["queue.url"]))
        with ws.store.engine.connect() as c:
            self.started: datetime = c.scalar(text("SELECT now()"))
        self.token = int(time.time() * 1000)

    def close(self) -> None:
        self.redis.close()

    def send(self, name: str, *args: int) -> int:
        """Enqueue; 1 if sent, 0 if the broker is down (the lease sends it again, uncounted)."""
        try:
            self.app.send_task(name, args=list(args))
        except BROKER_ERRORS:
            return 0
        return 1

    def finished(self, key: str, done: Callable[[], bool]) -> bool:
        """The worker set ``key`` and ``done`` agrees; False while broker or store is away."""
        try:
            if self.redis.exists(key) and _safely(done):
                self.redis.delete(key)
                return True
        except BROKER_ERRORS:
            pass
        return False

    def backlog(self) -> bool:
        """Messages still wait in the broker: a task not yet taken is slow, not lost.

        A lease counts only while the queue is empty; otherwise a backlog longer
        than the lease (few workers, many articles) had every waiting task sent
        again, up to :data:`MAX_SENDS` times, and workers spent time on no-op copies.
        """
        from waikan.queue.app import QUEUE

        try:
            return bool(self.redis.llen(QUEUE))
        except BROKER_ERRORS:  # the broker restarting: its queue may be lost
            return False

    def claimed(self, name: str, ids: list[int]) -> set[int]:
        """Those of ``ids`` a worker's task holds the claim on right now (pg_locks).

        A lease counts only while no task holds the row: else a task running longer
        than twice the lease got no-op copies and was reported "still pending".
        """
        from waikan.queue.tasks import FETCH, POLL, SUMMARIZE

        namespace = {"waikan.poll": POLL, "waikan.fetch": FETCH, "waikan.summarize": SUMMARIZE}
        if not ids or name not in namespace:
            return set()
        q = text(
            "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid::bigint = :n AND objsubid = 2 AND objid::bigint = ANY(:ids) "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        try:
            with self.ws.store.engine.connect() as c:
                return {int(i) for i in c.scalars(q, {"n": namespace[name], "ids": ids})}
        except OperationalError:  # the database restarting: the next poll asks again
            return set()

    def failures(self, ids: list[int]) -> dict[int, str]:
        """The error lines this run's summarize tasks left for ``ids`` (see tasks.summarize):
        such an article is done for this run, not lost ("" when a stopping error of another
        article stopped it); empty while the broker is away."""
        from waikan.queue.tasks import failed_key

        if not ids:
            return {}
        try:
            got = self.redis.mget([failed_key(self.token, i) for i in ids])
        except BROKER_ERRORS:
            return {}
        return {
            i: v.decode("utf-8") if isinstance(v, bytes) else str(v)
            for i, v in zip(ids, got, strict=True)
            if v is not None
        }

    def crashed(self, name: str, ids: list[int], run: int | None = None) -> dict[int, str]:
        """The error lines of this run's ``name`` tasks for ``ids`` that failed (see
        app._wrap; ``run``: the run token they were sent with, the run's own by default):
        such a row is done for this run. Summaries report theirs through the broker
        (``failures``). Empty while the store is away."""
        from waikan.queue.outcomes import failures_of_run

        if not ids or name == "waikan.summarize":
            return {}
        try:
            with self.ws.store.engine.connect() as c:
                return failures_of_run(c, name, ids, self.token if run is None else run)
        except OperationalError:
            return {}

    def drain(
        self,
        name: str,
        ids: Iterable[int],
        pending: Callable[[list[int]], set[int]],
        errors: list[str],
        *more: int,
        label: Callable[[int], str] | None = None,
    ) -> set[int]:
        """Send ``name(id, *more)`` for each id; wait until ``pending`` reports none left.

        Returns the ids whose task failed, each reported once in ``errors`` under
        ``label(id)`` (as inline names the row: a page's URL, "source NAME"), else
        ``name id``.
        """
        failed: set[int] = set()
        looked = time.monotonic()
        sent: dict[int, tuple[float, int]] = {}
        for i in ids:
            sent[i] = (time.monotonic(), self.send(name, i, *more))
        while sent:
            try:
                left = pending(list(sent))
            except OperationalError:  # the database restarting: ask again
                self.check_deadline(name)
                time.sleep(POLL_EVERY * 5)
                continue
            for i in set(sent) - left:
                del sent[i]
            now = time.monotonic()
            if now - looked >= FAILURES_EVERY:
                looked = now
                for i, line in sorted(self.crashed(name, sorted(left & sent.keys())).items()):
                    errors.append(f"{label(i) if label else f'{name} {i}'}: {line}")
                    failed.add(i)
                    del sent[i]
            late = [i for i, (at, _count) in sent.items() if now - at >= self.lease]
            if late and self.backlog():
                for i in late:
                    sent[i] = (now, sent[i][1])
                late = []
            held = self.claimed(name, late)  # running, however long: not lost
            for i in held:
                sent[i] = (now, sent[i][1])
            late = [i for i in late if i not in held]
            for i in late:
                count = sent[i][1]
                if count >= MAX_SENDS:
                    errors.append(f"{name} {i}: still pending after {count} tries")
                    del sent[i]
                else:
                    sent[i] = (now, count + self.send(name, i, *more))
            if sent:
                self.check_deadline(name)
                time.sleep(POLL_EVERY)
        return failed

    def once(self, name: str, done: Callable[[], bool], errors: list[str]) -> None:
        """A serialized stage: one task, sent again if nothing happened within the lease."""
        token = next(_tokens) + self.token
        key = f"waikan:done:{token}"
        tries = 0
        while tries < MAX_SENDS:
            tries += self.send(name, token)
            sent = looked = time.monotonic()
            while time.monotonic() - sent < self.lease or self.backlog():
                if self.finished(key, done):
                    return
                if time.monotonic() - looked >= FAILURES_EVERY:
                    looked = time.monotonic()
                    for line in self.crashed(name, [token], token).values():
                        errors.append(f"{name}: {line}")
                        return
                self.check_deadline(name)
                time.sleep(POLL_EVERY)
        errors.append(f"{name}: not finished after {MAX_SENDS} tries")

    def check_deadline(self, name: str) -> None:
        if self.should_stop():
            raise _Stopped
        if time.monotonic() > self.deadline:
            raise WaikanError(
                f"run --distributed: {name} not finished in time; are workers running? "
                "(waikan status)"
            )


_tokens = itertools.count(1)


def _safely(check: Callable[[], bool]) -> bool:
    try:
        return check()
    except OperationalError:  # the database restarting: not done yet
        return False


def _with_status(ws: Workspace, ids: list[int], status: str) -> set[int]:
    a = schema.articles
    with ws.store.engine.connect() as c:
        q = select(a.c.id).where(a.c.id.in_(ids), a.c.status == status)
        return set(c.scalars(q))


def run_distributed(
    ws: Workspace,
    app: Celery,
    *,
    timeout: float = 3600.0,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[StageReport]:
    """Every stage once, on the workers; returns the reports an inline run would.

    When ``should_stop`` turns true the run stops waiting and returns the
    reports of the stages begun so far (tasks already sent still run).
    """
    reports: list[StageReport] = []
    run = _Run(ws, app, timeout, should_stop)
    try:
        with contextlib.suppress(_Stopped):
            _run_stages(ws, run, reports)
    finally:
        run.close()
    return reports


def _run_stages(ws: Workspace, run: _Run, reports: list[StageReport]) -> None:
    from waikan.dedupe.index import pending as dedupe_pending
    from waikan.queue.tasks import NOTE
    from waikan.sources.poll import fetch_stage
    from waikan.sources.repo import SourceRepo, usable

    store = ws.store
    repo = SourceRepo(store)

    # 1. polls: listing sources on the workers; local files are read here.
    fetch_report = StageReport("fetch")
    reports.append(fetch_report)
    due = usable(repo.due(), lambda s: fetch_report.errors.append(s.broken_line()))
    local = [s.id for s in due if s.kind in ("warc", "dir")]
    if local:
        got = fetch_stage(ws, source_ids=local)
        fetch_report.errors += got.errors
    st = schema.source_state

    def not_polled(ids: list[int]) -> set[int]:
        with store.engine.connect() as c:
            q = (
                select(schema.sources.c.id)
                .select_from(schema.sources.outerjoin(st, st.c.source_id == schema.sources.c.id))
                .where(
                    schema.sources.c.id.in_(ids),
                    or_(st.c.last_polled_at.is_(None), st.c.last_polled_at < run.started),
                )
            )
            return set(c.scalars(q))

    polled = [s.id for s in due if s.id not in local]
    sources = {s.id: f"source {s.label}" for s in due}
    run.drain(
        "waikan.poll", polled, not_polled, fetch_report.errors, run.token, label=sources.__getitem__
    )
    # A failed poll is done (its time and error are on the source's row); its line, as inline.
    asked = set(polled)
    for s in repo.all() if asked else []:
        fresh = s.last_polled_at is not None and s.last_polled_at >= run.started
        if s.id in asked and fresh and s.last_status == "error":
            fetch_report.errors.append(f"source {s.label}: {s.last_error}")

    # 2. fetch every discovered article.
    discovered = repo.discovered()
    urls = {d.id: d.url for d in discovered}
    todo = _round_robin_by_host(discovered)
    fa = schema.fetch_attempts

    def not_fetched(ids: list[int]) -> set[int]:
        a = schema.articles
        with store.engine.connect() as c:
            q = (
                select(a.c.id)
                .select_from(a.outerjoin(fa, fa.c.article_id == a.c.id))
                .where(
                    a.c.id.in_(ids),
                    a.c.status == Status.DISCOVERED.value,
                    or_(fa.c.updated_at.is_(None), fa.c.updated_at < run.started),
                )
            )
            return set(c.scalars(q))

    crashed = run.drain(
        "waikan.fetch", todo, not_fetched, fetch_report.errors, run.token, label=urls.__getitem__
    )
    fetch_report.done = store.articles(ids=todo)
    for record in fetch_report.done:
        if record.id in crashed:  # reported with its task's error
            continue
        if record.status == Status.DISCOVERED.value:
            fetch_report.errors.append(f"{record.url}: {record.reason} (will retry on a later run)")
        elif record.status == Status.FAILED.value:
            fetch_report.errors.append(f"{record.url}: {record.reason}")

    # 3. dedupe: one serialized task, oldest first, as inline.
    dedupe_report = StageReport("dedupe")
    reports.append(dedupe_report)
    before = {a.id for a in dedupe_pending(store)}
    run.once("waikan.dedupe", lambda: not dedupe_pending(store), dedupe_report.errors)
    dedupe_report.done = store.articles(ids=sorted(before))

    # 4. summarize every canonical extracted article.
    summarize_report = StageReport("summarize")
    reports.append(summarize_report)
    todo = [a.id for a in store.articles(status=Status.EXTRACTED.value)]
    failed: dict[int, str] = {}

    def not_summarized(ids: list[int]) -> set[int]:
        left = _with_status(ws, ids, Status.EXTRACTED.value)
        # A row an editor moved while its task is at the model: the task still holds
        # its claim until it has left its note (read below), so it is not done yet.
        left |= run.claimed("waikan.summarize", sorted(set(ids) - left))
        failed.update(run.failures(sorted(left - failed.keys())))
        return left - failed.keys()

    run.drain("waikan.summarize", todo, not_summarized, summarize_report.errors, run.token)
    failed.update(run.failures(sorted(set(todo) - failed.keys())))  # notes of moved rows
    # One line per failed article, as inline; of a stopping error only the first.
    # An editor's change kept over the answer is a note, as inline (nor is it done).
    for _i, line in sorted(failed.items()):
        if line.startswith(NOTE):
            summarize_report.notes.append(line.removeprefix(NOTE))
        elif line:
            summarize_report.errors.append(line)
    summarize_report.done = [
        a
        for a in store.articles(ids=todo)
        if a.status != Status.EXTRACTED.value and not failed.get(a.id, "").startswith(NOTE)
    ]

    # 5. publish: one serialized task (the outbox keeps every send once).
    publish_report = StageReport("publish")
    reports.append(publish_report)
    run.once("waikan.publish", lambda: True, publish_report.errors)


def _round_robin_by_host(items: Iterable[Discovered]) -> list[int]:
    """Article ids, one host after another: a feed's items are consecutive, and sent in
    that order every worker would wait on the same host's turn while others sat idle."""
    from waikan.fetch.robots import host_key

    by_host: dict[str, list[int]] = {}
    for item in items:
        by_host.setdefault(host_key(item.url), []).append(item.id)
    rounds = itertools.zip_longest(*by_host.values())
    return [i for batch in rounds for i in batch if i is not None]


def run_on_workers(ws: Workspace, *, timeout: float = 3600.0) -> list[StageReport]:
    """``waikan run --distributed``: check broker and store first (one clear error), then run."""
    from waikan.queue.app import broker_check, make_app, store_check

    broker_check(ws.config)
    store_check(ws.config, ws)
    app = make_app(ws.config)
    try:
        wait_for_workers(app, WORKER_WAIT)
        return run_distributed(ws, app, timeout=timeout)
    finally:
        app.close()


WORKER_WAIT = 120.0


def wait_for_workers(app: Celery, timeout: float) -> None:
    """Fail with one line when no worker answers, rather than wait for the run's timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # limit=1: return at the first answer (else every run waits out the whole second).
        try:
            if app.control.ping(timeout=1.0, limit=1):
                return
        except BROKER_ERRORS:  # the broker restarting: ask again
            time.sleep(1.0)
    raise WaikanError(
        f"no waikan worker answered on the broker in {timeout:g} s: start one with waikan worker"
    )
