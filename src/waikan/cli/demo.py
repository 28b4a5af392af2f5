"""``waikan demo``: the whole pipeline on the sample pages shipped in the package."""

from __future__ import annotations

import tempfile
from importlib.resources import as_file, files
from pathlib import Path

import click

from waikan import config as config_mod
from waikan.cli._output import emit, error
from waikan.cli._state import State
from waikan.workspace import Workspace, init_workspace


@click.command()
@click.option(
    "--keep",
    "keep_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Workspace folder to use (default: a new temporary folder).",
)
@click.pass_obj
def demo(state: State, keep_dir: str | None) -> None:
    """Run add → summarize → show on the bundled sample articles, offline."""
    from waikan import pipeline
    from waikan.render import render_post

    home = Path(keep_dir) if keep_dir else Path(tempfile.mkdtemp(prefix="waikan-demo-"))
    init_workspace(home)
    # The demo never reads the user's environment: it is the offline default.
    overrides = {"llm.backend": "extractive", **state.overrides}
    ws = Workspace(config_mod.load(home, env={}, overrides=overrides))
    try:
        with as_file(files("waikan.demo").joinpath("samples")) as samples:
            click.echo(f"== add: {samples}")
            added = pipeline.ingest(
                ws, [str(samples)], on_item=lambda a: emit(a, False), on_error=error
            )
        click.echo("== summarize (extractive backend: offline excerpts, no model)")
        summarized = pipeline.summarize(ws, on_item=lambda a: emit(a, False), on_error=error)
        for article in summarized.done:
            click.echo(f"\n== show {article.id}\n")
            click.echo(render_post(pipeline.build_post(ws, article.id), "text"))
    finally:
        ws.close()
    click.echo(f"\nworkspace: {home}\ndatabase: {home / 'waikan.db'}")
    click.echo(f"try: waikan --home {home} list")
    failed = added.errors or summarized.errors
    raise SystemExit(1 if failed else 0)


def register(group: click.Group) -> None:
    group.add_command(demo)
