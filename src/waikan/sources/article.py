"""One discovered article: fetch → extract → the source's policy → store, in one commit.

``waikan fetch`` (:mod:`waikan.sources.poll`) and the distributed worker
(:mod:`waikan.queue.tasks`) both call :func:`fetch_article`, so either way
the same page ends in the same row. :class:`SourcePolicy` is what a source
says about its articles (SPEC §2.1), applied to local pages (WARC, folders)
as well:

- ``include``/``exclude`` filters on title and body (``rejected``/``filtered``);
- ``language``: the languages the source publishes in (``en`` or ``en,es``).
  A page that declares or is detected in another language is ``rejected``
  with reason ``language``; a page with no language of its own takes the
  source's first one;
- ``body_policy`` (licensing; the original is always linked): ``full`` keeps
  the whole body, ``first_n`` only the first ``first_n`` paragraphs (default
  3) and ``none`` never fetches the page: the article is what the feed
  itself published (title, date, summary).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import Any

from waikan.errors import ExtractError, FetchError
from waikan.extract.limited import Limits
from waikan.fetch import Fetcher, PermanentFetchError, TooLargeError, TransientFetchError
from waikan.models import Extracted, Status
from waikan.sources.filters import Filters
from waikan.sources.repo import Discovered, SourceRecord, SourceRepo
from waikan.store import ArticleRecord, Store

__all__ = ["DEFAULT_FIRST_N", "FetchOutcome", "SourcePolicy", "fetch_article"]

DEFAULT_FIRST_N = 3
RETRY_LATER = "retry later"

# Runs ``fn(*args, **kw)`` somewhere (a thread pool, or inline) and awaits the result.
Offload = Callable[..., Awaitable[Any]]


async def _inline(fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    return fn(*args, **kw)


def _primary(tag: str) -> str:
    return tag.strip().replace("_", "-").split("-")[0].lower()


@dataclass(frozen=True)
class SourcePolicy:
    """What one source's settings do to its articles (see the module docstring)."""

    label: str
    filters: Filters
    languages: tuple[str, ...] = ()
    body_policy: str = "full"
    first_n: int = DEFAULT_FIRST_N

    @classmethod
    def of(cls, source: SourceRecord) -> SourcePolicy:
        """Raises ConfigError for a filter pattern RE2 rejects (naming the source)."""
        langs = tuple(p.strip() for p in (source.language or "").split(",") if p.strip())
        try:
            first_n = max(1, int(source.setting("first_n", DEFAULT_FIRST_N)))
        except (TypeError, ValueError):
            first_n = DEFAULT_FIRST_N
        return cls(
            label=source.label,
            filters=Filters.from_settings(source.settings, source.label),
            languages=langs,
            body_policy=str(source.setting("body_policy", "full")),
            first_n=first_n,
        )

    @property
    def fetches_page(self) -> bool:
        return self.body_policy != "none"

    def apply(self, extracted: Extracted) -> tuple[Extracted, Status | None, str | None]:
        """The article as the source allows it, and a status/reason that overrides extraction's."""
        if extracted.reject_reason:
            return extracted, None, None
        if self.filters.active and not self.filters.keeps(extracted.title, extracted.body):
            return extracted, Status.REJECTED, "filtered"
        if self.languages:
            if extracted.language is None:
                extracted = replace(extracted, language=self.languages[0])
            elif _primary(extracted.language) not in {_primary(x) for x in self.languages}:
                return (
                    extracted,
                    Status.REJECTED,
                    f"language: the page is {extracted.language}, the source "
                    f"{','.join(self.languages)}",
                )
        if self.body_policy == "first_n":
            extracted = replace(extracted, paragraphs=extracted.paragraphs[: self.first_n])
        elif self.body_policy == "none":  # a page in hand (WARC, folder): its lede, as a feed
            extracted = replace(extracted, paragraphs=extracted.paragraphs[:1], caption=None)
        return extracted, None, None


@dataclass(frozen=True)
class FetchOutcome:
    """``status``: the article's status now, or ``retry later``; ``error`` is one line."""

    status: str
    record: ArticleRecord | None = None
    error: str | None = None


def _feed_paragraphs(summary: Iterable[str]) -> tuple[str, ...]:
    """The feed's own text, tags dropped (feeds carry HTML in descriptions)."""
    from lxml import etree
    from lxml import html as lxml_html

    out = []
    for part in summary:
        text = part
        if "<" in part:
            with suppress(etree.ParserError, ValueError):
                text = lxml_html.fragment_fromstring(part, create_parent="div").text_content()
        text = " ".join(text.split())
        if text:
            out.append(text)
    return tuple(out)


def _from_feed(record: ArticleRecord, name: str | None) -> Extracted:
    """Body policy ``none``: the article is what the listing said (its title, date, summary)."""
    paragraphs = _feed_paragraphs(record.paragraphs)
    return Extracted(
        title=record.title,
        source=name,
        published=record.published,
        caption=None,
        paragraphs=paragraphs,
        url=record.url,
        reject_reason=None if paragraphs or record.title else "too_short",
    )


async def fetch_article(
    store: Store,
    fetcher: Fetcher,
    item: Discovered,
    source: SourceRecord | None,
    *,
    min_words: int,
    max_attempts: int,
    limits: Limits | None = None,
    policy: SourcePolicy | None = None,
    extract_in: Offload = asyncio.to_thread,
    store_in: Offload = _inline,
) -> FetchOutcome:
    """Fetch, extract and store one ``discovered`` article; a transient failure leaves it so.

    ``policy`` defaults to the source's (callers that handle many articles pass
    a cached one); ``extract_in``/``store_in`` choose where the CPU and database
    work runs.
    """
    if policy is None and source is not None:
        policy = SourcePolicy.of(source)
    name = source.name if source is not None else item.source_name
    if policy is not None and not policy.fetches_page:
        row = store.article(item.id)
        if row is None:
            return FetchOutcome("gone")
        extracted, status, reason = policy.apply(_from_feed(row, name))
        done = await store_in(
            store.complete_article,
            item.id,
            extracted,
            raw="\n\n".join(row.paragraphs or (row.title or row.url,)).encode(),
            status=status,
            reason=reason,
        )
        return FetchOutcome(done.status, done)
    try:
        got = await fetcher.get(item.url)
    except TooLargeError as exc:  # the page's fault: rejected, kept out of the retries
        store.set_status(item.id, Status.REJECTED, exc.reason)
        return FetchOutcome(Status.REJECTED.value, store.article(item.id))
    except PermanentFetchError as exc:
        store.set_status(item.id, Status.FAILED, str(exc))
        return FetchOutcome(Status.FAILED.value, error=str(exc))
    except (TransientFetchError, FetchError) as exc:
        gave_up = SourceRepo(store).fail_attempt(item.id, str(exc), max_attempts)
        return FetchOutcome(Status.FAILED.value if gave_up else RETRY_LATER, error=str(exc))
    body: bytes | str = (
        got.content.decode(got.charset, errors="replace") if got.charset else got.content
    )
    try:
        extracted = await extract_in(
            functools.partial(
                (limits or Limits()).extract, url=got.url, source_name=name, min_words=min_words
            ),
            body,
        )
    except ExtractError as exc:
        store.set_status(item.id, Status.REJECTED, f"not_html: {exc}")
        return FetchOutcome(Status.REJECTED.value, store.article(item.id))
    status = reason = None
    if policy is not None:
        extracted, status, reason = policy.apply(extracted)
    done = await store_in(
        store.complete_article,
        item.id,
        extracted,
        raw=got.content,
        http_status=got.status_code,
        headers=got.headers,
        status=status,
        reason=reason,
    )
    return FetchOutcome(done.status, done)
