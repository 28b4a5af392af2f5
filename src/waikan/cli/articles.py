"""``waikan add``, ``list``, ``summarize`` and ``show``."""

from __future__ import annotations

import json

import click

from waikan.cli._output import emit, error, note
from waikan.cli._state import State
from waikan.models import Status


@click.command()
@click.argument("inputs", nargs=-1, required=True, metavar="URL|FILE|WARC|DIR…")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines output, one article per line.")
@click.pass_obj
def add(state: State, inputs: tuple[str, ...], as_json: bool) -> None:
    """Ingest articles now: URLs, HTML files (.html, .html.gz), folders of them, or WARC files.

    Each HTML response record of a WARC file (.warc, .warc.gz; e.g. CC-NEWS)
    becomes an article without any network access.

    Exit 3 when some pages were rejected (not an article, paywalled, too short).
    """
    from waikan import pipeline  # extraction, fetching: loaded by the commands that use them

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
    """Summarize pending articles (or the given IDs) with the configured backend.

    A post an editor edits, approves or rejects while the model answers keeps the
    editor's version: one informational line on stderr, no error (the exit code is
    that of the other articles), and the call stays in the spend.
    """
    from waikan import pipeline

    ws = state.workspace()
    report = pipeline.summarize(
        ws,
        list(ids) if ids else None,
        on_item=lambda a: emit(a, as_json),
        on_error=error,
        on_note=note,
    )
    raise SystemExit(report.exit_code)


@click.command()
@click.argument("article_id", metavar="ID", type=int)
@click.option(
    "--format",
    "fmt",
    default="text",
    show_default=True,
    type=click.Choice(["text", "markdown", "html", "json", "telegram"]),
    help="Rendering.",
)
@click.pass_obj
def show(state: State, article_id: int, fmt: str) -> None:
    """Print the post of article ID.

    A summary held for review has its guard findings listed on stderr (and in
    the json rendering's ``findings``), never in the text rendering.
    """
    from waikan import pipeline
    from waikan.render import render_post
    from waikan.summarize.review import current_findings

    ws = state.workspace()
    post = pipeline.build_post(ws, article_id)
    rendered = render_post(post, fmt)
    findings = current_findings(ws.store, article_id)
    if fmt == "json" and rendered.lstrip().startswith("{"):
        fields = json.loads(rendered)
        fields["findings"] = [{"kind": k, "message": m} for k, m in findings]
        rendered = json.dumps(fields, ensure_ascii=False, indent=2)
    click.echo(rendered)
    if findings:
        click.echo(f"waikan: article {article_id} is {post.status}; guard findings:", err=True)
        for _kind, message in findings:
            click.echo(f"  {message}", err=True)


def register(group: click.Group) -> None:
    for command in (add, list_articles, summarize, show):
        group.add_command(command)
