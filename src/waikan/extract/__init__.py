"""Extraction: one HTML page in, one :class:`~waikan.models.Extracted` out.

Contract: ``extract(html, url=None, source_name=None, min_words=...)`` never
raises on hostile markup; it raises :class:`~waikan.errors.ExtractError` only
for input it cannot treat as HTML at all (e.g. binary data). Rejection is a
result (``Extracted.reject_reason``), not an error.
"""

from __future__ import annotations

from waikan.extract.core import DEFAULT_MIN_WORDS, extract

__all__ = ["DEFAULT_MIN_WORDS", "extract"]
