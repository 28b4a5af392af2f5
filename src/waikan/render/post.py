"""The parts of a post every rendering shares (SPEC §1), defined once."""

from __future__ import annotations

from datetime import date

from waikan.models import Post, reading_minutes

NBSP = "\u00a0"
META_SEP = f" {NBSP} "
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def title_line(post: Post) -> str:
    """``{source}-{headline}``, or the headline alone without a known source."""
    headline = post.title or ""
    return f"{post.source}-{headline}" if post.source else headline


def day_of(published: str | None) -> date | None:
    if not published:
        return None
    try:
        return date.fromisoformat(published[:10])
    except ValueError:
        return None


def meta_fields(post: Post) -> list[str]:
    """Date (English, ``Month D, YYYY``), minutes and words, in the seed's bytes."""
    words = post.word_count
    fields = []
    if (day := day_of(post.published)) is not None:
        fields.append(f"{_MONTHS[day.month - 1]} {day.day}, {day.year}")
    fields.append(f"{reading_minutes(words, post.reading_wpm)}{NBSP}min")
    fields.append(f"{words}{NBSP}words")
    return fields


def meta_line(post: Post) -> str:
    return META_SEP.join(meta_fields(post))


def summary_line(post: Post) -> str:
    """The summary paragraphs on one line, as the text layout wants them."""
    return " ".join(p.strip() for p in post.summary if p.strip())


def timestamp(post: Post) -> str | None:
    return post.published if day_of(post.published) is not None else None


def post_path(post_id: int) -> str:
    """Where a post's page lives in the built site; channels link to it."""
    return f"posts/{post_id}.html"
