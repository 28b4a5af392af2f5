"""``waikan run`` (every stage once, for cron) and ``waikan serve`` (the scheduler loop)."""

from __future__ import annotations

import click

from waikan.cli._state import State
from waikan.pipeline import StageReport
from waikan.scheduler import Scheduler, run_stages


def _report(reports: list[StageReport]) -> int:
    """One line per stage; the exit code: 1 if any stage failed, 3 if some items rejected."""
    code = 0
    for r in reports:
        rejected = sum(a.status in ("rejected", "failed") for a in r.done)
        click.echo(f"{r.stage}: {len(r.done)} done, {rejected} rejected, {len(r.errors)} errors")
        for message in r.errors:
            click.echo(f"waikan: error: {r.stage}: {message}", err=True)
        if r.exit_code == 1:
            code = 1
        elif r.exit_code == 3 and code == 0:
            code = 3
    return code


@click.command("run")
@click.pass_obj
def run_command(state: State) -> None:
    """Run every stage once: fetch due sources, extract, dedupe, summarize, and the rest.

    Cron-friendly: prints one line per stage; exit 1 when any stage failed,
    3 when some items were rejected, else 0.
    """
    raise SystemExit(_report(run_stages(state.workspace())))


@click.command("serve")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="Seconds between scheduler ticks.",
)
@click.option("--ticks", type=click.IntRange(min=1), help="Stop after this many ticks.")
@click.pass_obj
def serve(state: State, interval: float, ticks: int | None) -> None:
    """Poll each source on its interval and run the stages, until SIGTERM or SIGINT.

    A stop request lets the current stage finish; work already done is committed.
    """
    ws = state.workspace()
    scheduler = Scheduler(ws, interval=interval, on_tick=_report)
    click.echo(f"waikan serve: scheduler running every {interval:g} s (Ctrl-C stops)", err=True)
    scheduler.run(max_ticks=ticks)
    click.echo("waikan serve: stopped", err=True)


def register(group: click.Group) -> None:
    group.add_command(run_command)
    group.add_command(serve)
