"""Writing the site: atomic, and only when the bytes differ, so unchanged files keep their mtime."""

from __future__ import annotations

import os
import tempfile
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from waikan.errors import RenderError, StorageError, storage_fault, storage_message


def write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically (a reader or a deploy never sees half a page)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        if (kind := storage_fault(exc)) is not None:  # the temp file is gone; the old page stays
            raise StorageError(storage_message(kind, path)) from None
        raise RenderError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` unless the file already holds exactly it; True when written."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except OSError:
        pass
    write_bytes(path, data)
    return True


class Writer:
    """Writes files on a few threads, in the order given, reporting which ones changed.

    Rendering is CPU work under the GIL, but replacing a file waits on the disk
    (ext4 flushes a file renamed over another): overlapping those waits is most
    of an incremental build's time on a busy disk. At most ``pending`` files
    wait in memory.
    """

    def __init__(self, threads: int = 8, pending: int = 256) -> None:
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="waikan-write")
        self._pending = pending
        self._queue: deque[tuple[str, Future[bool]]] = deque()
        self.written: list[str] = []

    def put(self, rel: str, path: Path, data: bytes) -> None:
        self._queue.append((rel, self._pool.submit(write_if_changed, path, data)))
        if len(self._queue) > self._pending:
            self._drain(self._pending // 2)

    def _drain(self, keep: int) -> None:
        while len(self._queue) > keep:
            rel, future = self._queue.popleft()
            if future.result():  # a RenderError from the thread is raised here
                self.written.append(rel)

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self._drain(0)
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
