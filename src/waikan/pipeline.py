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

from lxml import etree
from lxml import html as lxml_html

from waikan.errors import ExtractError, FetchError, InputError, SummarizeError, WaikanError
from waikan.extract import extract
from waikan.fetch import fetch
from waikan.models import Post, Status
from waikan.store import ArticleRecord, Store
from waikan.summarize import SummaryRequest, backend_for
from waikan.workspace import Workspace

HTML_SUFFIXES = (".html", ".htm", ".html.gz", ".htm.gz", ".xhtml")


@dataclass
class StageReport:
    stage: str
    done: list[ArticleRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

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
            raise InputError(f"{path}: {size:,} bytes is over fetch.max_bytes ({max_bytes:,})")
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
        raise InputError(f"{path}: over fetch.max_bytes ({max_bytes:,}) once decompressed")
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
        existing = ws.store.article_by_url(item)
        if existing is not None:
            return existing
        got = fetch(
            item,
            max_bytes=max_bytes,
            timeout=float(cfg["fetch.timeout"]),
            user_agent=str(cfg["fetch.user_agent"]),
            allow_private=bool(cfg["fetch.allow_private_networks"]),
            max_redirects=int(cfg["fetch.max_redirects"]),
        )
        raw, page_url, http_status, headers = got.content, got.url, got.status_code, got.headers
        url = item
    else:
        raw = read_file(Path(item), max_bytes)
        page_url = canonical_link(raw)
        url = page_url or Path(item).resolve().as_uri()
    existing = ws.store.article_by_url(url)
    if existing is not None:
        return existing
    raw_id = ws.store.raw_by_sha256(hashlib.sha256(raw).hexdigest())
    if raw_id is not None and (same := ws.store.article_by_raw(raw_id)) is not None:
        return same
    try:
        extracted = extract(raw, url=page_url, min_words=int(cfg["extract.min_words"]))
    except ExtractError as exc:
        raise InputError(f"{item}: {exc}") from None
    return ws.store.add_article(url, extracted, raw=raw, http_status=http_status, headers=headers)


def ingest(
    ws: Workspace,
    inputs: Sequence[str],
    on_item: Callable[[ArticleRecord], None] | None = None,
    on_error: Callable[[str], None] | None = None,
) -> StageReport:
    report = StageReport("ingest")
    for item in expand_inputs(inputs):
        try:
            record = ingest_one(ws, item)
        except (InputError, FetchError) as exc:
            report.errors.append(str(exc))
            if on_error:
                on_error(str(exc))
            continue
        report.done.append(record)
        if on_item:
            on_item(record)
    return report


# -- stage: summarize ---------------------------------------------------------------


def summarize(
    ws: Workspace,
    ids: Iterable[int] | None = None,
    on_item: Callable[[ArticleRecord], None] | None = None,
    on_error: Callable[[str], None] | None = None,
) -> StageReport:
    """Summarize extracted articles (or the given ids); a failure leaves the status as it was."""
    report = StageReport("summarize")
    store = ws.store
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
    backend = backend_for(ws.config)
    for article in todo:
        request = SummaryRequest(
            title=article.title,
            source=article.source_name,
            published=article.published,
            paragraphs=article.paragraphs,
            language=article.language,
        )
        try:
            summary = backend.summarize(request)
        except SummarizeError as exc:
            report.errors.append(f"article {article.id}: {exc}")
            if on_error:
                on_error(f"article {article.id}: {exc}")
            if "unreachable" in str(exc) or "timed out" in str(exc):
                break  # the endpoint is down: the rest would fail the same way
            continue
        store.add_summary(article.id, summary)
        updated = store.article(article.id)
        assert updated is not None
        report.done.append(updated)
        if on_item:
            on_item(updated)
    return report


STAGES: tuple[tuple[str, Callable[..., StageReport]], ...] = (("summarize", summarize),)


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
    if summary is None:
        raise WaikanError(
            f"article {article_id} has no summary yet (status {article.status}); "
            "run: waikan summarize"
        )
    url = article.url if article.url.startswith(("http://", "https://")) else None
    return Post(
        id=article.id,
        channel=str(ws.config["channel.name"]),
        source=article.source_name,
        title=article.title,
        published=article.published,
        caption=article.caption,
        paragraphs=article.paragraphs,
        summary=summary.paragraphs,
        url=url,
        title_zh=summary.title_zh,
        language=article.language,
        image_url=article.image_url,
        status=article.status,
        reading_wpm=int(ws.config["channel.reading_wpm"]),
        is_excerpt=summary.is_excerpt,
        meta={"variant": ws.config["channel.variant"]},
    )
