"""A broker (Redis) outage while ``run --distributed`` waits: no traceback, the run waits on.

Real Redis (its own server, stopped and started here) and real PostgreSQL.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from tests.services import RedisServer, throwaway_redis

from waikan.config import load
from waikan.errors import WaikanError
from waikan.queue.app import make_app
from waikan.queue.coordinator import _Run
from waikan.workspace import Workspace


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """This module stops and starts its Redis: others' must not go down with it."""
    with throwaway_redis("waikan-redis-outage-") as server:
        yield server


@pytest.fixture
def ws(tmp_path: Path, pg_url: str, own_redis: RedisServer) -> Iterator[Workspace]:
    env = {
        "WAIKAN_STORE_URL": pg_url,
        "WAIKAN_QUEUE_URL": own_redis.url(),
        "WAIKAN_QUEUE_LEASE": "1",
    }
    workspace = Workspace(load(tmp_path, env=env))
    try:
        yield workspace
    finally:
        workspace.close()


def fake_worker(url: str, stop: threading.Event, taken: list[list[int]] | None = None) -> None:
    """Takes ``waikan.*`` messages off the broker and marks their token done, as the task does.

    With ``taken``: only records each message's arguments (a worker that takes it and runs).
    """
    from waikan.queue.app import QUEUE

    while not stop.is_set():
        try:
            client = redis.Redis.from_url(url, socket_timeout=2)
            got = client.blpop([QUEUE], timeout=1)
        except redis.RedisError:  # down: try again
            time.sleep(0.1)
            continue
        if got is not None:
            message = json.loads(got[1])
            args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            if taken is not None:
                taken.append(args)
            else:
                client.set(f"waikan:done:{args[0]}", 1)
        client.close()


def test_a_serialized_stage_outlives_a_broker_outage(ws: Workspace, own_redis: RedisServer) -> None:
    """The broker is down when the task is sent: the run waits, sends again once it is back."""
    app = make_app(ws.config)
    run = _Run(ws, app, timeout=120, should_stop=lambda: False)
    own_redis.stop()
    back = threading.Timer(1.5, own_redis.start)  # same port: the broker restarts
    back.start()
    stop = threading.Event()
    worker = threading.Thread(target=fake_worker, args=(own_redis.url(), stop))
    worker.start()
    errors: list[str] = []
    started = time.monotonic()
    try:
        run.once("waikan.publish", lambda: True, errors)  # no exception escapes
    finally:
        stop.set()
        back.join()
        worker.join()
        run.close()
        app.close()
    assert errors == []
    assert time.monotonic() - started >= 1.5  # it did wait for the broker to come back


def test_fanned_out_stage_waits_through_an_outage_and_resends_after(
    ws: Workspace, own_redis: RedisServer
) -> None:
    """Tasks sent while the broker is down are lost; once it is back, the lease sends them again."""
    from waikan.queue.app import QUEUE

    app = make_app(ws.config)
    run = _Run(ws, app, timeout=120, should_stop=lambda: False)
    own_redis.stop()
    back = threading.Timer(1.5, own_redis.start)  # same port: the broker restarts
    back.start()
    seen: list[int] = []

    def pending(ids: list[int]) -> set[int]:
        """Done once a message for the task reached the restarted broker (no worker here)."""
        with contextlib.suppress(redis.RedisError):  # still down
            if run.redis.llen(QUEUE):
                seen.append(1)
                return set()
        return set(ids)

    errors: list[str] = []
    try:
        run.drain("waikan.fetch", [1], pending, errors)
    finally:
        back.join()
        run.close()
        app.close()
    assert seen and errors == []


def test_an_outage_past_the_deadline_is_one_line(ws: Workspace, own_redis: RedisServer) -> None:
    """A broker that stays down: sends are not counted as tries; the run's timeout ends it."""
    app = make_app(ws.config)
    run = _Run(ws, app, timeout=3, should_stop=lambda: False)
    own_redis.stop()
    try:
        with pytest.raises(WaikanError, match="not finished in time") as got:
            run.once("waikan.dedupe", lambda: True, [])
    finally:
        run.close()
        app.close()
    assert "\n" not in str(got.value)


def test_a_task_running_past_the_lease_while_claimed_is_not_sent_again(
    ws: Workspace, own_redis: RedisServer
) -> None:
    """Queue drained, the task still runs (holds its claim) for 4 leases: no copies, no error."""
    from waikan.queue.tasks import SUMMARIZE, claim

    app = make_app(ws.config)
    run = _Run(ws, app, timeout=120, should_stop=lambda: False)
    stop = threading.Event()
    taken: list[list[int]] = []
    worker = threading.Thread(target=fake_worker, args=(own_redis.url(), stop, taken))
    worker.start()
    finished = threading.Event()
    claimed = threading.Event()

    def long_task() -> None:
        with claim(ws.store, SUMMARIZE, 42) as mine:  # the task's own claim, as a worker takes it
            assert mine
            claimed.set()
            time.sleep(4 * run.lease)
            finished.set()

    task = threading.Thread(target=long_task)
    task.start()
    claimed.wait(30)
    errors: list[str] = []
    try:
        run.drain(
            "waikan.summarize", [42], lambda ids: set() if finished.is_set() else set(ids), errors
        )
    finally:
        task.join()
        stop.set()
        worker.join()
        run.close()
        app.close()
    assert errors == []
    assert taken == [[42]]  # sent once: never a copy while the first one ran
