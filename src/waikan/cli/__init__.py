"""The ``waikan`` command line: one module per command group.

:func:`main` turns every :class:`~waikan.errors.WaikanError` into one line on
stderr and its exit code (0 done, 1 error, 2 usage, 3 some items rejected),
so users never see a traceback for bad input.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from waikan import config as config_mod
from waikan.cli._state import State
from waikan.errors import WaikanError, storage_fault, storage_message


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home", metavar="DIR", help="Workspace folder (env WAIKAN_HOME, default ./waikan-data)."
)
@click.option(
    "--set",
    "settings",
    metavar="TABLE.KEY=VALUE",
    multiple=True,
    help="Override a setting for this run (beats waikan.toml and WAIKAN_* variables).",
)
@click.version_option(package_name="waikan")
@click.pass_context
def cli(ctx: click.Context, home: str | None, settings: tuple[str, ...]) -> None:
    """waikan (外刊): foreign news pages into Chinese digest posts."""
    overrides = dict(config_mod.parse_override(s) for s in settings)
    state = State(home, overrides)
    ctx.obj = state
    ctx.call_on_close(state.close)


def _register() -> None:
    from waikan.cli import (
        articles,
        demo,
        doctor,
        extract,
        glossary,
        publish,
        queue,
        run,
        site,
        sources,
        stats,
        stories,
        user,
        workspace,
    )

    for module in (
        workspace,
        articles,
        extract,
        demo,
        stories,
        site,
        publish,
        sources,
        run,
        glossary,
        stats,
        doctor,
        user,
        queue,
    ):
        module.register(cli)


_register()


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="waikan", standalone_mode=False)
    except WaikanError as exc:
        click.echo(f"waikan: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("waikan: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("waikan: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except OSError as exc:  # a disk fault on a path no write helper wrapped: still one line
        if (kind := storage_fault(exc)) is None:
            raise
        click.echo(f"waikan: error: {storage_message(kind, exc.filename)}", err=True)
        sys.exit(1)
