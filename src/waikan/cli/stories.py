"""``waikan stories``: story clusters and the outlets that carried them."""

from __future__ import annotations

import json

import click

from waikan import pipeline
from waikan.cli._state import State
from waikan.dedupe.stories import list_stories


@click.command()
@click.option("--limit", type=click.IntRange(min=1), help="Only the newest N stories.")
@click.option(
    "--min-outlets",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Only stories carried by at least this many outlets.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON Lines output, one story per line.")
@click.pass_obj
def stories(state: State, limit: int | None, min_outlets: int, as_json: bool) -> None:
    """List stories (one post each) with every outlet that reported them.

    Articles not yet seen by dedupe are linked first, so the list is current.
    """
    ws = state.workspace()
    pipeline.dedupe(ws)
    for story in list_stories(ws.store, limit=limit, min_outlets=min_outlets):
        canonical = ws.store.article(story.canonical_id)
        if as_json:
            record = {
                "id": story.id,
                "status": canonical.status if canonical else None,
                "reason": canonical.reason if canonical else None,
                "source": canonical.source_name if canonical else None,
                "url": canonical.url if canonical else None,
                "title": story.title,
                "published": story.published,
                "canonical_id": story.canonical_id,
                "pending_update_id": story.pending_update_id,
                "outlets": [o.as_dict() for o in story.outlets],
            }
            click.echo(json.dumps(record, ensure_ascii=False))
            continue
        flag = (
            f"\tupdate pending: article {story.pending_update_id}"
            if story.pending_update_id
            else ""
        )
        n = len(story.outlets)
        click.echo(f"{story.id}\t{n} outlet{'s' if n != 1 else ''}\t{story.title or ''}{flag}")
        for o in story.outlets:
            mark = "*" if o.article_id == story.canonical_id else " "
            click.echo(f"  {mark}{o.article_id}\t{o.source or '-'}\t{o.url}")


def register(group: click.Group) -> None:
    group.add_command(stories)
