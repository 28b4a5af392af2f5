"""``waikan publish`` and the editor's ``approve``, ``reject``, ``edit``, ``unpublish``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from waikan.cli._output import error
from waikan.cli._state import State
from waikan.errors import InputError, UsageError

if TYPE_CHECKING:  # the publish package (store, destinations) loads when a command runs
    from waikan.publish.run import Outcome


def _outcome_line(ws_state: State, o: Outcome, as_json: bool) -> None:
    if as_json:
        a = ws_state.workspace().store.article(o.article_id)
        record = {
            "id": o.article_id,
            "status": a.status if a else None,
            "reason": o.detail or (a.reason if a else None),
            "source": a.source_name if a else None,
            "url": a.url if a else None,
            "title": a.title if a else None,
            "published": a.published if a else None,
            "destination": o.destination,
            "delivery": o.status,
        }
        click.echo(json.dumps(record, ensure_ascii=False))
    else:
        detail = f"\t{o.detail}" if o.detail else ""
        click.echo(f"{o.article_id}\t{o.destination}\t{o.status}{detail}")


@click.command("publish")
@click.option(
    "--resolve",
    is_flag=True,
    help="List deliveries in doubt after a crash or timeout, or settle them with "
    "--delivered/--resend/--drop; sends nothing.",
)
@click.option(
    "--delivered",
    "delivered",
    multiple=True,
    type=int,
    metavar="DELIVERY",
    help="With --resolve: the part in doubt did arrive (it is not sent again).",
)
@click.option(
    "--resend",
    "resend",
    multiple=True,
    type=int,
    metavar="DELIVERY",
    help="With --resolve: it did not arrive; send it on the next run.",
)
@click.option(
    "--drop",
    "drop",
    multiple=True,
    type=int,
    metavar="DELIVERY",
    help="With --resolve: give this delivery up (status failed).",
)
@click.option("--only", metavar="ID", help="Only the destination [publish.ID].")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines output, one delivery per line.")
@click.pass_obj
def publish_cmd(
    state: State,
    resolve: bool,
    delivered: tuple[int, ...],
    resend: tuple[int, ...],
    drop: tuple[int, ...],
    only: str | None,
    as_json: bool,
) -> None:
    """Send approved posts to every [publish.<id>] destination, exactly once.

    One failing destination does not stop the others; the run then exits 1
    with one error line per problem. Exit 3 when deliveries are in doubt
    (see --resolve).
    """
    from waikan.publish import outbox
    from waikan.publish.run import actor, publish, publish_lock

    ws = state.workspace()
    if (delivered or resend or drop) and not resolve:
        raise UsageError("--delivered, --resend and --drop go with --resolve")
    if resolve:
        with publish_lock(ws):
            outbox.recover(ws.store)
            for decision, ids in (("delivered", delivered), ("resend", resend), ("drop", drop)):
                for delivery_id in ids:
                    d = outbox.resolve(ws.store, delivery_id, decision, actor())
                    click.echo(f"{d.id}\t{d.article_id}\t{d.destination}\t{decision}")
            left = outbox.deliveries(ws.store, status=outbox.UNCERTAIN)
        for d in left:
            if as_json:
                click.echo(
                    json.dumps(
                        {
                            "delivery": d.id,
                            "id": d.article_id,
                            "destination": d.destination,
                            "revision": d.revision,
                            "status": d.status,
                            "reason": d.error,
                            "known": d.describe(),
                        },
                        ensure_ascii=False,
                    )
                )
            else:
                click.echo(
                    f"{d.id}\t{d.article_id}\t{d.destination}\tuncertain\t{d.describe()}"
                    f"\t{d.error or ''}"
                )
        if left and not (delivered or resend or drop) and not as_json:
            click.echo(
                "settle each with: waikan publish --resolve --delivered ID | --resend ID "
                "| --drop ID",
                err=True,
            )
        raise SystemExit(3 if left else 0)
    report = publish(ws, only=only, on_outcome=lambda o: _outcome_line(state, o, as_json))
    for o in report.outcomes:
        if o.status == "deferred":
            _outcome_line(state, o, as_json)
    for d in report.recovered:
        error(
            f"delivery {d.id} (post {d.article_id} to {d.destination}) was interrupted: "
            "uncertain; see waikan publish --resolve"
        )
    for message in report.errors:
        error(message)
    raise SystemExit(report.exit_code)


@click.command()
@click.argument("article_id", type=int, metavar="ID")
@click.pass_obj
def approve(state: State, article_id: int) -> None:
    """Approve the post of article ID for publishing (audited)."""
    from waikan.publish import review as review_mod
    from waikan.publish.run import actor

    status = review_mod.approve(state.workspace(), article_id, actor())
    click.echo(f"{article_id}\t{status}")


@click.command()
@click.argument("article_id", type=int, metavar="ID")
@click.option("--reason", help="Why (kept in the audit log and the article's reason).")
@click.pass_obj
def reject(state: State, article_id: int, reason: str | None) -> None:
    """Reject article ID: it is never published (audited)."""
    from waikan.publish import review as review_mod
    from waikan.publish.run import actor

    status = review_mod.reject(state.workspace(), article_id, actor(), reason)
    click.echo(f"{article_id}\t{status}")


@click.command()
@click.argument("article_id", type=int, metavar="ID")
@click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="The new summary (paragraphs separated by blank lines); - reads stdin. "
    "Without it, $EDITOR opens the current summary.",
)
@click.pass_obj
def edit(state: State, article_id: int, path: str | None) -> None:
    """Edit the summary of article ID; the guard runs again and the edit is audited.

    A published post is then sent again as a new revision: Telegram messages
    are edited in place.
    """
    from waikan.publish import review as review_mod
    from waikan.publish.run import actor

    ws = state.workspace()
    if path == "-":
        text = sys.stdin.read()
    elif path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: cannot read: {exc}") from None
    else:
        current = ws.store.current_summary(article_id)
        if current is None:
            raise UsageError(f"article {article_id} has no summary to edit")
        edited = click.edit("\n\n".join(current.paragraphs) + "\n")
        if edited is None:
            raise UsageError("edit aborted: the summary is unchanged")
        text = edited
    result = review_mod.edit(ws, article_id, text, actor())
    click.echo(f"{article_id}\t{result.status}\trevision {result.revision}")
    for finding in result.findings:
        error(f"guard: {finding}")
    raise SystemExit(3 if result.findings else 0)


@click.command()
@click.argument("article_id", type=int, metavar="ID")
@click.pass_obj
def unpublish(state: State, article_id: int) -> None:
    """Take article ID back: delete its Telegram messages, tell webhooks, drop it from the site.

    Run it again after an error to finish the destinations that failed.
    """
    from waikan.publish import review as review_mod
    from waikan.publish.run import actor

    errors = review_mod.unpublish(state.workspace(), article_id, actor())
    for message in errors:
        error(message)
    if not errors:
        click.echo(f"{article_id}\tunpublished")
    raise SystemExit(1 if errors else 0)


def register(group: click.Group) -> None:
    for command in (publish_cmd, approve, reject, edit, unpublish):
        group.add_command(command)
