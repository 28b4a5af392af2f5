"""``waikan glossary``: the name glossary (built in, plus user entries in the store)."""

from __future__ import annotations

import json

import click

from waikan.cli._state import State
from waikan.errors import UsageError
from waikan.summarize.glossary import (
    KINDS,
    Entry,
    Glossary,
    GlossaryError,
    entry_from_row,
    read_file,
)


def _line(e: Entry) -> str:
    forms = " / ".join(f for f in (e.zh_hans, e.zh_hant_tw, e.zh_hant_hk) if f)
    extra = f"  (also {', '.join(e.variants)})" if e.variants else ""
    return f"{e.en}\t{e.kind}\t{forms}{extra}\t{e.origin}"


@click.group()
def glossary() -> None:
    """Standard Chinese names: list, add, remove, import a file, check a text."""


@glossary.command("list")
@click.option("--user", "user_only", is_flag=True, help="Only user entries.")
@click.option("--kind", type=click.Choice(KINDS), help="Only entries of this kind.")
@click.option("--search", metavar="TEXT", help="Only entries whose names contain TEXT.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines output.")
@click.pass_obj
def list_entries(
    state: State, user_only: bool, kind: str | None, search: str | None, as_json: bool
) -> None:
    """List glossary entries (user entries override built-in ones)."""
    from waikan.summarize.service import load_glossary  # the store, the guard: when run

    ws = state.workspace()
    entries = sorted(load_glossary(ws.store, ws.config).entries.values(), key=lambda e: e.key)
    for e in entries:
        if (user_only and e.origin != "user") or (kind and e.kind != kind):
            continue
        if search and not any(search.casefold() in n.casefold() for n in (*e.names, *e.forms)):
            continue
        click.echo(json.dumps(e.as_row(), ensure_ascii=False) if as_json else _line(e))


@glossary.command()
@click.argument("english")
@click.argument("chinese")
@click.option("--kind", type=click.Choice(KINDS), default="person", show_default=True)
@click.option("--tw", default="", help="Taiwan form (zh-Hant-TW) when it differs.")
@click.option("--hk", default="", help="Hong Kong form (zh-Hant-HK) when it differs.")
@click.option("--variant", "variants", multiple=True, help="Another accepted Chinese form.")
@click.option("--alias", "aliases", multiple=True, help="Another English spelling.")
@click.pass_obj
def add(
    state: State,
    english: str,
    chinese: str,
    kind: str,
    tw: str,
    hk: str,
    variants: tuple[str, ...],
    aliases: tuple[str, ...],
) -> None:
    """Add or replace a user entry: ENGLISH name and its CHINESE (Simplified) form."""
    entry = entry_from_row(
        {
            "en": english,
            "kind": kind,
            "zh_hans": chinese,
            "zh_hant_tw": tw,
            "zh_hant_hk": hk,
            "variants": "|".join(variants),
            "aliases": "|".join(aliases),
        },
        "glossary add",
    )
    from waikan.summarize.glossary_store import save_entries

    save_entries(state.workspace().store, [entry])
    click.echo(_line(entry))


@glossary.command()
@click.argument("english")
@click.pass_obj
def remove(state: State, english: str) -> None:
    """Remove the user entry for ENGLISH (built-in entries are overridden, not removed)."""
    from waikan.summarize.glossary_store import remove_entry

    key = Entry(english, "other", "-").key
    if not remove_entry(state.workspace().store, key):
        raise UsageError(f"no user glossary entry {english!r} (built-ins are overridden by add)")
    click.echo(f"removed {english}")


@glossary.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.pass_obj
def import_file(state: State, file: str) -> None:
    """Import user entries from FILE: TSV (or .csv) with a header naming en, zh_hans, …"""
    from waikan.summarize.glossary_store import save_entries

    entries = read_file(file)
    count = save_entries(state.workspace().store, entries)
    click.echo(f"imported {count} entries from {file}")


@glossary.command("check")
@click.argument("text")
@click.option("--summary", metavar="ZH", help="Also check this Chinese summary against TEXT.")
@click.pass_obj
def check_text(state: State, text: str, summary: str | None) -> None:
    """Show the glossary entries found in the English TEXT (what the prompt would carry).

    With --summary, run the guard's name and number checks on a Chinese text
    against TEXT; exit 3 when it has findings.
    """
    from waikan.summarize.guard import Article, check
    from waikan.summarize.service import load_glossary

    ws = state.workspace()
    g: Glossary = load_glossary(ws.store, ws.config)
    hits = g.find(text)
    for hit in hits:
        click.echo(f"{_line(hit.entry)}\t×{hit.count}")
    if not hits:
        click.echo("no glossary names found")
    if summary is None:
        return
    paragraphs = [p for p in summary.split("\n\n") if p.strip()]
    findings = check(
        paragraphs,
        Article(text),
        g,
        hits=hits,
        min_han=0,
        max_han=10**6,
        paragraphs_wanted=len(paragraphs),
    )
    for f in findings:
        click.echo(f"finding\t{f.message}")
    if findings:
        raise SystemExit(3)


def register(group: click.Group) -> None:
    group.add_command(glossary)


__all__ = ["GlossaryError", "register"]
