"""The two kinds of fetch failure, apart from the client so the guard can raise them too."""

from __future__ import annotations

from waikan.errors import FetchError

__all__ = ["PermanentFetchError", "TransientFetchError"]


class TransientFetchError(FetchError):
    """Worth retrying on a later run: the server was down, slow or busy."""


class PermanentFetchError(FetchError):
    """Retrying will not help (4xx, refused by the guard, a redirect loop)."""
