"""The scheduler behind ``waikan serve``: every stage once per tick, until told to stop.

Each tick runs :data:`waikan.pipeline.STAGES` in order (the fetch stage polls
only the sources that are due). SIGTERM or SIGINT asks for a stop: the stage
in progress finishes its current work, nothing new starts, and because every
transition is committed as it happens, a second signal (an immediate exit)
loses nothing either — the next start picks up ``discovered`` articles.
When several schedulers share a store, a leader lock
(:mod:`waikan.queue.leader`) lets exactly one tick; the others wait and take
over when it stops or dies.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Protocol

from waikan.errors import StorageError, WaikanError
from waikan.pipeline import STAGES, StageReport
from waikan.workspace import Workspace

__all__ = ["LeaderUnreachable", "Scheduler", "run_stages"]

log = logging.getLogger(__name__)


class LeaderUnreachable(WaikanError):
    """``Leader.lead()`` could not reach the store: who leads is unknown, and we do not.

    Not "another scheduler leads": with the database down there may be no other.
    The message says why, without secrets; the scheduler keeps trying.
    """


def run_stages(ws: Workspace, should_stop: Callable[[], bool] = lambda: False) -> list[StageReport]:
    """Every stage once; a stage that raises is reported and the next one still runs."""
    reports = []
    for name, stage in STAGES:
        if should_stop():
            break
        try:
            reports.append(stage(ws))
        except StorageError:
            raise  # a full or read-only disk fails every later stage too: one error, stop
        except WaikanError as exc:
            reports.append(StageReport(name, errors=[str(exc)]))
    return reports


Runner = Callable[[Workspace, Callable[[], bool]], list[StageReport]]


class Leader(Protocol):
    def lead(self) -> bool: ...  # False: another leads; raises LeaderUnreachable
    def release(self) -> None: ...


@dataclass
class Scheduler:
    """Ticks while it holds ``leader`` (when given); otherwise waits for it, as a follower.

    ``runner`` is one tick's work: the stages inline, or enqueued on workers.
    ``on_leading(True/False)`` is told each change of leadership; ``on_unreachable(why)``
    once per outage of the store the lock lives in (leadership is then reported anew).
    """

    ws: Workspace
    interval: float = 60.0  # seconds between ticks
    on_tick: Callable[[list[StageReport]], object] | None = None
    runner: Runner = run_stages
    leader: Leader | None = None
    on_leading: Callable[[bool], object] | None = None
    on_unreachable: Callable[[str], object] | None = None
    retry: float = 1.0  # seconds between a follower's attempts to lead
    recheck: float = 1.0  # seconds between a leader's checks, mid-tick, that it still leads
    ticks: int = 0
    _leading: bool | None = None
    _unreachable: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _signals: int = 0

    def stop(self, *_args: object) -> None:
        self._stop.set()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:
            raise KeyboardInterrupt  # second signal: leave now; committed work is safe
        log.info("signal %s: stopping after the current stage", signum)
        self._stop.set()

    def run(self, max_ticks: int | None = None) -> int:
        """Tick until stopped (or ``max_ticks``); returns the number of ticks run."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            while not self._stop.is_set():
                if not self._lead():
                    self._stop.wait(self.retry)
                    continue
                started = time.monotonic()
                reports = self._tick()
                self.ticks += 1
                if self.on_tick:
                    self.on_tick(reports)
                if max_ticks is not None and self.ticks >= max_ticks:
                    break
                self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self.leader is not None:
                self.leader.release()
        return self.ticks

    def _tick(self) -> list[StageReport]:
        """One tick of ``runner``; an exception nobody foresaw fails this tick, not the loop.

        A long-running ``serve`` must not die of one bad row or a bug in one code path:
        the tick is one error line (the traceback goes to the debug log) and the next
        tick runs. Signals and exits (BaseException) still stop, and so does a
        StorageError, as :func:`run_stages` decides: a full disk fails every tick alike.
        """
        try:
            return self.runner(self.ws, self._tick_should_stop())
        except StorageError:
            raise
        except Exception as exc:
            log.debug("scheduler: tick failed", exc_info=True)
            lines = str(exc).strip().splitlines()
            what = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
            return [StageReport("tick", errors=[what])]

    def _tick_should_stop(self) -> Callable[[], bool]:
        """A stop was asked, or the lock was lost mid-tick (checked at most every ``recheck`` s).

        Without the lock check a leader whose session ended would tick on while a
        follower took over: two leaders at once.
        """
        checked = time.monotonic()
        lost = False

        def should_stop() -> bool:
            nonlocal checked, lost
            if self._stop.is_set() or lost:
                return True
            if self.leader is None or time.monotonic() - checked < self.recheck:
                return False
            checked = time.monotonic()
            try:
                if self.leader.lead():
                    return False
            except LeaderUnreachable:
                pass  # the lock's session is gone with the store: lost
            lost = True  # even if the lock could be taken again: this tick began under another
            log.warning("scheduler: leader lock lost mid-tick; stopping this tick")
            return True

        return should_stop

    def _lead(self) -> bool:
        """Take or keep the leader lock (always True without one); report each change."""
        try:
            leading = self.leader is None or self.leader.lead()
        except LeaderUnreachable as exc:
            if not self._unreachable:
                self._unreachable, self._leading = True, None
                log.info("scheduler: %s", exc)  # on_unreachable prints it
                if self.on_unreachable:
                    self.on_unreachable(str(exc))
            return False
        self._unreachable = False
        if leading != self._leading:
            self._leading = leading
            if self.leader is not None:
                log.info("scheduler: %s", "leading" if leading else "following")
                if self.on_leading:
                    self.on_leading(leading)
        return leading
