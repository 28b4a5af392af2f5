"""``/metrics`` in Prometheus' text format (0.0.4), read from the store at each scrape.

The figures live in the store, not in one process's memory, so every ``waikan
serve`` sharing a store reports the same numbers and a restart loses nothing.
Each family is one grouped query over an indexed column or a small table, so a
scrape stays cheap with 100,000 articles in the store.
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, select

from waikan.store import schema
from waikan.workspace import Workspace

__all__ = ["CONTENT_TYPE", "Family", "collect", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
log = logging.getLogger(__name__)

# Where an article waits, by status: the store's own work queues.
STAGE_QUEUES = {
    "fetch": ("discovered",),
    "summarize": ("extracted",),
    "review": ("summarized", "needs_review"),
}


@dataclass
class Family:
    name: str  # a counter's ends in _total (the 0.0.4 text format names it so throughout)
    kind: str  # gauge | counter
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> None:
        self.samples.append((labels, value))


def collect(ws: Workspace) -> list[Family]:
    """Every family, from the store (and the broker's queue length when one is set)."""
    from waikan import __version__
    from waikan.publish import pauses
    from waikan.publish.config import read_publish_table
    from waikan.summarize.budget import Budget

    store = ws.store
    build = Family("waikan_build_info", "gauge", "The running waikan; the value is always 1.")
    build.add(1, version=__version__, python=platform.python_version())

    articles = Family("waikan_articles", "gauge", "Articles in the store by status.")
    counts = store.counts()
    for status, n in sorted(counts.items()):
        articles.add(n, status=status)

    o, sp, f = schema.outbox, schema.llm_spend, schema.summary_findings
    st, s = schema.source_state, schema.sources
    budget = Budget(store, ws.config)
    today = budget.today()
    with store.engine.connect() as c:
        outbox_rows = c.execute(
            select(o.c.destination, o.c.status, func.count())
            .group_by(o.c.destination, o.c.status)
            .order_by(o.c.destination, o.c.status)
        ).all()
        spend = c.execute(
            select(sp.c.model, sp.c.calls, sp.c.cached, sp.c.tokens_in, sp.c.tokens_out, sp.c.cost)
            .where(sp.c.day == today)
            .order_by(sp.c.model)
        ).all()
        kinds = c.execute(
            select(f.c.kind, func.count()).group_by(f.c.kind).order_by(f.c.kind)
        ).all()
        sources = c.execute(
            select(s.c.id, s.c.name, st.c.errors, st.c.polls)
            .select_from(s.outerjoin(st, st.c.source_id == s.c.id))
            .order_by(s.c.id)
        ).all()
        failing = int(c.scalar(select(func.count()).select_from(schema.fetch_attempts)) or 0)
        dead = int(c.scalar(select(func.count()).select_from(schema.dead_letters)) or 0)

    outbox = Family(
        "waikan_outbox",
        "gauge",
        "Deliveries (one post at one destination) by destination and state.",
    )
    for dest, state, n in outbox_rows:
        outbox.add(n, destination=dest, state=state)
    paused = Family(
        "waikan_destination_paused", "gauge", "1 while an admin holds a destination's deliveries."
    )
    held = pauses.paused(store)
    for dest in sorted(read_publish_table(ws.config)):
        paused.add(1 if dest in held else 0, destination=dest)

    calls = Family("waikan_model_calls_today", "gauge", "Model calls today (budget day).")
    cached = Family("waikan_model_cached_today", "gauge", "Summaries served from the cache today.")
    tokens = Family("waikan_model_tokens_today", "gauge", "Model tokens today, in and out.")
    cost = Family("waikan_model_cost_today", "gauge", "Model cost today (llm.prices units).")
    for model, n_calls, n_cached, t_in, t_out, amount in spend:
        calls.add(n_calls, model=model)
        cached.add(n_cached, model=model)
        tokens.add(t_in, model=model, direction="in")
        tokens.add(t_out, model=model, direction="out")
        cost.add(amount, model=model)
    limits = Family(
        "waikan_model_budget", "gauge", "The daily model budget (0: no limit) by what it counts."
    )
    limits.add(budget.max_tokens, kind="tokens")
    limits.add(budget.max_cost, kind="cost")

    findings = Family(
        "waikan_guard_findings_total", "counter", "Faithfulness-guard findings stored, by kind."
    )
    for kind, n in kinds:
        findings.add(n, kind=kind)

    errors = Family(
        "waikan_source_errors",
        "gauge",
        "Consecutive failed polls of a source (0 after a good one).",
    )
    polls = Family(
        "waikan_source_polls_total",
        "counter",
        "Good polls of a source (a failed one counts in waikan_source_errors).",
    )
    for sid, name, n_errors, n_polls in sources:
        # By id: names need not be unique (one series each), and /metrics is public, so
        # never the feed URL (it may carry a token).
        labels = {"source_id": str(sid), **({"source": name} if name else {})}
        errors.add(n_errors or 0, **labels)
        polls.add(n_polls or 0, **labels)
    retrying = Family(
        "waikan_fetch_failing_articles", "gauge", "Articles whose fetch failed and will be retried."
    )
    retrying.add(failing)

    depth = Family("waikan_queue_depth", "gauge", "Work waiting, by stage (store) or broker.")
    for stage, statuses in STAGE_QUEUES.items():
        depth.add(sum(counts.get(x, 0) for x in statuses), queue=stage)
    depth.add(sum(n for _d, state, n in outbox_rows if state == "pending"), queue="publish")
    broker = _broker_depth(ws)
    if broker is not None:
        depth.add(broker, queue="broker")
    dead_letters = Family(
        "waikan_dead_letters_total",
        "counter",
        "Queue messages no worker could run (waikan status).",
    )
    dead_letters.add(dead)
    return [
        build,
        articles,
        outbox,
        paused,
        calls,
        cached,
        tokens,
        cost,
        limits,
        findings,
        errors,
        polls,
        retrying,
        depth,
        dead_letters,
    ]


def _broker_depth(ws: Workspace) -> int | None:
    """Messages waiting in the Redis broker (``queue.url``), None without one or when down."""
    url = str(ws.config["queue.url"] or "")
    if not url:
        return None
    import redis

    from waikan.queue.app import QUEUE, safe_url

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            return int(client.llen(QUEUE))
        finally:
            client.close()
    except (redis.RedisError, OSError) as exc:
        log.warning("metrics: broker %s: %s", safe_url(url), str(exc).splitlines()[0])
        return None


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def render(families: Iterable[Family]) -> str:
    """The exposition text: HELP and TYPE once per family, then its samples."""
    lines: list[str] = []
    for fam in families:
        lines.append(f"# HELP {fam.name} {fam.help.replace(chr(92), chr(92) * 2)}")
        lines.append(f"# TYPE {fam.name} {fam.kind}")
        for labels, value in fam.samples:
            inner = ",".join(f'{k}="{_label(str(v))}"' for k, v in labels.items())
            head = f"{fam.name}{{{inner}}}" if inner else fam.name
            lines.append(f"{head} {_number(value)}")
    return "\n".join(lines) + "\n"
