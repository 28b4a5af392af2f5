"""``waikan publish``: approve, plan, send, and settle the post statuses.

Read top to bottom, a run is:

1. recover — a ``sending`` row left by a crash becomes ``uncertain`` (or
   resumes, when only a repeatable step was in flight);
2. approve — in ``auto`` review mode a ``summarized`` post is ``approved``;
3. plan — one ``pending`` outbox row per (post, revision, destination that
   wants it);
4. send — destination after destination; one that fails is reported and
   skipped, it never stops the others; cadence (quiet hours,
   ``max_per_hour``, digest schedule) defers rows, it does not fail them;
5. settle — a post every wanting destination has is ``published``.

One run at a time per workspace (a lock file), so a ``sending`` row seen at
start can only be a crash's leftover.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from waikan.errors import PublishError
from waikan.models import Post, Status
from waikan.plugins import registry
from waikan.publish import outbox, pauses
from waikan.publish.base import Context, DeliveryFailed, DeliveryUncertain, Publisher
from waikan.publish.cadence import in_quiet_hours
from waikan.publish.config import Destination, load_destinations
from waikan.publish.outbox import Delivery, Journal
from waikan.store import ArticleRecord, schema
from waikan.workspace import Workspace

log = logging.getLogger(__name__)

LOCK_FILE = "publish.lock"
PUBLISHABLE = (Status.APPROVED.value, Status.PUBLISHED.value)


@dataclass(frozen=True)
class Outcome:
    """One line of the run's report."""

    article_id: int
    destination: str
    status: str  # sent | deferred | failed | uncertain | pending
    detail: str = ""


@dataclass
class PublishReport:
    outcomes: list[Outcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    recovered: list[Delivery] = field(default_factory=list)
    uncertain: list[Delivery] = field(default_factory=list)
    approved: list[int] = field(default_factory=list)
    published: list[int] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.errors:
            return 1
        return 3 if self.uncertain else 0


def actor() -> str:
    """Who acts from this shell (recorded in the audit log)."""
    return os.environ.get("WAIKAN_ACTOR") or os.environ.get("USER") or "cli"


@contextlib.contextmanager
def publish_lock(ws: Workspace) -> Iterator[None]:
    """One sender per workspace: a crash's ``sending`` rows are then never someone's live work."""
    ws.home.mkdir(parents=True, exist_ok=True)
    with open(ws.home / LOCK_FILE, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PublishError("another waikan publish is running in this workspace") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# -- routing -------------------------------------------------------------------------


def source_tags(ws: Workspace, article_id: int) -> set[str]:
    """The tags of the article's source; none while its row is broken (hand-edited)."""
    from sqlalchemy import Text, cast

    from waikan.sources.repo import read_settings

    q = (
        select(cast(schema.sources.c.settings, Text))
        .join(schema.articles, schema.articles.c.source_id == schema.sources.c.id)
        .where(schema.articles.c.id == article_id)
    )
    with ws.store.engine.connect() as c:
        settings, broken = read_settings(c.scalar(q))
    return set() if broken else {t.casefold() for t in settings.get("tags") or []}


def editor_approved(ws: Workspace, article_id: int) -> bool:
    """An editor approved or edited the post (what ``review``-mode destinations wait for)."""
    t = schema.audit_log
    q = select(t.c.id).where(
        t.c.article_id == article_id, t.c.action.in_(["approve", "edit"]), t.c.actor != "auto"
    )
    with ws.store.engine.connect() as c:
        return c.execute(q.limit(1)).first() is not None


def wants(ws: Workspace, dest: Destination, article: ArticleRecord) -> bool:
    if not dest.enabled:
        return False
    if dest.sources:
        host = (urlsplit(article.url).hostname or "").casefold().removeprefix("www.")
        names = {(article.source_name or "").casefold(), host}
        if not names & set(dest.sources):
            return False
    if dest.tags and not source_tags(ws, article.id) & set(dest.tags):
        return False
    return dest.review == "auto" or editor_approved(ws, article.id)


def set_status(
    ws: Workspace,
    article_id: int,
    new: Status,
    *,
    when: tuple[str, ...],
    who: str,
    action: str,
    note: str | None = None,
    revision: int | None = None,
    conn: Connection | None = None,
) -> bool:
    """Move an article between statuses and audit it in one commit; False if it had moved.

    ``revision``: the post revision the caller decided on (ConflictError if it moved);
    ``conn``: the caller's transaction, so an edit and its status commit together.
    """
    a = schema.articles
    with contextlib.nullcontext(conn) if conn is not None else ws.store.engine.begin() as c:
        if revision is not None:
            ws.store.hold_revision(c, article_id, revision)
        res = c.execute(
            update(a)
            .where(a.c.id == article_id, a.c.status.in_(list(when)))
            .values(
                status=new.value,
                updated_at=datetime.now(UTC),
                reason=note if new in (Status.REJECTED, Status.NEEDS_REVIEW) else None,
            )
        )
        if res.rowcount != 1:
            return False
        outbox.audit(
            c,
            actor=who,
            action=action,
            article_id=article_id,
            after={"status": new.value},
            note=note,
        )
    return True


# -- the run -------------------------------------------------------------------------


def approve_auto(ws: Workspace, dests: list[Destination], report: PublishReport) -> None:
    enabled = [d for d in dests if d.enabled]
    if enabled and all(d.review == "review" for d in enabled):
        return  # every channel waits for an editor
    for article in ws.store.articles(status=Status.SUMMARIZED.value):
        if set_status(
            ws,
            article.id,
            Status.APPROVED,
            when=(Status.SUMMARIZED.value,),
            who="auto",
            action="approve",
        ):
            report.approved.append(article.id)


def plan(ws: Workspace, dests: list[Destination]) -> None:
    for article in ws.store.articles(status=Status.APPROVED.value):
        revision = ws.store.revision(article.id)
        if not revision:  # no post
            continue
        for dest in dests:
            if not wants(ws, dest, article):
                continue
            digest = getattr(registry().publishers.get(dest.type), "batch", False)
            if digest and outbox.has_row(ws.store, article.id, dest.id):
                continue  # a digest mails a post once; corrections are not re-mailed
            outbox.ensure(ws.store, article.id, revision, dest.id)


def post_for(ws: Workspace, dest: Destination, article_id: int) -> Post:
    from waikan.pipeline import build_post

    post = build_post(ws, article_id)
    if dest.variant != str(ws.config["channel.variant"]):
        post = convert_variant(post, dest.variant, ws)
    return post


def convert_variant(post: Post, variant: str, ws: Workspace | None = None) -> Post:
    """Traditional-script channels: OpenCC from the stored Simplified text, with the
    glossary's regional names (user entries included) when ``ws`` is given."""
    import dataclasses

    from waikan.summarize.variants import CONFIGS, to_variant

    if ws is not None and post.meta.get("variant", "zh-Hans") == "zh-Hans" and variant in CONFIGS:
        from waikan.pipeline import variant_glossary

        names = variant_glossary(ws, variant)
        return dataclasses.replace(
            post,
            summary=to_variant(post.summary, variant, names),
            title_zh=to_variant([post.title_zh], variant, names)[0] if post.title_zh else None,
            meta={**post.meta, "variant": variant},
        )

    try:
        import opencc
    except ImportError:
        raise PublishError(f"variant {variant} needs the opencc package") from None
    conv = opencc.OpenCC({"zh-Hant-TW": "s2twp", "zh-Hant-HK": "s2hk"}.get(variant, "t2s"))
    return dataclasses.replace(
        post,
        summary=tuple(conv.convert(p) for p in post.summary),
        title_zh=conv.convert(post.title_zh) if post.title_zh else None,
        meta={**post.meta, "variant": variant},
    )


def _deferred(rows: list[Delivery], dest: Destination, why: str, report: PublishReport) -> None:
    report.outcomes += [Outcome(r.article_id, dest.id, "deferred", why) for r in rows]


def send_destination(
    ws: Workspace,
    dest: Destination,
    pub: Publisher,
    now: datetime,
    report: PublishReport,
    on_outcome: Callable[[Outcome], None],
) -> None:
    store = ws.store
    rows = outbox.deliveries(store, destination=dest.id, status=outbox.PENDING)
    todo: list[Delivery] = []
    for row in rows:
        article = store.article(row.article_id)
        current = store.revision(row.article_id)
        if article is None or article.status not in PUBLISHABLE:
            continue  # rejected or unpublished since it was planned
        if row.revision < current:
            outbox._set(store, [row.id], status="superseded", error=f"revision {current} exists")
            continue
        todo.append(row)
    if not todo:
        return
    if in_quiet_hours(dest, now):
        _deferred(todo, dest, "quiet hours", report)
        return

    def emit(outcome: Outcome) -> None:
        report.outcomes.append(outcome)
        on_outcome(outcome)

    if pub.batch:
        if not pub.due(outbox.last_sent(store, dest.id), now):
            _deferred(todo, dest, "digest not due", report)
            return
        journal = Journal(store, todo, clock=pub.ctx.now)
        journal.claim(batch=uuid.uuid4().hex[:12])
        posts = [post_for(ws, dest, r.article_id) for r in todo]
        status = _attempt(lambda: pub.send_batch(posts, journal), journal, dest, report)
        for r in todo:
            emit(Outcome(r.article_id, dest.id, status, journal.delivery.error or ""))
        return

    for index, row in enumerate(todo):
        if (
            dest.max_per_hour
            and outbox.sent_since(store, dest.id, now - timedelta(hours=1)) >= dest.max_per_hour
        ):
            _deferred(todo[index:], dest, f"max_per_hour {dest.max_per_hour}", report)
            return
        post = post_for(ws, dest, row.article_id)
        journal = Journal(
            store, [row], previous=outbox.previous_messages(store, row), clock=pub.ctx.now
        )
        journal.claim()
        status = _attempt(
            functools.partial(pub.send, post, journal),
            journal,
            dest,
            report,
            article_id=row.article_id,
        )
        emit(Outcome(row.article_id, dest.id, status))
        if status in ("pending", "uncertain"):
            return  # the destination is down or in doubt: the rest waits for the next run


def _attempt(
    call: Callable[[], None],
    journal: Journal,
    dest: Destination,
    report: PublishReport,
    article_id: int | None = None,
) -> str:
    where = f"{dest.name} ({dest.type})" + (f": post {article_id}" if article_id else "")
    started = time.monotonic()
    try:
        call()
    except DeliveryFailed as exc:
        journal.fail(str(exc))
        report.errors.append(f"{where}: failed: {exc}")
        return "failed"
    except DeliveryUncertain as exc:
        journal.doubt(str(exc))
        report.errors.append(f"{where}: uncertain: {exc} (see: waikan publish --resolve)")
        return "uncertain"
    except PublishError as exc:
        journal.release(str(exc))
        report.errors.append(f"{where}: {exc}")
        return "pending"
    except Exception as exc:  # a broken plug-in must not stop the other destinations
        log.exception("publisher %s crashed", dest.id)
        message = f"internal error in {dest.type} publisher: {type(exc).__name__}: {exc}"
        if journal.remote.get("inflight"):
            journal.doubt(message)
        else:
            journal.release(message)
        report.errors.append(f"{where}: {message}")
        return "uncertain" if journal.remote.get("inflight") else "pending"
    journal.finish()
    log.info("%s sent in %.2fs", where, time.monotonic() - started)
    return "sent"


def settle(ws: Workspace, dests: list[Destination], report: PublishReport) -> None:
    for article in ws.store.articles(status=Status.APPROVED.value):
        revision = ws.store.revision(article.id)
        wanted = [d for d in dests if wants(ws, d, article)]
        if not wanted or not revision:
            continue
        got = {
            d.destination
            for d in outbox.deliveries(ws.store, article_id=article.id, status=outbox.SENT)
            if d.revision == revision
        }
        if all(d.id in got for d in wanted) and set_status(
            ws,
            article.id,
            Status.PUBLISHED,
            when=(Status.APPROVED.value,),
            who="publish",
            action="published",
        ):
            report.published.append(article.id)


def make_context(ws: Workspace, now: datetime | None, sleep: Callable[[float], None]) -> Context:
    return Context(
        config=ws.config, now=(lambda: now) if now else (lambda: datetime.now(UTC)), sleep=sleep
    )


def publish(
    ws: Workspace,
    *,
    env: Mapping[str, str] | None = None,
    now: datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
    only: str | None = None,
    on_outcome: Callable[[Outcome], None] = lambda o: None,
) -> PublishReport:
    """One publishing run over every destination (or ``only`` one)."""
    dests = load_destinations(ws.config, env)
    if only is not None:
        dests = [d for d in dests if d.id == only]
        if not dests:
            raise PublishError(f"no destination [publish.{only}] in waikan.toml")
    report = PublishReport()
    ctx = make_context(ws, now, sleep)
    moment = now or datetime.now(UTC)
    with publish_lock(ws):
        report.recovered = outbox.recover(ws.store)
        approve_auto(ws, dests, report)
        plan(ws, dests)
        held = pauses.paused(ws.store)  # paused from the desk: rows stay pending
        for dest in dests:
            if not dest.enabled or dest.id in held:
                continue
            try:
                pub = registry().publishers[dest.type](dest, ctx)
            except Exception as exc:  # a broken plug-in must not stop the others
                report.errors.append(f"{dest.name} ({dest.type}): cannot start: {exc}")
                continue
            try:
                pub.check()
                send_destination(ws, dest, pub, moment, report, on_outcome)
            except PublishError as exc:
                report.errors.append(f"{dest.name} ({dest.type}): {exc}")
            finally:
                pub.close()
        settle(ws, dests, report)
    report.uncertain = outbox.deliveries(ws.store, status=outbox.UNCERTAIN)
    return report


def publishers_for(ws: Workspace, env: Mapping[str, Any] | None = None) -> list[Destination]:
    return load_destinations(ws.config, env)
