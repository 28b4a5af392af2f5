"""The fetch stage sends its tasks one host after another, not one feed's run of items."""

from __future__ import annotations

from waikan.queue.coordinator import _round_robin_by_host
from waikan.sources.repo import Discovered


def test_fetch_tasks_alternate_hosts() -> None:
    urls = [
        "https://a.example/1",
        "https://a.example/2",
        "https://A.example:443/3",  # the same host, spelled otherwise
        "https://b.example/1",
        "https://c.example/1",
        "https://c.example/2",
    ]
    items = [Discovered(i, u, None, None) for i, u in enumerate(urls, start=1)]
    order = _round_robin_by_host(items)
    assert order == [1, 4, 5, 2, 6, 3]
    assert sorted(order) == [1, 2, 3, 4, 5, 6]  # each once
