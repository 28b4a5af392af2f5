"""``waikan init`` and ``waikan config``."""

from __future__ import annotations

import click

from waikan import config as config_mod
from waikan.cli._state import State
from waikan.workspace import init_workspace


@click.command()
@click.pass_obj
def init(state: State) -> None:
    """Create a workspace with a commented example waikan.toml."""
    home = config_mod.resolve_home(state.home)
    path = init_workspace(home)
    click.echo(f"workspace ready: {home}\nconfig: {path}")


@click.command("config")
@click.pass_obj
def show_config(state: State) -> None:
    """Show every setting, its value and where it came from (secrets hidden)."""
    cfg = state.config()
    for name, value in cfg.redacted().items():
        click.echo(f"{name} = {value!r}  ({cfg.origins[name]})")


def register(group: click.Group) -> None:
    group.add_command(init)
    group.add_command(show_config)
