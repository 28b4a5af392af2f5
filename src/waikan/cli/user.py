"""``waikan user``: accounts and API tokens for the editor's desk (``/desk``)."""

from __future__ import annotations

import sys

import click

from waikan.cli._state import State
from waikan.errors import InputError


def _read_password() -> str:
    """From the prompt (asked twice) on a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    line = sys.stdin.readline()
    if not line:
        raise InputError("no password on stdin")
    return line.rstrip("\r\n")


@click.group("user")
def user_group() -> None:
    """Accounts for the editor's desk: editors review, admins also manage the desk."""


@user_group.command("add")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(["admin", "editor"]),
    default="editor",
    show_default=True,
    help="admin also manages sources, users and destinations.",
)
@click.pass_obj
def add(state: State, name: str, role: str) -> None:
    """Create an account; the password is read from a prompt or stdin (argon2id hash)."""
    from waikan.web.accounts import add_user

    user = add_user(state.workspace().store, name, role, _read_password())
    click.echo(f"{user.id}\t{user.name}\t{user.role}")


@user_group.command("token")
@click.argument("name")
@click.pass_obj
def token(state: State, name: str) -> None:
    """Issue an API token for /desk/api/v1 (printed once; only its hash is stored)."""
    from waikan.web.accounts import issue_token

    click.echo(issue_token(state.workspace().store, name))


@user_group.command("list")
@click.pass_obj
def list_users(state: State) -> None:
    """List accounts and their roles."""
    from waikan.web.accounts import users

    for u in users(state.workspace().store):
        click.echo(f"{u.id}\t{u.name}\t{u.role}")


def register(group: click.Group) -> None:
    group.add_command(user_group)
