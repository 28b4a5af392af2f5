"""Output shared by commands: the tab line and the JSON Lines record (SPEC §3)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from waikan.store import ArticleRecord


def article_json(a: ArticleRecord) -> dict[str, object]:
    return {
        "id": a.id,
        "status": a.status,
        "reason": a.reason,
        "source": a.source_name,
        "url": a.url,
        "title": a.title,
        "published": a.published,
        "word_count": a.word_count,
    }


def emit(a: ArticleRecord, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(article_json(a), ensure_ascii=False))
    else:
        status = f"{a.status}:{a.reason}" if a.reason else a.status
        click.echo(f"{a.id}\t{status}\t{a.title or ''}")


def error(message: str) -> None:
    click.echo(f"waikan: error: {message}", err=True)


def note(message: str) -> None:
    """An informational stderr line: something to know that is no failure."""
    click.echo(f"waikan: {message}", err=True)
