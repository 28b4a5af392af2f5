"""Regenerate the generated parts of the docs: the CLI reference and the settings table.

``python scripts/gen_docs.py`` rewrites them; ``--check`` exits 1 when they are stale
(the test suite runs the check, so the docs cannot drift from the code).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from waikan.cli import cli  # noqa: E402
from waikan.config import SETTINGS  # noqa: E402

BEGIN, END = "<!-- generated:begin -->", "<!-- generated:end -->"


def cli_reference() -> str:
    parts = []

    def walk(cmd: click.Command, path: list[str]) -> None:
        ctx = click.Context(cmd, info_name=" ".join(path), terminal_width=88)
        parts.append(f"## `{' '.join(path)}`\n\n```\n{cmd.get_help(ctx)}\n```\n")
        if isinstance(cmd, click.Group):
            for name in sorted(cmd.list_commands(ctx)):
                sub = cmd.get_command(ctx, name)
                if sub is not None:
                    walk(sub, [*path, name])

    walk(cli, ["waikan"])
    return "\n".join(parts)


def settings_table() -> str:
    rows = ["| setting | environment | default | meaning |", "|---|---|---|---|"]
    for s in SETTINGS:
        default = "(secret)" if s.secret else f"`{s.default!r}`"
        meaning = s.help + (f" One of: {', '.join(s.choices)}." if s.choices else "")
        rows.append(f"| `{s.name}` | `{s.env}` | {default} | {meaning} |")
    return "\n".join(rows) + "\n"


TARGETS = {"docs/cli.md": cli_reference, "docs/configuration.md": settings_table}


def updated(path: Path, body: str) -> str:
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    return pattern.sub(lambda _m: f"{BEGIN}\n{body}{END}", text)


def main() -> int:
    stale = []
    for rel, make in TARGETS.items():
        path = ROOT / rel
        new = updated(path, make())
        if new != path.read_text(encoding="utf-8"):
            stale.append(rel)
            if "--check" not in sys.argv:
                path.write_text(new, encoding="utf-8")
    if stale and "--check" in sys.argv:
        print(f"stale generated docs: {', '.join(stale)} (run: python scripts/gen_docs.py)")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
