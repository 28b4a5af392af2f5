"""Money and tokens: per-model prices, spend recorded in the store, a daily budget.

The budget is checked before a request with the request's estimated size
reserved, so parallel workers cannot overshoot it together; the real usage
the endpoint reports is recorded afterwards (``llm_spend``, one row per day
and model). Days follow the channel's time zone, since "today" is the
editor's today.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from waikan.config import Config
from waikan.errors import ConfigError, SummarizeError
from waikan.store import Store, schema

__all__ = ["Budget", "BudgetExceeded", "SpendRow", "parse_prices", "spend_rows"]


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
    def __init__(
        self, store: Store, config: Config, *, now: Callable[[], datetime] | None = None
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
        self._lock = threading.Lock()
        self._reserved_tokens = 0
        self._reserved_cost = 0.0

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

    def reserve(self, model: str, tokens_in: int, tokens_out: int) -> tuple[int, float]:
        """Hold room for one request or raise :class:`BudgetExceeded`; release with
        :meth:`record` (after the call) or :meth:`release` (when it failed)."""
        tokens = tokens_in + tokens_out
        cost = self.cost(model, tokens_in, tokens_out)
        with self._lock:
            day = self.today()
            spent_tokens, spent_cost = self.spent(day)
            if spent_tokens + self._reserved_tokens + tokens > self.max_tokens:
                raise BudgetExceeded(
                    f"daily token budget reached: {spent_tokens:,} of "
                    f"{self.max_tokens:,} tokens spent on {day} and the next request needs "
                    f"~{tokens:,}; articles stay pending (summarize.daily_token_budget)"
                )
            if spent_cost + self._reserved_cost + cost > self.max_cost:
                raise BudgetExceeded(
                    f"daily cost budget reached: {spent_cost:.4f} of {self.max_cost:g} spent "
                    f"on {day} and the next request needs ~{cost:.4f}; articles stay pending "
                    "(summarize.daily_cost_budget)"
                )
            self._reserved_tokens += tokens
            self._reserved_cost += cost
        return tokens, cost

    def release(self, hold: tuple[int, float]) -> None:
        with self._lock:
            self._reserved_tokens -= hold[0]
            self._reserved_cost -= hold[1]

    def record(
        self,
        model: str,
        tokens_in: int,
        tokens_out: int,
        *,
        hold: tuple[int, float] | None = None,
        cached: bool = False,
    ) -> None:
        """Add one call (or one cache hit, which costs nothing) to today's spend."""
        if hold is not None:
            self.release(hold)
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
        for _attempt in range(2):
            with self._lock, self.store.engine.begin() as c:
                found = c.execute(select(t.c.day).where(where)).first()
                try:
                    if found is None:
                        c.execute(insert(t).values(day=day, model=model, **delta))
                    else:
                        c.execute(
                            update(t)
                            .where(where)
                            .values({t.c[k]: t.c[k] + v for k, v in delta.items()})
                        )
                    return
                except IntegrityError:  # another process inserted the row first
                    continue


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
