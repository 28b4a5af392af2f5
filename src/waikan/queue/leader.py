"""The leader lock: when several ``waikan serve`` schedulers run, exactly one ticks.

On PostgreSQL the lock is a session advisory lock held on a connection of its
own (a pooled one could be handed to other work and the lock with it). The
server drops it the moment that connection ends, so a leader killed with
SIGKILL frees it at once; TCP keepalives and ``tcp_user_timeout`` on both ends
bound how long a leader cut off by the network keeps it, and how long it takes
to notice (about :data:`KEEPALIVE_BOUND` seconds). On SQLite (one machine) it
is an ``flock`` on a file next to the database, which the kernel drops with the
process; a deleted or replaced lock file is noticed at the next ``lead()``.
Followers try again every ``Scheduler.retry`` seconds.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import IO

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from waikan.scheduler import Leader, LeaderUnreachable
from waikan.store import Store, _safe_url, safe_error

__all__ = ["FileLeader", "Leader", "LeaderUnreachable", "PgLeader", "leader_for"]

LEADER = 8  # advisory lock namespace (tasks use 1-5, host slots 7)
# libpq keepalives: a silent peer is declared dead after idle + interval * count seconds.
IDLE, INTERVAL, COUNT = 5, 2, 3
KEEPALIVE_BOUND = IDLE + INTERVAL * COUNT
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": IDLE,
    "keepalives_interval": INTERVAL,
    "keepalives_count": COUNT,
    # Keepalives stay silent while a query awaits its ACK; this bounds that case too.
    "tcp_user_timeout": KEEPALIVE_BOUND * 1000,
}
# The server side too: without these the server keeps a cut-off leader's session, and its
# lock, until the kernel's default keepalive (about 2 h) gives up on the client.
SERVER_KEEPALIVES = (
    f"-c tcp_keepalives_idle={IDLE} -c tcp_keepalives_interval={INTERVAL} "
    f"-c tcp_keepalives_count={COUNT} -c tcp_user_timeout={KEEPALIVE_BOUND * 1000}"
)


class PgLeader:
    """A PostgreSQL session advisory lock on a dedicated connection.

    ``lead()`` takes the lock or confirms it is still held (False while another
    scheduler leads; :class:`LeaderUnreachable` when the database cannot be
    reached); ``release()`` lets a follower take over at once.
    """

    def __init__(self, store: Store, key: int = 0) -> None:
        self.key = key
        self._engine: Engine = create_engine(
            store.engine.url,
            poolclass=NullPool,
            connect_args={**KEEPALIVES, "options": SERVER_KEEPALIVES},
        )
        self._conn: Connection | None = None

    def lead(self) -> bool:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))  # alive, so the session lock is still ours
                self._conn.commit()
                return True
            except SQLAlchemyError:  # the session ended: whatever we held is gone with it
                self._drop()
            self._connect().close()  # raises if the database is out of reach; else just lost
            return False
        conn = self._connect()
        try:
            got = bool(
                conn.scalar(
                    text("SELECT pg_try_advisory_lock(:n, :k)"), {"n": LEADER, "k": self.key}
                )
            )
            conn.commit()
        except SQLAlchemyError:
            with contextlib.suppress(SQLAlchemyError):
                conn.close()  # not leaked: a lock it might hold would outlive our knowledge of it
            return False
        if got:
            self._conn = conn
        else:
            conn.close()
        return got

    def _connect(self) -> Connection:
        try:
            return self._engine.connect()
        except SQLAlchemyError as exc:
            url = self._engine.url
            raise LeaderUnreachable(
                f"the store is unreachable ({_safe_url(url)}): {safe_error(exc, url)}"
            ) from None

    def release(self) -> None:
        self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._conn.close()  # ending the session releases its advisory locks
            self._conn = None


class FileLeader:
    """An exclusive ``flock`` on one file; the kernel releases it when the process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def lead(self) -> bool:
        if self._file is not None:
            if self._still_the_file():
                return True
            self.release()  # deleted or replaced: another scheduler can lock the new file
        try:
            f = self.path.open("ab")
        except OSError as exc:  # its folder gone or unwritable: as a database out of reach
            raise LeaderUnreachable(f"cannot open {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            return False
        if os.fstat(f.fileno()).st_ino != _inode(self.path):
            f.close()  # replaced between open and flock: lock the file now at the path
            return False
        self._file = f
        return True

    def _still_the_file(self) -> bool:
        assert self._file is not None
        return os.fstat(self._file.fileno()).st_ino == _inode(self.path)

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def leader_for(store: Store, home: Path) -> Leader:
    """The lock shared by every scheduler of this store."""
    url = store.engine.url
    if url.get_backend_name() == "postgresql":
        return PgLeader(store)
    db = url.database
    if db and db != ":memory:":
        return FileLeader(Path(os.path.abspath(db + ".leader")))
    home.mkdir(parents=True, exist_ok=True)
    return FileLeader(home / "scheduler.leader")
