"""Registries for backends and renderers; built-ins register like plug-ins.

A plug-in is a module with a ``register(registry)`` function. The built-ins
are listed in :data:`DEFAULT_PLUGINS`; others are found through the
``waikan.plugins`` entry-point group. One plug-in that fails to load is
reported and skipped, it never stops the others.
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from waikan.errors import ConfigError

if TYPE_CHECKING:
    from waikan.config import Config
    from waikan.models import Post
    from waikan.publish.base import PublisherFactory
    from waikan.summarize.base import Backend

log = logging.getLogger(__name__)

DEFAULT_PLUGINS: tuple[str, ...] = (
    "waikan.summarize.extractive",
    "waikan.summarize.openai_compat",
    "waikan.render.formats",
    "waikan.render.telegram",
    "waikan.publish.telegram",
    "waikan.publish.webhook",
    "waikan.publish.email",
    "waikan.publish.site",
)

BackendFactory = Callable[["Config"], "Backend"]
Renderer = Callable[["Post"], str]


@dataclass
class Registry:
    backends: dict[str, BackendFactory] = field(default_factory=dict)
    formats: dict[str, Renderer] = field(default_factory=dict)
    publishers: dict[str, PublisherFactory] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add_backend(self, name: str, factory: BackendFactory) -> None:
        self.backends[name] = factory

    def add_format(self, name: str, renderer: Renderer) -> None:
        self.formats[name] = renderer

    def add_publisher(self, kind: str, factory: PublisherFactory) -> None:
        """A destination type usable as ``type = "<kind>"`` in ``[publish.<id>]``."""
        self.publishers[kind] = factory

    def backend(self, name: str, config: Config) -> Backend:
        try:
            factory = self.backends[name]
        except KeyError:
            known = ", ".join(sorted(self.backends))
            hint = f"; {'; '.join(self.errors)}" if self.errors else ""
            raise ConfigError(
                f"invalid value for llm.backend: {name!r} (one of {known}){hint}"
            ) from None
        return factory(config)


_registry: Registry | None = None


def _load(registry: Registry, name: str, loader: Callable[[], Any]) -> None:
    try:
        module = loader()
        module.register(registry)
    except Exception as exc:  # a broken third-party plug-in must not stop waikan
        registry.errors.append(f"plug-in {name} failed to load: {exc}")
        log.warning("plug-in %s failed to load: %s", name, exc)


def registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _registry
    if _registry is None:
        reg = Registry()
        for mod in DEFAULT_PLUGINS:
            _load(reg, mod, functools.partial(importlib.import_module, mod))
        for ep in entry_points(group="waikan.plugins"):
            _load(reg, ep.name, ep.load)
        _registry = reg
    return _registry
