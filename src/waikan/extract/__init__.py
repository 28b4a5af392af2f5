"""Extraction: one HTML page in, one :class:`~waikan.models.Extracted` out.

Contract: ``extract(html, url=None, source_name=None, min_words=...)`` never
raises on hostile markup; it raises :class:`~waikan.errors.ExtractError` only
for input it cannot treat as HTML at all (e.g. binary data). Rejection is a
result (``Extracted.reject_reason``), not an error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from waikan.extract.core import DEFAULT_MIN_WORDS, extract

__all__ = ["DEFAULT_MIN_WORDS", "extract"]


def __getattr__(name: str) -> object:
    """Load the extractor (trafilatura, py3langid) on first use: the ``waikan`` package
    imports this subpackage at start-up (see its ``__init__``), every command with it."""
    if name not in __all__:
        raise AttributeError(f"module 'waikan.extract' has no attribute {name!r}")
    from waikan.extract import core

    value: object = getattr(core, name)
    globals()[name] = value
    return value
