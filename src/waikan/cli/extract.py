"""``waikan extract``: extraction alone, no workspace (debugging and evaluation)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from waikan import config as config_mod
from waikan.cli._output import error
from waikan.cli._state import State
from waikan.errors import ExtractError, InputError
from waikan.models import reading_minutes


@click.command("extract")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="JSON Lines output (the default is text).")
@click.option("--url", help="The page's URL, when known (helps source names and links).")
@click.pass_obj
def extract_cmd(state: State, files: tuple[str, ...], as_json: bool, url: str | None) -> None:
    """Extract title, date, caption and body from HTML files, without a workspace.

    The same ``extract.*`` limits as a run apply, so a page that a run rejects as
    ``too_deep`` or ``timeout`` is rejected here too."""
    from waikan.extract.limited import extract_for  # trafilatura: only this command's
    from waikan.pipeline import read_file

    cfg = config_mod.load(state.home, overrides=state.overrides)
    failed = rejected = False
    for name in files:
        try:
            raw = read_file(Path(name), int(cfg["fetch.max_bytes"]))
            ex = extract_for(cfg, raw, url=url)
        except (InputError, ExtractError) as exc:
            error(f"{name}: {exc}" if isinstance(exc, ExtractError) else str(exc))
            failed = True
            continue
        rejected = rejected or ex.reject_reason is not None
        record = {
            "file": name,
            "source": ex.source,
            "title": ex.title,
            "published": ex.published,
            "modified": ex.modified,
            "caption": ex.caption,
            "image_url": ex.image_url,
            "body": ex.body,
            "word_count": ex.word_count,
            "reading_minutes": reading_minutes(ex.word_count, int(cfg["channel.reading_wpm"])),
            "language": ex.language,
            "authors": list(ex.authors),
            "reject_reason": ex.reject_reason,
        }
        if as_json:
            click.echo(json.dumps(record, ensure_ascii=False))
        else:
            for key, value in record.items():
                if key != "body":
                    click.echo(f"{key}: {value}")
            click.echo("\n" + ex.body + "\n")
    raise SystemExit(1 if failed else 3 if rejected else 0)


def register(group: click.Group) -> None:
    group.add_command(extract_cmd)
