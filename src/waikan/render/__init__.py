"""Renderings of a post; see :mod:`waikan.render.formats` for the built-ins."""

from __future__ import annotations

from waikan.errors import UsageError
from waikan.models import Post
from waikan.plugins import registry

__all__ = ["render_post"]


def render_post(post: Post, fmt: str = "text") -> str:
    formats = registry().formats
    if fmt not in formats:
        raise UsageError(f"unknown format {fmt!r} (one of {', '.join(sorted(formats))})")
    return formats[fmt](post)
