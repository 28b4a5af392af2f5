"""Two workers archiving the same bytes at once (two URLs serving one page) share one
raw row; the second waits for the first's commit instead of failing on the unique key."""

from __future__ import annotations

import threading
import time

from waikan.store import open_store


def test_same_page_saved_by_two_transactions_at_once(pg_url: str) -> None:
    store = open_store(pg_url)
    body = b"<html><body><p>one page, two addresses</p></body></html>"
    got: dict[str, object] = {}

    def second() -> None:
        try:
            got["id"] = store.save_raw("https://example.com/b", body)
        except Exception as exc:  # the finding: a UniqueViolation instead of the shared row
            got["error"] = exc

    try:
        with store.engine.begin() as first:
            first_id = store.save_raw("https://example.com/a", body, conn=first)
            t = threading.Thread(target=second)
            t.start()  # its insert now waits on the uncommitted row
            time.sleep(0.5)
        t.join(30)
        assert "error" not in got, got.get("error")
        assert got["id"] == first_id
        assert store.raw_content(first_id) == body
    finally:
        store.close()
