"""The state of one CLI invocation, shared by every command."""

from __future__ import annotations

from waikan import config as config_mod
from waikan.workspace import Workspace


class State:
    """Options of the top-level group, resolved lazily so ``--help`` never touches disk."""

    def __init__(self, home: str | None, overrides: dict[str, str]) -> None:
        self.home = home
        self.overrides = overrides
        self._ws: Workspace | None = None

    def config(self) -> config_mod.Config:
        return config_mod.load(self.home, overrides=self.overrides)

    def workspace(self) -> Workspace:
        if self._ws is None:
            self._ws = Workspace(self.config())
        return self._ws

    def close(self) -> None:
        if self._ws is not None:
            self._ws.close()
