"""The pipeline: the one place that fixes stage order.

sources → fetch → extract → dedupe → summarize → review → render → publish.
Each stage function takes the workspace, does what is pending, commits every
transition, and returns a :class:`StageReport`; re-running after a crash
finishes the work without repeating it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lxml import etree
from lxml import html as lxml_html

from waikan.dedupe.urls import canonicalize
from waikan.errors import (
    ConflictError,
    ExtractError,
    FetchError,
    FileTooLargeError,
    InputError,
    OversizeError,
    SummaryDropped,
    WaikanError,
)
from waikan.extract.limited import extract_for
from waikan.fetch import FetchSettings, fetch
from waikan.models import Extracted, Post, Status
from waikan.store import ArticleRecord, Store, SummaryRecord
from waikan.summarize.variants import to_variant
from waikan.workspace import Workspace

if TYPE_CHECKING:
    from waikan.config import Config
    from waikan.summarize.glossary import Glossary
    from waikan.summarize.service import Outcome

HTML_SUFFIXES = (".html", ".htm", ".html.gz", ".htm.gz", ".xhtml")


@dataclass
class StageReport:
    """What a stage did. ``notes``: lines worth telling that are no failure (an editor's
    change won over a summary): printed, but they leave the exit code alone."""

    stage: str
    done: list[ArticleRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.errors:
            return 1
        rejected = {Status.REJECTED.value, Status.FAILED.value}
        return 3 if any(a.status in rejected for a in self.done) else 0


# -- stage: ingest (given inputs → fetched → extracted) -------------------------


def expand_inputs(inputs: Sequence[str]) -> Iterator[str]:
    """URLs as given; folders become their HTML files in name order."""
    for item in inputs:
        if item.startswith(("http://", "https://")):
            yield item
            continue
        path = Path(item)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(HTML_SUFFIXES)
            )
            if not found:
                raise InputError(f"{item}: no .html or .html.gz files in this folder")
            yield from (str(p) for p in found)
        else:
            yield item


def read_file(path: Path, max_bytes: int) -> bytes:
    """A local page, gunzipped, refused before reading when over ``max_bytes``."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise InputError(f"{path}: not a file")
        if size > max_bytes and not path.name.endswith(".gz"):
            raise FileTooLargeError(
                f"{path}: {size:,} bytes is over fetch.max_bytes ({max_bytes:,})"
            )
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    if data[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
                data = gz.read(max_bytes + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"{path}: broken gzip data: {exc}") from None
    if len(data) > max_bytes:
        raise FileTooLargeError(f"{path}: over fetch.max_bytes ({max_bytes:,}) once decompressed")
    if not data.strip():
        raise InputError(f"{path}: empty file")
    return data


def canonical_link(raw: bytes) -> str | None:
    """The page's own ``rel=canonical`` / ``og:url``, so a saved copy and the live URL match."""
    try:
        tree = lxml_html.fromstring(raw[:2_000_000])
    except (etree.ParserError, ValueError):
        return None
    for xpath in ('//link[@rel="canonical"]/@href', '//meta[@property="og:url"]/@content'):
        for value in tree.xpath(xpath):
            if isinstance(value, str) and value.strip().startswith(("http://", "https://")):
                return value.strip()
    return None


def ingest_one(ws: Workspace, item: str) -> ArticleRecord:
    """Fetch or read one page, extract it and store both in one transaction."""
    cfg = ws.config
    max_bytes = int(cfg["fetch.max_bytes"])
    http_status = None
    headers: dict[str, str] | None = None
    page_url: str | None
    if item.startswith(("http://", "https://")):
        item = canonicalize(item)
        existing = ws.store.article_by_url(item)
        if existing is not None:
            return existing
        try:
            got = fetch(
                item,
                max_bytes=max_bytes,
                timeout=float(cfg["fetch.timeout"]),
                user_agent=str(cfg["fetch.user_agent"]),
                allow_private=bool(cfg["fetch.allow_private_networks"]),
                max_redirects=int(cfg["fetch.max_redirects"]),
                settings=FetchSettings.from_config(cfg),
            )
        except OversizeError as exc:
            return store_oversize(ws.store, item, exc)
        raw, page_url, http_status, headers = got.content, got.url, got.status_code, got.headers
        url = item
    else:
        try:
            raw = read_file(Path(item), max_bytes)
        except OversizeError as exc:
            return store_oversize(ws.store, Path(item).resolve().as_uri(), exc)
        page_url = canonical_link(raw)
        url = canonicalize(page_url) if page_url else Path(item).resolve().as_uri()
    return store_page(ws, item, url, page_url, raw, http_status=http_status, headers=headers)


def store_oversize(
    store: Store, url: str, exc: OversizeError, *, source_id: int | None = None
) -> ArticleRecord:
    """An input over ``fetch.max_bytes`` is a rejected article (as when fetched by a source).

    None of its bytes are archived; adding it again finds the row instead of reading it.
    """
    existing = store.article_by_url(url)
    if existing is not None:
        return existing
    rejected = Extracted(None, None, None, None, (), url=url, reject_reason=exc.reason)
    return store.add_article(url, rejected, raw=b"", source_id=source_id)


def store_page(
    ws: Workspace,
    item: str,
    url: str,
    page_url: str | None,
    raw: bytes,
    *,
    http_status: int | None = None,
    headers: dict[str, str] | None = None,
) -> ArticleRecord:
    """Extract a page in hand and store it, unless its URL or exact bytes are stored already."""
    existing = ws.store.article_by_url(url)
    if existing is not None:
        return existing
    # No bytes are no page: an empty body must not match an oversize input's empty archive.
    raw_id = ws.store.raw_by_sha256(hashlib.sha256(raw).hexdigest()) if raw else None
    if raw_id is not None and (same := ws.store.article_by_raw(raw_id)) is not None:
        return same
    try:
        extracted = extract_for(ws.config, raw, url=page_url)
    except ExtractError as exc:
        raise InputError(f"{item}: {exc}") from None
    return ws.store.add_article(url, extracted, raw=raw, http_status=http_status, headers=headers)


def _ingest_item(ws: Workspace, item: str) -> Iterator[ArticleRecord | WaikanError]:
    """One input's articles (or errors): each HTML response of a WARC file, no network."""
    from waikan.sources.local import iter_warc, local_kind

    try:
        if local_kind(item) != "warc":
            yield ingest_one(ws, item)
            return
        pages = 0
        for page in iter_warc(Path(item), int(ws.config["fetch.max_bytes"])):
            pages += 1
            try:
                url = canonicalize(page.url or page.key)
                yield store_page(
                    ws,
                    page.key,
                    url,
                    page.url,
                    page.content,
                    http_status=page.status_code,
                    headers=page.headers,
                )
            except InputError as exc:
                yield exc
        if not pages:
            raise InputError(f"{item}: no HTML response records (is it a WARC file?)")
    except (InputError, FetchError) as exc:
        yield exc


def ingest(
    ws: Workspace,
    inputs: Sequence[str],
    on_item: Callable[[ArticleRecord], None] | None = None,
    on_error: Callable[[str], None] | None = None,
) -> StageReport:
    report = StageReport("ingest")
    for record in (got for item in expand_inputs(inputs) for got in _ingest_item(ws, item)):
        if isinstance(record, WaikanError):
            report.errors.append(str(record))
            if on_error:
                on_error(str(record))
            continue
        if record.status == Status.EXTRACTED.value:
            record = _dedupe_one(ws, record)
        report.done.append(record)
        if on_item:
            on_item(record)
    return report


# -- stage: dedupe ------------------------------------------------------------------


def dedupe(
    ws: Workspace,
    ids: Iterable[int] | None = None,
    on_item: Callable[[ArticleRecord], None] | None = None,
    on_error: Callable[[str], None] | None = None,
) -> StageReport:
    """Link extracted articles to their stories; non-canonical members become ``duplicate``."""
    from waikan import dedupe as dedupe_mod

    report = StageReport("dedupe")
    wanted = None if ids is None else list(ids)
    for decision in dedupe_mod.dedupe(ws.store, ws.config, wanted):
        updated = ws.store.article(decision.article_id)
        if updated is not None:
            report.done.append(updated)
            if on_item:
                on_item(updated)
    return report


def _dedupe_one(ws: Workspace, record: ArticleRecord) -> ArticleRecord:
    dedupe(ws, [record.id])
    return ws.store.article(record.id) or record


# -- stage: summarize ---------------------------------------------------------------


def summarize(
    ws: Workspace,
    ids: Iterable[int] | None = None,
    on_item: Callable[[ArticleRecord], None] | None = None,
    on_error: Callable[[str], None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> StageReport:
    """Summarize extracted articles (or the given ids); a failure leaves the status as it was.

    An article whose post or status another party (an editor, dedupe, another run)
    changed after this run read it keeps that change: a note, not an error, since the
    change winning is what should happen (single ids and batches alike).
    """
    report = StageReport("summarize")
    store = ws.store
    dedupe(ws)  # never pay for a story twice: only canonical articles stay extracted
    if ids is None:
        todo = store.articles(status=Status.EXTRACTED.value)
    else:
        wanted = list(ids)
        todo = store.articles(ids=wanted)
        missing = [f"article {i} not found" for i in sorted(set(wanted) - {a.id for a in todo})]
        skipped = [
            f"article {a.id} is {a.status}: nothing to summarize"
            for a in todo
            if a.status in (Status.REJECTED.value, Status.DUPLICATE.value)
        ]
        for message in missing + skipped:
            report.errors.append(message)
            if on_error:
                on_error(message)
        todo = [a for a in todo if a.status not in (Status.REJECTED.value, Status.DUPLICATE.value)]
    if not todo:
        return report
    # Glossary, cache, budget, guard and retry live in the summarize package (issue 3).
    from waikan.summarize.service import summarize_articles

    def done(outcome: Outcome) -> None:
        report.done.append(outcome.article)
        if on_item:
            on_item(outcome.article)

    def failed(article: ArticleRecord, exc: WaikanError) -> None:
        message = failure_message(article.id, exc)
        if isinstance(exc, ConflictError):
            report.notes.append(message)
            if on_note:
                on_note(message)
            return
        report.errors.append(message)
        if on_error:
            on_error(message)

    summarize_articles(ws, todo, done, failed)
    return report


def failure_message(article_id: int, exc: WaikanError) -> str:
    """A summarize failure's line, the same from ``waikan run`` and from a worker's task."""
    if isinstance(exc, ConflictError):  # the other change stays; nothing to undo
        return conflict_message(article_id, exc)
    return f"article {article_id}: {exc}"


def conflict_message(article_id: int, exc: ConflictError) -> str:
    """Why a summarize left an article alone: its post or status moved after this run
    read it (an editor, a publish, dedupe, or another ``summarize``/``serve``)."""
    head = (
        f"article {article_id} changed meanwhile (edited, approved, rejected, published, "
        f"marked a duplicate or summarized elsewhere; post now at revision {exc.revision})"
    )
    if not isinstance(exc, SummaryDropped):
        return f"{head}: skipped before the model call"
    spent = ", its spend is recorded" if exc.calls else ""
    return f"{head}: the new summary was dropped{spent}"


# -- stage: fetch (sources → discovered → fetched → extracted) ----------------------


def fetch_sources(
    ws: Workspace,
    on_item: Callable[[ArticleRecord], None] | None = None,
    on_error: Callable[[str], None] | None = None,
) -> StageReport:
    """Poll the sources that are due and fetch what they list (see waikan.sources.poll)."""
    from waikan.sources.poll import fetch_stage

    got = fetch_stage(ws, on_item=on_item, on_error=on_error)
    return StageReport("fetch", done=got.done, errors=got.errors)


def publish(
    ws: Workspace,
    on_item: Callable[[ArticleRecord], None] | None = None,
    on_error: Callable[[str], None] | None = None,
) -> StageReport:
    """Review (auto-approve) and send to every destination (see waikan.publish.run)."""
    from waikan.publish.run import publish as publish_run

    got = publish_run(ws)
    done = [a for i in got.published if (a := ws.store.article(i)) is not None]
    errors = got.errors + [
        f"delivery {d.id} (post {d.article_id} to {d.destination}) is uncertain: "
        "see waikan publish --resolve"
        for d in got.uncertain
    ]
    for message in errors:
        if on_error:
            on_error(message)
    return StageReport("publish", done=done, errors=errors)


STAGES: tuple[tuple[str, Callable[..., StageReport]], ...] = (
    ("fetch", fetch_sources),
    ("dedupe", dedupe),
    ("summarize", summarize),
    ("publish", publish),
)


def run(ws: Workspace) -> list[StageReport]:
    """Every stage once, in order (the inline runner)."""
    return [stage(ws) for _name, stage in STAGES]


# -- posts -----------------------------------------------------------------------------


def build_post(ws: Workspace, article_id: int) -> Post:
    store: Store = ws.store
    article = store.article(article_id)
    if article is None:
        raise WaikanError(f"article {article_id} not found")
    summary = store.current_summary(article_id)
    if summary is None and article.duplicate_of is not None:
        raise WaikanError(
            f"article {article_id} is a duplicate of article {article.duplicate_of}: "
            f"waikan show {article.duplicate_of}"
        )
    if summary is None:
        raise WaikanError(
            f"article {article_id} has no summary yet (status {article.status}); "
            "run: waikan summarize"
        )
    post = post_from(ws.config, article, summary, variant_glossary(ws))
    return with_outlets(ws, post)


def variant_glossary(ws: Workspace, variant: str | None = None) -> Glossary | None:
    """The merged glossary (user entries included) whose regional names a Traditional
    ``variant`` (default: the channel's) needs; None for zh-Hans, which needs none."""
    from waikan.summarize.variants import CONFIGS

    if (variant or str(ws.config["channel.variant"])) not in CONFIGS:
        return None
    # imported only here: the summarize service (model client, tokenizer) is a costly
    # import that a zh-Hans site build never needs
    from waikan.summarize.service import load_glossary

    return load_glossary(ws.store, ws.config)


def with_outlets(ws: Workspace, post: Post) -> Post:
    """The post with its story's outlets in ``meta["outlets"]`` (canonical first)."""
    from dataclasses import replace

    from waikan.dedupe.stories import story_of

    story = story_of(ws.store, post.id)
    if story is None:
        return post
    outlets = [o.as_dict() for o in story.outlets]
    return replace(post, meta={**post.meta, "story": story.id, "outlets": outlets})


def post_from(
    config: Config,
    article: ArticleRecord,
    summary: SummaryRecord,
    glossary: Glossary | None = None,
) -> Post:
    """The Post of a stored article and summary; the site build calls it for batches.
    ``glossary``: the regional names for a Traditional channel (see variant_glossary)."""
    url = article.url if article.url.startswith(("http://", "https://")) else None
    return Post(
        id=article.id,
        channel=str(config["channel.name"]),
        source=article.source_name,
        title=article.title,
        published=article.published,
        caption=article.caption,
        paragraphs=article.paragraphs,
        summary=to_variant(summary.paragraphs, str(config["channel.variant"]), glossary),
        url=url,
        title_zh=to_variant([summary.title_zh], str(config["channel.variant"]), glossary)[0]
        if summary.title_zh
        else None,
        language=article.language,
        image_url=article.image_url,
        status=article.status,
        reading_wpm=int(config["channel.reading_wpm"]),
        is_excerpt=summary.is_excerpt,
        meta={"variant": config["channel.variant"]},
    )
