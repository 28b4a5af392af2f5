"""``WAIKAN_TEST_STORE=pg``: every SQLite store a test opens becomes a PostgreSQL database.

Imported by tests/conftest.py, and by sitecustomize.py (PYTHONPATH) in every
``python -m waikan`` the tests start: ``sqlite:///PATH`` maps to one database per
PATH on the session's server (``WAIKAN_TEST_PG``, host:port), so a CLI run and a
test that opens the same workspace directly see the same rows.
"""

from __future__ import annotations

import contextlib
import hashlib
import os


def pg_url_for(url: str) -> str:
    server = os.environ.get("WAIKAN_TEST_PG", "")
    if not server or not url.startswith("sqlite:///"):
        return url
    import psycopg

    path = os.path.abspath(url.removeprefix("sqlite:///"))
    name = "m_" + hashlib.sha1(path.encode()).hexdigest()[:20]
    host, port = server.split(":")
    with psycopg.connect(
        f"host={host} port={port} user=postgres dbname=postgres", autocommit=True
    ) as con:
        if con.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            # A racing process created it first: PostgreSQL says so either way.
            errors = (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation)
            with contextlib.suppress(*errors):
                con.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@{server}/{name}"


def install() -> None:
    if not os.environ.get("WAIKAN_TEST_PG"):
        return
    import waikan.store as store_mod
    import waikan.workspace as workspace_mod

    real = store_mod.open_store
    if getattr(real, "_pg_mode", False):
        return

    def open_store(url: str, *, create: bool = True):  # type: ignore[no-untyped-def]
        return real(pg_url_for(url), create=create)

    open_store._pg_mode = True  # type: ignore[attr-defined]
    store_mod.open_store = open_store
    workspace_mod.open_store = open_store  # type: ignore[attr-defined]


with contextlib.suppress(ImportError):
    install()
