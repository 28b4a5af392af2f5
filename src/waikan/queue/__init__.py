"""Runners of the pipeline: inline (one process, :func:`waikan.pipeline.run`) or Celery.

The Celery runner (``waikan worker`` + ``waikan run --distributed``) makes each
stage a task over one row (poll a source, fetch, summarize an article) or one
serialized step (dedupe, publish). PostgreSQL is the truth: a task first
claims its row with an advisory lock, re-reads its status and does nothing if
the work is done, so a redelivered or duplicated task never doubles an effect;
the coordinator waits on store rows, not on broker messages, and enqueues again
what a lost message left pending.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from waikan.queue.app import TASKS, broker_check, make_app
    from waikan.queue.coordinator import run_distributed
    from waikan.queue.dead import DeadLetter, dead_letters, record_dead_letter
    from waikan.queue.status import QueueStatus, queue_status

__all__ = [
    "TASKS",
    "DeadLetter",
    "QueueStatus",
    "broker_check",
    "dead_letters",
    "make_app",
    "queue_status",
    "record_dead_letter",
    "run_distributed",
]

# Loaded on first use (PEP 562): ``waikan status`` reads this package without a
# queue configured, and Celery, Redis and the pipeline cost it ~0.5 s up front.
_WHERE = {
    "TASKS": "app",
    "broker_check": "app",
    "make_app": "app",
    "run_distributed": "coordinator",
    "DeadLetter": "dead",
    "dead_letters": "dead",
    "record_dead_letter": "dead",
    "QueueStatus": "status",
    "queue_status": "status",
}


def __getattr__(name: str) -> object:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
