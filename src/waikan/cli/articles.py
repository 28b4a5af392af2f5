"""``waikan add``, ``list``, ``summarize`` and ``show``."""

from __future__ import annotations

import click

from waikan import pipeline
from waikan.cli._output import emit, error
from waikan.cli._state import State
from waikan.models import Status
from waikan.render import render_post


@click.command()
@click.argument("inputs", nargs=-1, required=True, metavar="URL|FILE|DIR…")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines output, one article per line.")
@click.pass_obj
def add(state: State, inputs: tuple[str, ...], as_json: bool) -> None:
    """Ingest articles now: URLs, HTML files (.html, .html.gz) or folders of them.

    Exit 3 when some pages were rejected (not an article, paywalled, too short).
    """
    ws = state.workspace()
    report = pipeline.ingest(ws, inputs, on_item=lambda a: emit(a, as_json), on_error=error)
    raise SystemExit(report.exit_code)


@click.command("list")
@click.option(
    "--status", type=click.Choice([s.value for s in Status]), help="Only articles in this status."
)
@click.option("--json", "as_json", is_flag=True, help="JSON Lines output.")
@click.pass_obj
def list_articles(state: State, status: str | None, as_json: bool) -> None:
    """List stored articles with their status."""
    for article in state.workspace().store.articles(status=status):
        emit(article, as_json)


@click.command()
@click.argument("ids", nargs=-1, type=int)
@click.option("--json", "as_json", is_flag=True, help="JSON Lines output.")
@click.pass_obj
def summarize(state: State, ids: tuple[int, ...], as_json: bool) -> None:
    """Summarize pending articles (or the given IDs) with the configured backend."""
    ws = state.workspace()
    report = pipeline.summarize(
        ws, list(ids) if ids else None, on_item=lambda a: emit(a, as_json), on_error=error
    )
    raise SystemExit(report.exit_code)


@click.command()
@click.argument("article_id", metavar="ID", type=int)
@click.option(
    "--format",
    "fmt",
    default="text",
    show_default=True,
    type=click.Choice(["text", "markdown", "html", "json"]),
    help="Rendering.",
)
@click.pass_obj
def show(state: State, article_id: int, fmt: str) -> None:
    """Print the post of article ID."""
    post = pipeline.build_post(state.workspace(), article_id)
    click.echo(render_post(post, fmt))


def register(group: click.Group) -> None:
    for command in (add, list_articles, summarize, show):
        group.add_command(command)
