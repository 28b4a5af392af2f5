"""A task whose pool process died goes back to the front of the queue (issue #9: back
within 60 s, whatever the backlog). Real Redis, Kombu's Redis transport as the worker
uses it: with acks_late and task_reject_on_worker_lost, Celery rejects the message
with requeue=True."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kombu import Connection
from kombu.transport.redis import QoS

from waikan.queue.app import requeue_at_the_front


@pytest.fixture
def kombu_reject() -> Iterator[None]:
    real = QoS.reject
    yield
    QoS.reject = real  # type: ignore[method-assign]


def order_after_a_requeue(url: str) -> list[str]:
    """Queue a, b, c; take a, reject it with requeue (its worker died); take the rest."""
    with Connection(url) as conn:
        queue = conn.SimpleQueue("waikan-requeue-test")
        try:
            for body in ("a", "b", "c"):
                queue.put(body)
            first = queue.get(timeout=5)
            assert first.payload == "a"
            first.reject(requeue=True)
            out = []
            for _ in range(3):
                message = queue.get(timeout=5)
                out.append(str(message.payload))
                message.ack()
            return out
        finally:
            queue.close()


def test_a_rejected_task_goes_back_to_the_front(redis_url: str, kombu_reject: None) -> None:
    assert order_after_a_requeue(redis_url) == ["b", "c", "a"]  # Kombu's own: behind all
    requeue_at_the_front()
    requeue_at_the_front()  # twice: still one patch
    assert order_after_a_requeue(redis_url) == ["a", "b", "c"]
