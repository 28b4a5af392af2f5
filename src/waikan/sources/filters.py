"""Per-source include/exclude filters: keywords and RE2 patterns (linear time).

Patterns come from users and run over text from the open web, so they are
compiled with google-re2, which cannot backtrack catastrophically; a pattern
RE2 rejects is a :class:`~waikan.errors.ConfigError` naming the source.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import re2

from waikan.errors import ConfigError

__all__ = ["Filters"]


def _options() -> Any:
    opts = re2.Options()
    opts.log_errors = False  # RE2 would print its own error lines to stderr
    opts.case_sensitive = False
    return opts


def _compile(pattern: str, what: str) -> Any:
    try:
        return re2.compile(pattern, _options())
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ConfigError(f"{what}: invalid RE2 pattern {pattern!r}: {detail}") from None


def _keywords(words: Sequence[str]) -> str | None:
    escaped = [re2.escape(w.strip()) for w in words if w.strip()]
    return r"\b(?:" + "|".join(escaped) + r")\b" if escaped else None


@dataclass(frozen=True)
class Filters:
    """``include``: keep only text matching; ``exclude``: drop text matching. Case-insensitive."""

    include: Any | None
    exclude: Any | None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], source: str) -> Filters:
        cls.check(settings, source)  # a bad pattern is named alone, not in the joined one
        parts: dict[str, Any] = {}
        for side in ("include", "exclude"):
            patterns = []
            words = settings.get(side) or []
            if isinstance(words, str):
                words = [words]
            if (kw := _keywords([str(w) for w in words])) is not None:
                patterns.append(kw)
            regex = settings.get(f"{side}_regex")
            if regex:
                patterns.append(f"(?:{regex})")
            parts[side] = (
                _compile("|".join(patterns), f"source {source}: {side}") if patterns else None
            )
        return cls(parts["include"], parts["exclude"])

    @staticmethod
    def check(settings: Mapping[str, Any], source: str) -> None:
        """Raise as :meth:`from_settings` would, compiling only the patterns that can fail
        (keywords are escaped): validating every source row stays cheap."""
        for side in ("include", "exclude"):
            if regex := settings.get(f"{side}_regex"):
                _compile(str(regex), f"source {source}: {side}_regex")

    @property
    def active(self) -> bool:
        return self.include is not None or self.exclude is not None

    def excluded(self, *texts: str | None) -> bool:
        return self.exclude is not None and any(
            t and self.exclude.search(t) is not None for t in texts
        )

    def keeps(self, *texts: str | None) -> bool:
        """True when the whole text (title, summary, body) passes both filters."""
        if self.excluded(*texts):
            return False
        if self.include is None:
            return True
        return any(t and self.include.search(t) is not None for t in texts)
