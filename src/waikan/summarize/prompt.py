"""Prompt files: editable text with a version, a system part and a user part.

The article goes between fixed delimiters; any delimiter-like text inside the
article is defused first, so an article can never close the data block and
speak as the instructions (prompt injection).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from waikan.errors import ConfigError

OPEN = "<<<ARTICLE>>>"
CLOSE = "<<<END ARTICLE>>>"


@dataclass(frozen=True)
class Prompt:
    version: str
    system: str
    user: str

    def messages(
        self,
        *,
        title: str | None,
        source: str | None,
        published: str | None,
        article: str,
        glossary: Sequence[tuple[str, str]] = (),
        feedback: Sequence[str] = (),
        part: str = "",
    ) -> list[dict[str, str]]:
        """Chat messages; ``glossary`` is (English, Chinese) pairs, ``feedback`` past problems."""
        names = "".join(f"{_defuse(en)} = {zh}\n" for en, zh in glossary)
        problems = "".join(f"- {_defuse(p)}\n" for p in feedback)
        fields = {
            "title": _defuse(title or ""),
            "source": _defuse(source or ""),
            "published": published or "",
            "article": _defuse(article),
            "open": OPEN,
            "close": CLOSE,
            "glossary": f"\n译名表（文中出现的名字）：\n{names}" if names else "",
            "feedback": (
                f"\n上一次的回答有以下问题，请重写并全部改正：\n{problems}" if problems else ""
            ),
            "part": part,
        }
        return [
            {"role": "system", "content": _fill(self.system, fields)},
            {"role": "user", "content": _fill(self.user, fields)},
        ]


def _fill(template: str, fields: dict[str, str]) -> str:
    # Single pass, so braces inside the article are never re-expanded.
    return re.sub(r"\{(\w+)\}", lambda m: fields.get(m.group(1), m.group(0)), template)


def _defuse(text: str) -> str:
    return text.replace("<<<", "‹‹‹").replace(">>>", "›››")


def load_prompt(path: str | Path | None = None, builtin: str = "summary.txt") -> Prompt:
    """The prompt at ``path``, or the built-in one named ``builtin``."""
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read summarize.prompt_file {path}: {exc.strerror}") from None
        where = str(path)
    else:
        text = files("waikan.summarize").joinpath(f"prompts/{builtin}").read_text("utf-8")
        where = "built-in prompt"
    return parse_prompt(text, where)


def parse_prompt(text: str, where: str = "prompt") -> Prompt:
    lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
    body = "\n".join(lines)
    version = re.search(r"^version:\s*(\S+)\s*$", body, re.M)
    system = re.search(r"^=== system ===\n(.*?)(?=^=== user ===)", body, re.M | re.S)
    user = re.search(r"^=== user ===\n(.*)", body, re.M | re.S)
    if not (version and system and user):
        raise ConfigError(f"{where}: needs 'version:', '=== system ===' and '=== user ===' parts")
    if "{article}" not in user.group(1):
        raise ConfigError(f"{where}: the user part must contain {{article}}")
    return Prompt(version.group(1), system.group(1).strip(), user.group(1).strip())
