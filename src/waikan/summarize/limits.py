"""Requests-per-minute and tokens-per-minute limits, and retry backoff with jitter.

Providers cut clients off at their RPM/TPM quotas with 429s; waiting before
sending is cheaper than being refused. One :class:`RateLimiter` is shared by
all worker threads of a run. The clock and sleep are injectable so tests can
check the arithmetic without waiting.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["RateLimiter", "backoff_delay"]

WINDOW = 60.0


class RateLimiter:
    def __init__(
        self,
        rpm: int = 0,
        tpm: int = 0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rpm, self.tpm = rpm, tpm
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
        while True:
            with self._lock:
                now = self._clock()
                while self._sent and self._sent[0][0] <= now - WINDOW:
                    self._tokens -= self._sent.popleft()[1]
                fits_rpm = not self.rpm or len(self._sent) < self.rpm
                fits_tpm = not self.tpm or self._tokens + tokens <= self.tpm
                if fits_rpm and fits_tpm:
                    self._sent.append((now, tokens))
                    self._tokens += tokens
                    return waited
                delay = max(0.01, self._sent[0][0] + WINDOW - now) if self._sent else 0.01
            self._sleep(delay)
            waited += delay


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
