"""A workspace: one folder with ``waikan.toml``, the database, the archive and the site."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from waikan import config as config_mod
from waikan.config import Config
from waikan.errors import WaikanError

if TYPE_CHECKING:
    from waikan.store import Store


@dataclass
class Workspace:
    config: Config
    _store: Store | None = field(default=None, repr=False)

    @property
    def home(self) -> Path:
        return self.config.home

    @property
    def store(self) -> Store:
        if self._store is None:
            if self.config.origins["store.url"] == "default":
                try:
                    self.home.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise WaikanError(
                        f"cannot create workspace {self.home}: {exc.strerror}"
                    ) from None
            from waikan.store import open_store  # SQLAlchemy: not for ``--help``

            self._store = open_store(self.config.store_url)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def init_workspace(home: Path) -> Path:
    """Create ``home`` with a commented ``waikan.toml``; an existing file is kept."""
    try:
        home.mkdir(parents=True, exist_ok=True)
        path = home / config_mod.CONFIG_FILE
        if not path.exists():
            path.write_text(config_mod.example_toml(), encoding="utf-8")
    except OSError as exc:
        raise WaikanError(f"cannot create workspace {home}: {exc.strerror}") from None
    return path
