"""``waikan status``: what the queue, the workers and the store are doing now."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from waikan.queue.dead import DeadLetter, dead_letters
from waikan.queue.outcomes import TaskFailure, latest_failures, task_counts
from waikan.store import schema
from waikan.workspace import Workspace

__all__ = ["QueueStatus", "queue_status"]


@dataclass
class QueueStatus:
    queued: int | None = None  # messages waiting in the broker (None: no broker configured)
    unacked: int | None = None  # taken by a worker, not yet acknowledged
    workers: dict[str, int] = field(default_factory=dict)  # worker name → tasks running
    statuses: dict[str, int] = field(default_factory=dict)
    last_hour: dict[str, int] = field(default_factory=dict)  # status → articles reaching it
    dead_total: int = 0
    dead: list[DeadLetter] = field(default_factory=list)
    # Stage throughput: task → outcome (ok | noop | failed | retried) → runs.
    tasks_5m: dict[str, dict[str, int]] = field(default_factory=dict)
    tasks_hour: dict[str, dict[str, int]] = field(default_factory=dict)
    failures_total: int = 0
    failures: list[TaskFailure] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "queued": self.queued,
            "unacked": self.unacked,
            "workers": self.workers,
            "statuses": self.statuses,
            "last_hour": self.last_hour,
            "dead_letters": self.dead_total,
            "latest_dead_letters": [
                {"at": d.at.isoformat(), "kind": d.kind, "task": d.task, "error": d.error}
                for d in self.dead
            ],
            "tasks": {
                name: {
                    "last_5_minutes": self.tasks_5m.get(name, {}),
                    "last_hour": self.tasks_hour.get(name, {}),
                }
                for name in sorted(self.tasks_hour.keys() | self.tasks_5m.keys())
            },
            "task_failures": self.failures_total,
            "latest_task_failures": [
                {"at": f.at.isoformat(), "task": f.task, "id": f.key, "error": f.error}
                for f in self.failures
            ],
            "errors": self.errors,
        }


def queue_status(ws: Workspace, *, inspect_timeout: float = 1.0) -> QueueStatus:
    """Broker depths and live workers (when ``queue.url`` is set) and store figures."""
    out = QueueStatus()
    store = ws.store
    a = schema.articles
    now = datetime.now(UTC)
    since = now - timedelta(hours=1)
    with store.engine.connect() as c:
        out.statuses = {
            s: int(n) for s, n in c.execute(select(a.c.status, func.count()).group_by(a.c.status))
        }
        q = select(a.c.status, func.count()).where(a.c.updated_at >= since).group_by(a.c.status)
        out.last_hour = {s: int(n) for s, n in c.execute(q)}
    out.dead_total, out.dead = dead_letters(store, limit=5)
    out.tasks_hour = task_counts(store, 60)
    out.tasks_5m = task_counts(store, 5)
    out.failures_total, out.failures = latest_failures(store, limit=5)
    if ws.config["queue.url"]:
        _broker(ws, out, inspect_timeout)
    return out


def _broker(ws: Workspace, out: QueueStatus, timeout: float) -> None:
    import redis

    from waikan.queue.app import QUEUE, make_app, safe_url

    url = str(ws.config["queue.url"])
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        out.queued = int(client.llen(QUEUE))
        out.unacked = int(client.hlen("unacked"))
        client.close()
    except (redis.RedisError, OSError) as exc:
        out.errors.append(f"broker {safe_url(url)}: {str(exc).splitlines()[0]}")
        return
    app = make_app(ws.config)
    try:
        active = app.control.inspect(timeout=timeout).active() or {}
        out.workers = {name: len(tasks) for name, tasks in sorted(active.items())}
    finally:
        app.close()
