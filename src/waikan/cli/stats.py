"""``waikan stats``: articles per status, source and day; tokens and cost per day and model."""

from __future__ import annotations

import json
from collections import Counter

import click

from waikan.cli._state import State
from waikan.summarize.budget import Budget, spend_rows


@click.command()
@click.option(
    "--days", type=click.IntRange(1), default=14, show_default=True, help="Days of spend to show."
)
@click.option("--json", "as_json", is_flag=True, help="JSON Lines output.")
@click.pass_obj
def stats(state: State, days: int, as_json: bool) -> None:
    """Counts per status, source and day; LLM tokens and cost per day and model."""
    ws = state.workspace()
    store = ws.store
    articles = store.articles()
    by_status = Counter(a.status for a in articles)
    by_source = Counter(a.source_name or "-" for a in articles)
    by_day = Counter((a.published or "-")[:10] for a in articles)
    rows = spend_rows(store, days)
    budget = Budget(store, ws.config)
    tokens_today, cost_today = budget.spent()
    if as_json:
        for name, counter in (("status", by_status), ("source", by_source), ("day", by_day)):
            for key, n in sorted(counter.items()):
                click.echo(json.dumps({"type": name, "key": key, "count": n}, ensure_ascii=False))
        for r in rows:
            click.echo(json.dumps({"type": "spend", **r.__dict__}, ensure_ascii=False))
        click.echo(
            json.dumps(
                {
                    "type": "budget",
                    "day": budget.today(),
                    "tokens": tokens_today,
                    "token_budget": budget.max_tokens,
                    "cost": round(cost_today, 6),
                    "cost_budget": budget.max_cost,
                }
            )
        )
        return
    click.echo("articles by status:")
    for key, n in sorted(by_status.items()):
        click.echo(f"  {key:14} {n}")
    click.echo("articles by source:")
    for key, n in by_source.most_common(20):
        click.echo(f"  {key:14} {n}")
    click.echo("articles by day (published):")
    for key, n in sorted(by_day.items(), reverse=True)[:days]:
        click.echo(f"  {key:14} {n}")
    click.echo("LLM spend (day, model, calls, cache hits, tokens in/out, cost):")
    for r in rows:
        click.echo(
            f"  {r.day}  {r.model:24} {r.calls:6} {r.cached:6} "
            f"{r.tokens_in:10,} {r.tokens_out:10,} {r.cost:10.4f}"
        )
    if not rows:
        click.echo("  (none yet)")
    click.echo(
        f"today {budget.today()}: {tokens_today:,} of {budget.max_tokens:,} tokens, "
        f"{cost_today:.4f} of {budget.max_cost:g} spent"
    )


def register(group: click.Group) -> None:
    group.add_command(stats)
