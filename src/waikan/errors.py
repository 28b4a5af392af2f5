"""One exception tree: the CLI turns any WaikanError into a one-line message."""

from __future__ import annotations


class WaikanError(Exception):
    """Base of every error waikan raises on purpose; ``str()`` is the user message."""

    exit_code = 1


class UsageError(WaikanError):
    exit_code = 2


class ConfigError(WaikanError):
    """A bad setting; the message names the key."""


class InputError(WaikanError):
    """A file or URL given by the user cannot be read."""


class FetchError(WaikanError):
    pass


class ExtractError(WaikanError):
    pass


class SummarizeError(WaikanError):
    pass


class StoreError(WaikanError):
    pass


class RenderError(WaikanError):
    pass


class PublishError(WaikanError):
    pass
