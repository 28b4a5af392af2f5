"""Several processes opening one fresh database at once migrate it exactly once."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.conftest import SQLITE_ONLY

from waikan.store.migrations import MIGRATIONS

OPEN = "import sys; from waikan.store import open_store; open_store(sys.argv[1]).close()"


@SQLITE_ONLY  # the PostgreSQL race is the next test
def test_concurrent_first_open(tmp_path: Path) -> None:
    for trial in range(2):
        db = tmp_path / f"race{trial}.db"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", OPEN, f"sqlite:///{db}"],
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(5)
        ]
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert all(p.returncode == 0 for p in procs), errors
        con = sqlite3.connect(db)
        names = [r[0] for r in con.execute("select name from migrations order by name")]
        con.close()
        assert names == sorted(name for name, _ in MIGRATIONS)


def test_concurrent_first_open_postgresql(pg_url: str) -> None:
    """The advisory lock serialises migrators on PostgreSQL too."""
    procs = [
        subprocess.Popen([sys.executable, "-c", OPEN, pg_url], stderr=subprocess.PIPE, text=True)
        for _ in range(5)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    from sqlalchemy import create_engine, text

    engine = create_engine(pg_url)
    with engine.connect() as c:
        names = [r[0] for r in c.execute(text("select name from migrations order by name"))]
    engine.dispose()
    assert names == sorted(name for name, _ in MIGRATIONS)
