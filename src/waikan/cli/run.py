"""``waikan run`` (every stage once, for cron) and ``waikan serve`` (the scheduler loop)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from waikan.cli._output import note
from waikan.cli._state import State
from waikan.errors import WaikanError

if TYPE_CHECKING:  # the stages load extraction, fetching, dedupe: only when run
    from waikan.pipeline import StageReport
    from waikan.scheduler import Runner
    from waikan.workspace import Workspace


def _report(reports: list[StageReport]) -> int:
    """One line per stage; the exit code: 1 if any stage failed, 3 if some items rejected.

    A stage's notes (an editor's change kept over a summary) are printed, not counted."""
    code = 0
    for r in reports:
        rejected = sum(a.status in ("rejected", "failed") for a in r.done)
        click.echo(f"{r.stage}: {len(r.done)} done, {rejected} rejected, {len(r.errors)} errors")
        for message in r.errors:
            click.echo(f"waikan: error: {r.stage}: {message}", err=True)
        for message in r.notes:
            note(f"{r.stage}: {message}")
        if r.exit_code == 1:
            code = 1
        elif r.exit_code == 3 and code == 0:
            code = 3
    return code


@click.command("run")
@click.option(
    "--distributed",
    is_flag=True,
    help="Enqueue each stage's tasks for waikan worker processes (queue.url) and wait.",
)
@click.pass_obj
def run_command(state: State, distributed: bool) -> None:
    """Run every stage once: fetch due sources, extract, dedupe, summarize, and the rest.

    Cron-friendly: prints one line per stage; exit 1 when any stage failed,
    3 when some items were rejected, else 0.
    """
    from waikan.scheduler import run_stages

    if distributed:
        from waikan.queue.coordinator import run_on_workers

        raise SystemExit(_report(run_on_workers(state.workspace())))
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
@click.option(
    "--web/--no-web",
    default=True,
    show_default=True,
    help="Also serve the site and the editor's desk (/desk) on web.host:web.port.",
)
@click.option("--port", type=click.IntRange(min=0, max=65535), help="Port (default web.port).")
@click.option(
    "--distributed",
    is_flag=True,
    help="Each tick enqueues the stages' tasks for waikan worker processes (queue.url).",
)
@click.pass_obj
def serve(
    state: State,
    interval: float,
    ticks: int | None,
    web: bool,
    port: int | None,
    distributed: bool,
) -> None:
    """Poll each source on its interval and run the stages, until SIGTERM or SIGINT.

    With the web side on (the default), the built site is served at / and the
    editor's desk at /desk, and the site is rebuilt when posts change.
    A stop request lets the current stage finish; work already done is committed.
    When several serve processes share a store, one leads (a lock in the
    store) and the others wait to take over; --ticks counts ticks as leader.
    """
    from waikan.queue.leader import leader_for
    from waikan.scheduler import Scheduler, run_stages

    ws = state.workspace()
    runner = _distributed_runner(ws) if distributed else run_stages
    server = None
    on_tick = _report
    if web:
        from waikan.web.serve import WebServer

        server = WebServer(ws, str(ws.config["web.host"]), port or int(ws.config["web.port"]))
        server.start()
        click.echo(f"waikan serve: site at {server.url}, desk at {server.url}desk", err=True)

        def on_tick(reports: list[StageReport]) -> int:
            if server is not None and any(r.done for r in reports):
                server.rebuilder.request()
            return _report(reports)

    def on_leading(leading: bool) -> None:
        what = "leading" if leading else "waiting: another scheduler leads"
        click.echo(f"waikan serve: {what}", err=True)

    def on_unreachable(why: str) -> None:
        click.echo(f"waikan serve: waiting: {why}; trying again", err=True)

    scheduler = Scheduler(
        ws,
        interval=interval,
        on_tick=on_tick,
        runner=runner,
        leader=leader_for(ws.store, ws.home),
        on_leading=on_leading,
        on_unreachable=on_unreachable,
    )
    click.echo(f"waikan serve: scheduler running every {interval:g} s (Ctrl-C stops)", err=True)
    try:
        scheduler.run(max_ticks=ticks)
    finally:
        if server is not None:
            server.stop()
    click.echo("waikan serve: stopped", err=True)


def _distributed_runner(ws: Workspace) -> Runner:
    """A tick that enqueues on the workers; broker, store and a worker are checked first."""
    from sqlalchemy.exc import SQLAlchemyError

    from waikan.pipeline import StageReport
    from waikan.queue.app import broker_check, make_app, store_check
    from waikan.queue.coordinator import (
        BROKER_ERRORS,
        WORKER_WAIT,
        run_distributed,
        wait_for_workers,
    )

    broker_check(ws.config)
    store_check(ws.config, ws)
    app = make_app(ws.config)
    wait_for_workers(app, WORKER_WAIT)

    def tick(ws: Workspace, should_stop: Callable[[], bool]) -> list[StageReport]:
        try:
            return run_distributed(ws, app, should_stop=should_stop)
        except (WaikanError, SQLAlchemyError, *BROKER_ERRORS) as exc:
            # Broker or database away for a moment: one line, and the next tick tries again.
            line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            return [StageReport("distributed", errors=[line])]

    return tick


def register(group: click.Group) -> None:
    group.add_command(run_command)
    group.add_command(serve)
