"""The docs cannot drift: generated parts are current, every setting and command is named."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

from waikan.cli import cli
from waikan.config import SETTINGS


def test_generated_docs_are_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_setting_and_command_documented() -> None:
    docs = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md"))
    for setting in SETTINGS:
        assert f"`{setting.name}`" in docs and setting.env in docs
    for name in cli.commands:
        assert f"`waikan {name}`" in docs


def test_readme_starts_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```")[1]
    commands = [ln.split("#")[0].strip() for ln in first_block.splitlines()[1:] if ln.strip()]
    assert commands == ["make demo", "make test"]


def test_exported_members() -> None:
    import waikan

    assert waikan.__all__ == sorted(waikan.__all__)
    public = {n for n in dir(waikan) if not n.startswith("_") and n not in sys.modules}
    modules = {n for n in public if type(getattr(waikan, n)).__name__ == "module"}
    assert public - modules == set(waikan.__all__) - {"__version__"}
