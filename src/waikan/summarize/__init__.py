"""Summaries: the backend interface, the registry lookup and the built-in backends."""

from __future__ import annotations

from waikan.config import Config
from waikan.plugins import registry
from waikan.summarize.base import Backend, SummaryRequest, fullwidth_punctuation

__all__ = ["Backend", "SummaryRequest", "backend_for", "fullwidth_punctuation"]


def backend_for(config: Config) -> Backend:
    """The configured backend; ``auto`` means openai when an endpoint is set, else extractive."""
    name = str(config["llm.backend"])
    if name == "auto":
        name = "openai" if config["llm.base_url"] else "extractive"
    return registry().backend(name, config)
