"""Requests-per-minute and tokens-per-minute limits, and retry backoff with jitter.

Providers cut clients off at their RPM/TPM quotas with 429s; waiting before
sending is cheaper than being refused. One :class:`RateLimiter` is shared by
all worker threads of a run; with several worker processes (a queue, or any
PostgreSQL store) :class:`SharedRateLimiter` books every send as a row in the
store under a lock, so the limits hold for all processes together. The clock
and sleep are injectable so tests can check the arithmetic without waiting.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import deque
from collections.abc import Callable

from sqlalchemy import Connection, delete, func, insert, select, text

from waikan.store import Store, schema, store_lock

__all__ = ["RateLimiter", "SharedRateLimiter", "backoff_delay", "db_now", "shared"]

WINDOW = 60.0
# Extra seconds a shared booking stays in the window: the model server stamps a request
# when it arrives, a little after the worker booked it (connect, a busy CPU, a process's
# first request building its client), and the provider's window is the one that counts.
SLACK = 2.0


def db_now(c: Connection) -> float:
    """Epoch seconds by the database server's clock when it has one: the one clock all
    workers agree on, whatever host they run on."""
    if c.dialect.name == "postgresql":
        return float(c.scalar(text("SELECT extract(epoch FROM clock_timestamp())")))
    return time.time()


class RateLimiter:
    """RPM/TPM over a sliding window, for the threads of one process."""

    def __init__(
        self,
        rpm: int = 0,
        tpm: int = 0,
        *,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rpm, self.tpm, self.window = rpm, tpm, window
        self._clock, self._sleep = clock, sleep
        self._sent: deque[tuple[float, int]] = deque()
        self._tokens = 0
        self._lock = threading.Lock()

    def acquire(self, tokens: int) -> float:
        """Block until a request of ``tokens`` fits both limits; return the seconds waited."""
        if not self.rpm and not self.tpm:
            return 0.0
        waited = 0.0
        tokens = min(tokens, self.tpm) if self.tpm else tokens
        while (delay := self._book(tokens)) is not None:
            self._sleep(delay)
            waited += delay
        return waited

    def _delay(
        self, count: int, total: int, oldest: float | None, now: float, tokens: int
    ) -> float | None:
        """None when one more request of ``tokens`` fits beside the ``count`` requests of
        ``total`` tokens in the window; else the seconds until the oldest leaves it."""
        fits_rpm = not self.rpm or count < self.rpm
        fits_tpm = not self.tpm or total + tokens <= self.tpm
        if fits_rpm and fits_tpm:
            return None
        return max(0.01, oldest + self.window - now) if oldest is not None else 0.01

    def _book(self, tokens: int) -> float | None:
        """Record a send of ``tokens`` now and return None, or return how long to wait."""
        with self._lock:
            now = self._clock()
            while self._sent and self._sent[0][0] <= now - self.window:
                self._tokens -= self._sent.popleft()[1]
            oldest = self._sent[0][0] if self._sent else None
            delay = self._delay(len(self._sent), self._tokens, oldest, now, tokens)
            if delay is None:
                self._sent.append((now, tokens))
                self._tokens += tokens
            return delay


class SharedRateLimiter(RateLimiter):
    """The same limits for every process on one store: sends are ``llm_sends`` rows of
    ``key`` (endpoint and model), counted and added under a lock, by the database clock.
    Dividing the limit by the number of workers would waste it when few are busy."""

    def __init__(
        self,
        store: Store,
        key: str,
        rpm: int = 0,
        tpm: int = 0,
        *,
        window: float = WINDOW,
        slack: float = SLACK,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(rpm, tpm, window=window + slack, sleep=sleep)
        self.store, self.key = store, key

    def _book(self, tokens: int) -> float | None:
        t = schema.llm_sends
        with self.store.engine.begin() as c:
            store_lock(c, f"llm-rate:{self.key}")
            now = db_now(c)
            c.execute(delete(t).where(t.c.key == self.key, t.c.sent_at <= now - self.window))
            count, total, oldest = c.execute(
                select(
                    func.count(), func.coalesce(func.sum(t.c.tokens), 0), func.min(t.c.sent_at)
                ).where(t.c.key == self.key)
            ).one()
            delay = self._delay(int(count), int(total), oldest, now, tokens)
            if delay is None:
                c.execute(insert(t).values(key=self.key, sent_at=now, tokens=tokens))
        return delay


def shared(limiter: RateLimiter, store: Store, base_url: str, model: str) -> RateLimiter:
    """``limiter``'s limits kept in ``store`` when it is PostgreSQL (the store of queue
    workers, where several processes call the model); ``limiter`` itself otherwise."""
    if (
        isinstance(limiter, SharedRateLimiter)
        or not (limiter.rpm or limiter.tpm)
        or store.engine.dialect.name != "postgresql"
    ):
        return limiter
    # The endpoint by a digest: a base URL may carry credentials, which stay out of the store.
    endpoint = hashlib.sha256(base_url.encode()).hexdigest()[:12]
    return SharedRateLimiter(
        store, f"{model}@{endpoint}", limiter.rpm, limiter.tpm, window=limiter.window
    )


def backoff_delay(
    attempt: int,
    retry_after: float | None = None,
    *,
    base: float = 0.5,
    cap: float = 30.0,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds before retry ``attempt`` (0-based): the server's Retry-After when it gives
    one, else exponential backoff with "full jitter" between half and all of the step."""
    if retry_after is not None and retry_after >= 0:
        return float(min(retry_after, cap * 4))
    step = min(cap, base * 2**attempt)
    return float(step * (0.5 + rand() / 2))
