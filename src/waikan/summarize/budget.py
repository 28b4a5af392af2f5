"""Money and tokens: per-model prices, spend recorded in the store, a daily budget.

The budget is checked before a request with the request's estimated size
held in the store (``llm_holds``), so parallel threads and worker processes
cannot overshoot it together; the real usage the endpoint reports is recorded
afterwards (``llm_spend``, one row per day and model) in the database, never
in the queue's Redis, whose restart must not reset the day. Days follow the
channel's time zone, since "today" is the editor's today.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from waikan.config import Config
from waikan.errors import ConfigError, StoreError, SummarizeError
from waikan.store import Store, schema, store_lock
from waikan.summarize.limits import db_now

__all__ = ["Budget", "BudgetExceeded", "SpendRow", "parse_prices", "spend_rows"]

log = logging.getLogger(__name__)


class BudgetExceeded(SummarizeError):
    """The daily budget is spent: articles stay pending for a later run."""


def parse_prices(text: str) -> dict[str, tuple[float, float]]:
    """``deepseek-chat=0.27/1.10, gpt-4o-mini=0.15/0.6`` → {model: (input, output)} per 1M."""
    prices: dict[str, tuple[float, float]] = {}
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        model, sep, pair = item.rpartition("=")
        inp, slash, out = pair.partition("/")
        try:
            if not sep or not model.strip() or not slash:
                raise ValueError
            prices[model.strip()] = (float(inp), float(out))
        except ValueError:
            raise ConfigError(
                f"invalid value for llm.prices: {item!r} (expected MODEL=INPUT/OUTPUT per "
                "million tokens, e.g. deepseek-chat=0.27/1.10)"
            ) from None
        if min(prices[model.strip()]) < 0:
            raise ConfigError(f"invalid value for llm.prices: {item!r} (negative price)")
    return prices


@dataclass(frozen=True)
class SpendRow:
    day: str
    model: str
    calls: int
    cached: int
    tokens_in: int
    tokens_out: int
    cost: float


class Budget:
    """Today's spend and the room held by requests in flight, in the store.

    A hold is an ``llm_holds`` row inserted in the transaction that checks spend plus
    holds under a lock, so every process sees every other's requests in flight and
    all of them together stop at the budget. A live process renews its holds; those of
    a dead worker expire after ``lease`` seconds instead of blocking the day.
    """

    LEASE = 120.0

    def __init__(
        self,
        store: Store,
        config: Config,
        *,
        now: Callable[[], datetime] | None = None,
        lease: float = LEASE,
    ) -> None:
        self.store = store
        self.prices = parse_prices(str(config["llm.prices"]))
        self.max_tokens = int(config["summarize.daily_token_budget"])
        self.max_cost = float(config["summarize.daily_cost_budget"])
        try:
            self.zone = ZoneInfo(str(config["channel.timezone"]))
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"invalid value for channel.timezone: {config['channel.timezone']!r} "
                "(an IANA zone such as Asia/Shanghai)"
            ) from None
        self._now = now or (lambda: datetime.now(UTC))
        self.lease = lease
        self._lock = threading.Lock()
        self._mine: set[int] = set()
        self._renewer: threading.Thread | None = None

    def today(self) -> str:
        return self._now().astimezone(self.zone).date().isoformat()

    def cost(self, model: str, tokens_in: int, tokens_out: int) -> float:
        inp, out = self.prices.get(model, (0.0, 0.0))
        return (tokens_in * inp + tokens_out * out) / 1_000_000

    def spent(self, day: str | None = None) -> tuple[int, float]:
        t = schema.llm_spend
        q = select(
            func.coalesce(func.sum(t.c.tokens_in + t.c.tokens_out), 0),
            func.coalesce(func.sum(t.c.cost), 0.0),
        ).where(t.c.day == (day or self.today()))
        with self.store.engine.connect() as c:
            tokens, cost = c.execute(q).one()
        return int(tokens), float(cost)

    def reserve(self, model: str, tokens_in: int, tokens_out: int) -> int:
        """Hold room for one request or raise :class:`BudgetExceeded`; release the hold
        (its id) with :meth:`record` (after the call) or :meth:`release` (when it failed)."""
        tokens = tokens_in + tokens_out
        cost = self.cost(model, tokens_in, tokens_out)
        s, h = schema.llm_spend, schema.llm_holds
        day = self.today()
        with self.store.engine.begin() as c:
            store_lock(c, "llm-budget")
            now = db_now(c)
            c.execute(delete(h).where(h.c.expires <= now))  # holds of dead workers
            # One statement, one snapshot: a hold turning into spend meanwhile counts once.
            spent_tokens, spent_cost, held_tokens, held_cost = c.execute(
                select(
                    select(func.coalesce(func.sum(s.c.tokens_in + s.c.tokens_out), 0))
                    .where(s.c.day == day)
                    .scalar_subquery(),
                    select(func.coalesce(func.sum(s.c.cost), 0.0))
                    .where(s.c.day == day)
                    .scalar_subquery(),
                    select(func.coalesce(func.sum(h.c.tokens), 0))
                    .where(h.c.day == day)
                    .scalar_subquery(),
                    select(func.coalesce(func.sum(h.c.cost), 0.0))
                    .where(h.c.day == day)
                    .scalar_subquery(),
                )
            ).one()
            spent_tokens, spent_cost = int(spent_tokens), float(spent_cost)
            held = f" (+{int(held_tokens):,} held by requests in flight)" if held_tokens else ""
            if spent_tokens + int(held_tokens) + tokens > self.max_tokens:
                raise BudgetExceeded(
                    f"daily token budget reached: {spent_tokens:,}{held} of "
                    f"{self.max_tokens:,} tokens spent on {day} and the next request needs "
                    f"~{tokens:,}; articles stay pending (summarize.daily_token_budget)"
                )
            if spent_cost + float(held_cost) + cost > self.max_cost:
                held = f" (+{float(held_cost):.4f} held by requests in flight)" if held_cost else ""
                raise BudgetExceeded(
                    f"daily cost budget reached: {spent_cost:.4f}{held} of {self.max_cost:g} "
                    f"spent on {day} and the next request needs ~{cost:.4f}; articles stay "
                    "pending (summarize.daily_cost_budget)"
                )
            hold = int(
                c.execute(
                    insert(h)
                    .values(
                        day=day, model=model, tokens=tokens, cost=cost, expires=now + self.lease
                    )
                    .returning(h.c.id)
                ).scalar_one()
            )
        with self._lock:
            self._mine.add(hold)
            if self._renewer is None:
                self._renewer = threading.Thread(
                    target=self._renew, name="budget-holds", daemon=True
                )
                self._renewer.start()
        return hold

    def release(self, hold: int) -> None:
        try:
            with self.store.engine.begin() as c:
                self._drop(c, hold)
        finally:
            self._forget(hold)

    @staticmethod
    def _drop(c: Connection, hold: int) -> None:
        c.execute(delete(schema.llm_holds).where(schema.llm_holds.c.id == hold))

    def _forget(self, hold: int) -> None:
        """Stop renewing ``hold``, dropped or not: one whose drop failed expires after its
        lease instead of being renewed (and counted against the budget) forever."""
        with self._lock:
            self._mine.discard(hold)

    def _renew(self) -> None:
        """Push this process's holds' expiry forward while any is in flight, then stop."""
        h = schema.llm_holds
        try:
            while True:
                time.sleep(self.lease / 4)
                with self._lock:
                    mine = sorted(self._mine)
                    if not mine:  # under the lock: a reserve now starts a new renewer
                        self._renewer = None
                        return
                try:
                    with self.store.engine.begin() as c:
                        expires = db_now(c) + self.lease
                        c.execute(update(h).where(h.c.id.in_(mine)).values(expires=expires))
                # The database is away, or refuses writes (the store's fault hook raises
                # StorageError): try again next round.
                except (SQLAlchemyError, StoreError) as exc:
                    log.warning("could not renew budget holds: %s", str(exc).splitlines()[0])
        finally:  # however it ends, the next reserve starts a renewer again
            with self._lock:
                if self._renewer is threading.current_thread():
                    self._renewer = None

    def record(
        self,
        model: str,
        tokens_in: int,
        tokens_out: int,
        *,
        hold: int | None = None,
        cached: bool = False,
    ) -> None:
        """Add one call (or one cache hit, which costs nothing) to today's spend, and drop
        its hold in the same transaction: other processes see one or the other."""
        cost = 0.0 if cached else self.cost(model, tokens_in, tokens_out)
        t = schema.llm_spend
        day = self.today()
        delta = {
            "calls": 0 if cached else 1,
            "cached": 1 if cached else 0,
            "tokens_in": 0 if cached else tokens_in,
            "tokens_out": 0 if cached else tokens_out,
            "cost": cost,
        }
        where = (t.c.day == day) & (t.c.model == model)
        try:
            for _attempt in range(2):
                try:
                    # Write first: on SQLite a transaction that reads first cannot wait for
                    # the write lock (it fails "database is locked" at once).
                    with self.store.engine.begin() as c:
                        changed = c.execute(
                            update(t)
                            .where(where)
                            .values({t.c[k]: t.c[k] + v for k, v in delta.items()})
                        ).rowcount
                        if not changed:
                            c.execute(insert(t).values(day=day, model=model, **delta))
                        if hold is not None:
                            self._drop(c, hold)
                    return
                except IntegrityError:  # another process inserted the row first
                    continue
        finally:
            if hold is not None:
                self._forget(hold)


def spend_rows(store: Store, days: int | None = None) -> list[SpendRow]:
    t = schema.llm_spend
    q = select(t).order_by(t.c.day.desc(), t.c.model)
    with store.engine.connect() as c:
        rows = [
            SpendRow(r.day, r.model, r.calls, r.cached, r.tokens_in, r.tokens_out, r.cost)
            for r in c.execute(q)
        ]
    if days is not None:
        wanted = sorted({r.day for r in rows}, reverse=True)[:days]
        rows = [r for r in rows if r.day in wanted]
    return rows
