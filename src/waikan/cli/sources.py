"""``waikan sources add|list|remove|import-opml|export-opml`` and ``waikan fetch``."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import click

from waikan.cli._output import emit, error
from waikan.cli._state import State
from waikan.errors import InputError, UsageError, WaikanError
from waikan.sources import KINDS
from waikan.sources.filters import Filters
from waikan.sources.local import local_kind
from waikan.sources.opml import OpmlFeed, parse_opml, write_opml
from waikan.sources.repo import BODY_POLICIES, RANGES, SourceRecord, SourceRepo
from waikan.store import ArticleRecord
from waikan.workspace import Workspace

TYPE_CHOICES = ("auto", *KINDS)


class _Number(click.FloatRange):
    """A FloatRange that also refuses NaN, which passes any bound."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        got = super().convert(value, param, ctx)
        if not math.isfinite(got):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return got


def _floats(key: str) -> click.FloatRange:
    """The range a stored row may hold (:data:`RANGES`): an option takes no more."""
    return _Number(*RANGES[key])


def _ints(key: str) -> click.IntRange:
    least, most = RANGES[key]
    return click.IntRange(int(least), int(most))


@click.group()
def sources() -> None:
    """The sources waikan polls: feeds, sitemaps, WARC files, folders."""


def _settings(**given: Any) -> dict[str, Any]:
    return {k: v for k, v in given.items() if v not in (None, (), [])}


def _check_type(kind: str) -> str:
    kind = kind.lower()
    if kind not in TYPE_CHOICES:
        raise UsageError(f"unknown source type {kind!r} (one of {', '.join(TYPE_CHOICES)})")
    return kind


def _summary_line(s: SourceRecord) -> str:
    status = s.last_error or s.last_status or "not polled yet"
    if s.broken:  # listed, so that the operator sees it and can fix or remove it
        status = f"broken: {s.broken}"
    return f"{s.id}\t{s.kind}\t{s.name or ''}\t{s.url}\t{status}"


@sources.command("add")
@click.argument("ref", metavar="URL|FILE|DIR")
@click.option("--name", help="Display name (default: the feed's title).")
@click.option(
    "--type",
    "kind",
    default="auto",
    show_default=True,
    metavar="|".join(TYPE_CHOICES),
    help="Source type; auto detects it from the content.",
)
@click.option("--backfill", type=_ints("backfill"), help="Existing items to take (default 0).")
@click.option("--every", type=_floats("every"), help="Poll interval in minutes.")
@click.option("--max-age", type=_floats("max_age"), help="Ignore items older (hours).")
@click.option("--max-items", type=_ints("max_items"), help="Most new items per poll.")
@click.option("--priority", type=_ints("priority"), help="Higher is polled and fetched first.")
@click.option("--tag", "tags", multiple=True, help="Tag for routing (repeatable).")
@click.option("--include", multiple=True, help="Keep only items with this keyword (repeatable).")
@click.option("--exclude", multiple=True, help="Drop items with this keyword (repeatable).")
@click.option("--include-regex", help="Keep only items matching this RE2 pattern.")
@click.option("--exclude-regex", help="Drop items matching this RE2 pattern.")
@click.option(
    "--body",
    "body_policy",
    type=click.Choice(BODY_POLICIES),
    help="How much of the original body posts carry (licensing): full; first_n "
    "paragraphs; none (the page is not fetched: the feed's summary is the body).",
)
@click.option(
    "--first-n",
    type=_ints("first_n"),
    help="Paragraphs kept with --body first_n (default 3).",
)
@click.option(
    "--language",
    help="Language(s) of the source (en, or en,es): pages in another are rejected; "
    "pages that declare none take it.",
)
@click.pass_obj
def add_source(
    state: State,
    ref: str,
    name: str | None,
    kind: str,
    backfill: int | None,
    every: float | None,
    max_age: float | None,
    max_items: int | None,
    priority: int | None,
    tags: tuple[str, ...],
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    include_regex: str | None,
    exclude_regex: str | None,
    body_policy: str | None,
    first_n: int | None,
    language: str | None,
) -> None:
    """Add a source and take its first look at once (type and name detected).

    A new feed takes only --backfill of the items it already lists (default 0):
    later polls take the items that appear after.
    """
    kind = _check_type(kind)
    settings = _settings(
        every=every,
        backfill=backfill,
        max_age=max_age,
        max_items=max_items,
        priority=priority,
        tags=list(tags),
        include=list(include),
        exclude=list(exclude),
        include_regex=include_regex,
        exclude_regex=exclude_regex,
        body_policy=body_policy,
        first_n=first_n,
    )
    from waikan.dedupe.urls import canonicalize  # dedupe (numpy), fetch (httpx): when run
    from waikan.fetch.guard import check_scheme

    Filters.from_settings(settings, name or ref)  # a bad pattern is an error before any row
    ws = state.workspace()
    if kind == "opml":
        _import_opml(ws, ref)
        return
    found = local_kind(ref)
    if found is not None or kind in ("warc", "dir"):
        path = Path(ref).expanduser().resolve()
        actual = found or kind
        if actual != local_kind(str(path)) or (kind not in ("auto", actual)):
            raise InputError(f"{ref}: not a {'folder' if kind == 'dir' else kind} file")
        if not path.exists():
            raise InputError(f"{ref}: no such file or folder")
        repo = SourceRepo(ws.store)
        src = repo.add(
            str(path), kind=actual, name=name or path.name, language=language, settings=settings
        )
        click.echo(f"added source {src.id}: {src.name} ({actual}); run: waikan fetch")
        return
    if "://" not in ref and Path(ref).exists():
        raise InputError(f"{ref}: a local file is a source only as a WARC file or a folder")
    check_scheme(ref)
    _add_listing(ws, canonicalize(ref), kind, name, language, settings)


def _add_listing(
    ws: Workspace,
    url: str,
    kind: str,
    name: str | None,
    language: str | None,
    settings: dict[str, Any],
) -> None:
    from waikan.sources.poll import first_poll

    repo = SourceRepo(ws.store)
    src = repo.add(url, kind=kind, name=name, language=language, settings=settings)
    try:
        result = first_poll(ws, src)
    except BaseException:
        repo.remove(src)  # no half-added source: it is added once its first poll worked
        raise
    final = repo.get(str(src.id)) or src
    click.echo(
        f"added source {final.id}: {final.name or final.url} ({final.kind}); "
        f"{result.listed} items listed, {result.new} taken now"
    )


@sources.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines output.")
@click.pass_obj
def list_sources(state: State, as_json: bool) -> None:
    """List the sources with their settings and last poll."""
    for src in SourceRepo(state.workspace().store).all():
        if as_json:
            click.echo(json.dumps(src.as_json(), ensure_ascii=False))
        else:
            click.echo(_summary_line(src))


@sources.command("remove")
@click.argument("refs", nargs=-1, required=True, metavar="ID|URL…")
@click.pass_obj
def remove_source(state: State, refs: tuple[str, ...]) -> None:
    """Remove sources (their articles stay)."""
    from waikan.dedupe.urls import canonicalize

    repo = SourceRepo(state.workspace().store)
    found = []
    for ref in refs:
        src = repo.get(ref) or repo.get(canonicalize(ref))
        if src is None:
            raise InputError(f"no source {ref}")
        found.append(src)
    for src in found:
        repo.remove(src)
        click.echo(f"removed source {src.id}: {src.label}")


def _read_ref(ws: Workspace, ref: str) -> bytes:
    from waikan.fetch import FetchSettings, check_url, fetch
    from waikan.fetch.guard import check_scheme

    if ref.startswith(("http://", "https://")):
        cfg = ws.config
        check_url(ref, allow_private=bool(cfg["fetch.allow_private_networks"]))
        got = fetch(
            ref,
            max_bytes=int(cfg["fetch.max_feed_bytes"]),
            timeout=float(cfg["fetch.timeout"]),
            user_agent=str(cfg["fetch.user_agent"]),
            allow_private=bool(cfg["fetch.allow_private_networks"]),
            settings=FetchSettings.from_config(cfg),
        )
        return got.content
    if "://" in ref:
        check_scheme(ref)
    try:
        return Path(ref).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{ref}: no such file") from None
    except OSError as exc:
        raise InputError(f"{ref}: cannot read: {exc.strerror}") from None


def _import_opml(ws: Workspace, ref: str) -> None:
    from waikan.dedupe.urls import canonicalize
    from waikan.fetch.guard import check_scheme

    feeds = parse_opml(_read_ref(ws, ref), ref)
    repo = SourceRepo(ws.store)
    known = {s.url for s in repo.all()}
    added = skipped = 0
    for feed in feeds:
        url = canonicalize(feed.url)
        try:
            check_scheme(url)
        except WaikanError as exc:
            error(str(exc))
            skipped += 1
            continue
        if url in known:
            skipped += 1
            continue
        settings = {"tags": list(feed.tags)} if feed.tags else {}
        repo.add(url, kind="auto", name=feed.title, language=feed.language, settings=settings)
        known.add(url)
        added += 1
    click.echo(f"imported {added} sources from {ref} ({skipped} skipped); run: waikan fetch")


@sources.command("import-opml")
@click.argument("ref", metavar="FILE|URL")
@click.pass_obj
def import_opml(state: State, ref: str) -> None:
    """Add every feed of an OPML file (folders and categories become tags).

    Imported feeds take their first look on the next `waikan fetch`, with
    the default backfill.
    """
    _import_opml(state.workspace(), ref)


@sources.command("export-opml")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="File (default: stdout).")
@click.pass_obj
def export_opml(state: State, output: str | None) -> None:
    """Write the feed and sitemap sources as OPML 2.0."""
    feeds = [
        OpmlFeed(s.url, s.name, () if s.broken else tuple(s.setting("tags", ())), s.language)
        for s in SourceRepo(state.workspace().store).all()
        if s.kind not in ("warc", "dir")
    ]
    data = write_opml(feeds)
    if output:
        try:
            Path(output).write_bytes(data)
        except OSError as exc:
            raise InputError(f"{output}: cannot write: {exc.strerror}") from None
    else:
        click.echo(data.decode("utf-8"), nl=False)


@click.command("fetch")
@click.option("--now", is_flag=True, help="Poll every source now, due or not.")
@click.option("--source", "refs", multiple=True, metavar="ID|URL", help="Only these sources.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines: one line per stored article.")
@click.pass_obj
def fetch_command(state: State, now: bool, refs: tuple[str, ...], as_json: bool) -> None:
    """Poll the sources that are due, then fetch and extract the new articles.

    Exit 1 when a source or a page failed (the others go on), 3 when some
    pages were rejected.
    """
    from waikan.dedupe.urls import canonicalize
    from waikan.sources.poll import fetch_stage

    ws = state.workspace()
    ids = None
    if refs:
        repo = SourceRepo(ws.store)
        ids = []
        for ref in refs:
            src = repo.get(ref) or repo.get(canonicalize(ref))
            if src is None:
                raise InputError(f"no source {ref}")
            ids.append(src.id)
    bar = _Progress()

    def on_item(article: ArticleRecord) -> None:
        bar.step()
        if as_json:
            emit(article, True)

    def on_error(message: str) -> None:
        bar.clear()
        error(message)

    report = fetch_stage(
        ws,
        everything=now,
        source_ids=ids,
        on_item=on_item,
        on_error=on_error,
        on_total=bar.start,
    )
    bar.clear()
    if not as_json:
        _print_table(report)
    raise SystemExit(report.exit_code)


class _Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0
        self.live = sys.stderr.isatty()

    def start(self, total: int) -> None:
        self.total = total

    def step(self) -> None:
        self.done += 1
        if self.live and self.total:
            width = 30
            filled = width * self.done // self.total
            bar = "#" * filled + "-" * (width - filled)
            click.echo(f"\rfetching [{bar}] {self.done}/{self.total}", err=True, nl=False)

    def clear(self) -> None:
        if self.live and self.total:
            click.echo("\r\033[K", err=True, nl=False)


def _print_table(report: Any) -> None:
    from collections import Counter

    rows = [("source", "listed", "new", "poll")]
    for p in report.polls:
        poll = "error" if p.error else ("not modified" if p.not_modified else "ok")
        rows.append((p.source.label[:40], str(p.listed), str(p.new), poll))
    if len(rows) > 1:
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for r in rows:
            click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    counts = Counter(a.status for a in report.done)
    parts = [f"{n} {s}" for s, n in sorted(counts.items())]
    if report.retry_later:
        parts.append(f"{report.retry_later} to retry later")
    click.echo(f"articles: {', '.join(parts) if parts else 'nothing new'}")


def register(group: click.Group) -> None:
    group.add_command(sources)
    group.add_command(fetch_command)
