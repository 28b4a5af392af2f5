"""One exception tree: the CLI turns any WaikanError into a one-line message."""

from __future__ import annotations

import errno


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


class OversizeError(WaikanError):
    """An input over its byte cap (``fetch.max_bytes``): the input's own fault, not a
    transient failure, so its article is ``rejected`` as ``too_large`` and never retried."""

    @property
    def reason(self) -> str:
        """The article's ``reason``: the extraction's ``too_large`` code, then the detail."""
        return f"too_large: {self}"


class FileTooLargeError(InputError, OversizeError):
    """A local file over ``fetch.max_bytes`` (as stored or once gunzipped)."""


class ExtractError(WaikanError):
    pass


class SummarizeError(WaikanError):
    pass


class StoreError(WaikanError):
    pass


class StorageError(StoreError):
    """The disk or database refuses writes (full, read-only, failing): the run stops.

    Every write is one transaction or a temp file renamed into place, so what was
    stored stays whole and the next run, once the fault is fixed, resumes.
    """


_ERRNOS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
}
_SQLITE = (
    ("SQLITE_FULL", "disk full"),
    ("SQLITE_READONLY", "read-only database"),
    ("SQLITE_IOERR", "disk I/O error"),
)
_SQLSTATES = {"25006": "read-only database", "53100": "disk full", "58030": "disk I/O error"}


def storage_fault(exc: BaseException) -> str | None:
    """What a storage fault is ("disk full", "read-only", ...), or None for other errors.

    Duck-typed on errno, sqlite3's error name and the SQLSTATE (also under a
    SQLAlchemy error's ``orig``), so this module imports no driver.
    """
    for e in (exc, getattr(exc, "orig", None)):
        if isinstance(e, OSError) and e.errno in _ERRNOS:
            return _ERRNOS[e.errno]
        name = str(getattr(e, "sqlite_errorname", "") or "")
        for prefix, kind in _SQLITE:
            if name.startswith(prefix):
                return kind
        state = getattr(e, "sqlstate", None)
        if isinstance(state, str) and state in _SQLSTATES:
            return _SQLSTATES[state]
    return None


def storage_message(kind: str, where: object = None, detail: str | None = None) -> str:
    """The one wording of a storage fault (store, site files, CLI): what, where, what now."""
    at = f" writing {where}" if where else ""
    why = f" ({detail})" if detail else ""
    return (
        f"{kind}{at}{why}: the run stopped and what was stored is kept; "
        "fix the storage, then run again to resume"
    )


class ConflictError(StoreError):
    """A compare-and-swap lost: the post moved past the revision the caller read."""

    def __init__(self, article_id: int, revision: int) -> None:
        super().__init__(
            f"article {article_id} changed meanwhile: its post is at revision {revision} now"
        )
        self.revision = revision


class SummaryDropped(ConflictError):
    """A summary made while its post moved, dropped unstored (the answer stays cached).

    ``calls``: the model calls it cost, recorded in the budget (0 for the extractive
    backend or a cached answer), so a report says "spent" only when it was.
    """

    def __init__(self, article_id: int, revision: int, calls: int) -> None:
        super().__init__(article_id, revision)
        self.calls = calls


class RenderError(WaikanError):
    pass


class PublishError(WaikanError):
    pass
