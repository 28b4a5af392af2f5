"""``waikan worker`` (a Celery worker running the stage tasks) and ``waikan status``."""

from __future__ import annotations

import json
import socket

import click

from waikan.cli._state import State


@click.command("worker")
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Pool processes: tasks this worker runs at once.",
)
@click.option("--name", help="Worker name (default: waikan-PID@host).")
@click.option(
    "--loglevel",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
)
@click.pass_obj
def worker(state: State, concurrency: int, name: str | None, loglevel: str) -> None:
    """Run pipeline tasks from the broker (queue.url) against the PostgreSQL store.

    An unreachable broker or database at start is one error line and exit 1.
    Stop with SIGTERM: running tasks finish; a killed worker's tasks go back
    to the queue after queue.visibility_timeout.
    """
    import os

    from waikan.queue.app import (
        QUEUE,
        broker_check,
        install_tolerant_transport,
        make_app,
        redact_worker_logs,
        requeue_at_the_front,
        store_check,
    )

    config = state.config()
    broker_check(config)
    store_check(config)
    app = make_app(config)
    install_tolerant_transport()
    redact_worker_logs(config)
    requeue_at_the_front()
    # The model SDK (~0.5 s of CPU) once, here, shared by the forked pool processes
    # instead of imported by each when it warms up its model client.
    import openai  # noqa: F401

    hostname = name or f"waikan-{os.getpid()}@{socket.gethostname()}"
    click.echo(f"waikan worker: {hostname}, {concurrency} processes", err=True)
    app.worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            f"--loglevel={loglevel.upper()}",
            f"--hostname={hostname}",
            "--pool=prefork",
            f"--queues={QUEUE}",
            "--without-gossip",
            "--without-mingle",
        ]
    )


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.pass_obj
def status(state: State, as_json: bool) -> None:
    """Queue depths, live workers, articles per status, task throughput, dead letters.

    Tasks: runs per outcome (ok, noop, failed, retried) in the last 5 minutes and the
    last hour; the latest task failures and dead letters.
    """
    from waikan.queue.outcomes import OUTCOMES
    from waikan.queue.status import queue_status

    got = queue_status(state.workspace())
    if as_json:
        click.echo(json.dumps(got.as_json(), ensure_ascii=False, sort_keys=True))
        return
    if got.queued is not None:
        click.echo(f"queue: {got.queued} waiting, {got.unacked} taken")
        click.echo(f"workers: {len(got.workers)}")
        for wname, running in got.workers.items():
            click.echo(f"  {wname}: {running} running")
    else:
        click.echo("queue: not configured (queue.url): stages run inline")
    statuses = ", ".join(f"{s} {n}" for s, n in sorted(got.statuses.items())) or "none"
    click.echo(f"articles: {statuses}")
    hour = ", ".join(f"{s} {n}" for s, n in sorted(got.last_hour.items())) or "none"
    click.echo(f"last hour: {hour}")
    click.echo("tasks (last 5 minutes / last hour):" if got.tasks_hour else "tasks: none run")
    for tname, hour_counts in sorted(got.tasks_hour.items()):
        recent = got.tasks_5m.get(tname, {})
        counts = ", ".join(
            f"{o} {recent.get(o, 0)}/{n}" for o in OUTCOMES if (n := hour_counts.get(o, 0))
        )
        click.echo(f"  {tname}: {counts}")
    click.echo(f"task failures: {got.failures_total}")
    for f in got.failures:
        click.echo(f"  {f.at:%Y-%m-%d %H:%M:%S} {f.task} {f.key}: {f.error}")
    click.echo(f"dead letters: {got.dead_total}")
    for d in got.dead:
        click.echo(f"  {d.at:%Y-%m-%d %H:%M:%S} {d.kind} {d.task or '-'}: {d.error}")
    for message in got.errors:
        click.echo(f"waikan: error: {message}", err=True)
    if got.errors:
        raise SystemExit(1)


def register(group: click.Group) -> None:
    group.add_command(worker)
    group.add_command(status)
