"""Fixtures shared by the dedupe tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from waikan.store import Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A real SQLite store, fresh for each test."""
    s = open_store(f"sqlite:///{tmp_path / 'w.db'}")
    yield s
    s.close()
