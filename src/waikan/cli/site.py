"""``waikan build``: render the static site and its feeds."""

from __future__ import annotations

import json

import click

from waikan.cli._state import State


@click.command()
@click.option(
    "--out",
    metavar="DIR",
    type=click.Path(file_okay=False),
    default=None,
    help="Output folder (default: site.path, i.e. HOME/site).",
)
@click.option("--full", is_flag=True, help="Re-render every page, ignoring the last build.")
@click.option("--json", "as_json", is_flag=True, help="Print the build report as one JSON line.")
@click.pass_obj
def build(state: State, out: str | None, full: bool, as_json: bool) -> None:
    """Render the static site: post pages, listings, feeds, sitemap and search.

    Incremental: only pages whose posts, templates or settings changed are
    rendered again, and only files whose bytes changed are rewritten.
    Templates are overridden by files in HOME/templates/site/.
    """
    from waikan.render.site import build_site

    report = build_site(state.workspace(), out, full=full)
    for warning in report.warnings:
        click.echo(f"waikan: warning: {warning}", err=True)
    if as_json:
        record = {
            "out": str(report.out),
            "posts": report.posts,
            "written": len(report.written),
            "unchanged": report.unchanged,
            "removed": len(report.removed),
            "warnings": report.warnings,
            "seconds": round(report.seconds, 3),
        }
        click.echo(json.dumps(record, ensure_ascii=False))
        return
    if report.posts == 0:
        click.echo("no posts yet: built an empty site (add and summarize articles first)")
    click.echo(
        f"built {report.posts} posts into {report.out}: {len(report.written)} files written, "
        f"{report.unchanged} unchanged, {len(report.removed)} removed "
        f"({report.seconds:.2f} s)"
    )
    click.echo(f"open: {report.out / 'index.html'}")


def register(group: click.Group) -> None:
    group.add_command(build)
