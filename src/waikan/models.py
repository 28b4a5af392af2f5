"""Records passed between pipeline stages.

Plain frozen dataclasses: each stage takes and returns these, so a stage can
be tested alone and a backend can be swapped without touching its neighbours.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Status(enum.StrEnum):
    """Article lifecycle (SPEC §2); every transition is committed."""

    DISCOVERED = "discovered"
    FETCHED = "fetched"
    EXTRACTED = "extracted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    SUMMARIZED = "summarized"
    NEEDS_REVIEW = "needs_review"
    APPROVED = "approved"
    PUBLISHED = "published"
    FAILED = "failed"


@dataclass(frozen=True)
class Extracted:
    """What extraction learns from one HTML page.

    ``published`` is ``YYYY-MM-DDTHH:MM:SSZ`` (UTC) when the page declares an
    instant with a zone, ``YYYY-MM-DD`` when only the day is known, else None.
    ``paragraphs`` is the article body in order, wire dateline and trailer
    boilerplate already removed. ``reject_reason`` is set for pages that are
    not articles (``not_article``), paywalled or teaser pages (``paywalled``)
    and bodies under the minimum word count (``too_short``).
    """

    title: str | None
    source: str | None
    published: str | None
    caption: str | None
    paragraphs: tuple[str, ...]
    language: str | None = None
    url: str | None = None
    modified: str | None = None
    authors: tuple[str, ...] = ()
    image_url: str | None = None
    reject_reason: str | None = None

    @property
    def body(self) -> str:
        return "\n\n".join(self.paragraphs)

    @property
    def word_count(self) -> int:
        """Whitespace tokens of caption + body (SPEC §1: title and summary excluded)."""
        words = sum(len(p.split()) for p in self.paragraphs)
        return words + (len(self.caption.split()) if self.caption else 0)


@dataclass(frozen=True)
class Summary:
    """A Chinese summary (or a labelled excerpt) as the backend produced it."""

    paragraphs: tuple[str, ...]
    backend: str
    model: str | None
    prompt_version: str | None
    tokens_in: int = 0
    tokens_out: int = 0
    title_zh: str | None = None
    is_excerpt: bool = False


@dataclass(frozen=True)
class Post:
    """Everything a renderer needs: one article, its summary, the channel."""

    id: int
    channel: str
    source: str | None
    title: str | None
    published: str | None
    caption: str | None
    paragraphs: tuple[str, ...]
    summary: tuple[str, ...]
    url: str | None = None
    title_zh: str | None = None
    language: str | None = None
    image_url: str | None = None
    status: str = Status.SUMMARIZED.value
    reading_wpm: int = 265
    is_excerpt: bool = False
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def word_count(self) -> int:
        words = sum(len(p.split()) for p in self.paragraphs)
        return words + (len(self.caption.split()) if self.caption else 0)


def reading_minutes(words: int, wpm: int = 265) -> int:
    """Medium's rule (SPEC §1): ``max(1, ceil(words / wpm))``."""
    return max(1, -(-words // wpm))
