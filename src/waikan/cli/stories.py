"""``waikan stories``: story clusters, the outlets that carried them, and their pending updates."""

from __future__ import annotations

import json

import click

from waikan.cli._state import State


@click.group(invoke_without_command=True)
@click.option("--limit", type=click.IntRange(min=1), help="Only the newest N stories.")
@click.option(
    "--min-outlets",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Only stories carried by at least this many outlets.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON Lines output, one story per line.")
@click.pass_context
def stories(ctx: click.Context, limit: int | None, min_outlets: int, as_json: bool) -> None:
    """List stories (one post each) with every outlet that reported them.

    Articles not yet seen by dedupe are linked first, so the list is current.
    With dedupe.update_policy = "ask", a story whose text changed is listed with
    "update pending": approve-update or decline-update it.
    """
    if ctx.invoked_subcommand is not None:
        return
    from waikan import pipeline  # dedupe (numpy) and the stages: only when listing
    from waikan.dedupe.stories import list_stories

    state: State = ctx.obj
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


@stories.command("approve-update")
@click.argument("story_id", metavar="ID", type=int)
@click.pass_obj
def approve(state: State, story_id: int) -> None:
    """Re-summarize story ID from its pending update (the next summarize pays once).

    The update becomes the story's canonical article; the old summary stays in
    the history.
    """
    from waikan.dedupe.index import approve_update

    article_id = approve_update(state.workspace().store, story_id)
    click.echo(f"{story_id}\tupdate approved: article {article_id} will be summarized")


@stories.command("decline-update")
@click.argument("story_id", metavar="ID", type=int)
@click.pass_obj
def decline(state: State, story_id: int) -> None:
    """Keep story ID's current summary; its pending update stays a duplicate."""
    from waikan.dedupe.index import decline_update

    article_id = decline_update(state.workspace().store, story_id)
    click.echo(f"{story_id}\tupdate declined: article {article_id} stays a duplicate")


def register(group: click.Group) -> None:
    group.add_command(stories)
