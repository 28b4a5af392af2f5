"""Optimistic locking held by the store, not by one process's memory.

Two ``waikan serve`` processes share one store (a SQLite file, then a
PostgreSQL database); API clients with tokens edit one summary through both.
The stale writer gets 409 and its text back; what the other wrote stays.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.render.site_support import summary
from tests.web.support import PASSWORD, add_post, client, desk, serve_process, workspace

from waikan.errors import ConflictError, WaikanError
from waikan.models import Status
from waikan.publish import review
from waikan.web import accounts


def _home(tmp_path: Path, store_url: str) -> Path:
    """A workspace on ``store_url`` whose one destination waits for an editor."""
    home = tmp_path / "ws"
    home.mkdir()
    (home / "waikan.toml").write_text(
        f'[store]\nurl = "{store_url}"\n\n'
        '[publish.hook]\ntype = "webhook"\nurl = "http://127.0.0.1:9/hook"\nreview = "review"\n',
        encoding="utf-8",
    )
    return home


def _edits(rows: list[dict[str, object]]) -> list[object]:
    return [r["actor"] for r in rows if r["table"] == "audit_log" and r["action"] == "edit-text"]


def test_store_compare_and_swap(tmp_path: Path, store_url: str) -> None:
    """The check is in the write itself: a stale revision loses even with no earlier read."""
    ws = workspace(_home(tmp_path, store_url))
    try:
        aid = add_post(ws, 1)
        done = review.edit(ws, aid, "甲的版本。\n\n第二段。", "a", revision=1)
        assert done.revision == 2
        # the store's own compare (what the pre-check in review.edit cannot cover in a race)
        with pytest.raises(ConflictError) as info:
            ws.store.add_summary(aid, summary(1), expect_revision=1)
        assert info.value.revision == 2
        with pytest.raises(ConflictError):
            review.approve(ws, aid, "b", revision=1)  # approving a text b never saw
        with pytest.raises(ConflictError):
            review.reject(ws, aid, "b", "stale", revision=1)
        found = ws.store.article(aid)
        assert found is not None and found.status == done.status  # untouched by the losers
        current = ws.store.current_summary(aid)
        assert current is not None and current.paragraphs[0] == "甲的版本。"
        assert _edits(list(ws.store.dump())) == ["a"]
        assert review.reject(ws, aid, "b", "checked", revision=2) == Status.REJECTED.value
        # without an expected revision the pipeline's writes still stack (no lost increment)
        ws.store.add_summary(aid, summary(1))
        assert review.edit(ws, aid, "丙的版本。", "c").revision == 4
    finally:
        ws.close()


def test_two_serve_processes_one_store(tmp_path: Path, store_url: str) -> None:
    home = _home(tmp_path, store_url)
    ws = workspace(home)
    aid = add_post(ws, 1)
    for name in ("a", "b"):
        accounts.add_user(ws.store, name, "editor", PASSWORD)
    tokens = {name: accounts.issue_token(ws.store, name) for name in ("a", "b")}
    ws.close()
    with (
        serve_process(home) as one,
        serve_process(home) as two,
        httpx.Client(base_url=one, headers={"authorization": f"Bearer {tokens['a']}"}) as a,
        httpx.Client(base_url=two, headers={"authorization": f"Bearer {tokens['b']}"}) as b,
    ):
        path = f"/desk/api/v1/articles/{aid}"
        rev = a.get(path).json()["revision"]
        assert b.get(path).json()["revision"] == rev
        r = a.post(
            f"{path}/edit", json={"text": "甲在一号进程里的版本。\n\n第二段。", "revision": rev}
        )
        assert r.status_code == 200, r.text
        assert r.json()["revision"] == rev + 1
        stale = b.post(f"{path}/edit", json={"text": "乙的版本。", "revision": rev})
        assert stale.status_code == 409, stale.text
        assert stale.json()["revision"] == rev + 1
        assert b.post(f"{path}/reject", json={"revision": rev}).status_code == 409
        seen = b.get(path).json()  # the other process's write, read back through this one
        assert seen["summary"][0] == "甲在一号进程里的版本。"
        assert seen["status"] == r.json()["status"]

        # a real race: eight writers on one revision through both processes, at once
        rev = seen["revision"]
        start = threading.Barrier(8)
        codes: list[int] = []

        def write(n: int) -> None:
            c = a if n % 2 else b
            start.wait()
            text = f"第{n}位编辑的版本。"
            codes.append(c.post(f"{path}/edit", json={"text": text, "revision": rev}).status_code)

        threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert sorted(codes) == [200] + [409] * 7, codes
        final = a.get(path).json()
        assert final["revision"] == rev + 1
    ws = workspace(home)
    try:
        rows = list(ws.store.dump())
        actors = _edits(rows)
        assert actors[0] == "a" and len(actors) == 2  # a's first edit, then one race winner
        winner = [r for r in rows if r["table"] == "audit_log" and r["action"] == "edit-text"][-1]
        assert json.loads(str(winner["after"]))["summary"] == final["summary"]
        assert len(ws.store.summaries_of(aid)) == 3  # the pipeline's, a's, the winner's
    finally:
        ws.close()


@pytest.mark.parametrize("action", ["reject", "unpublish"])
def test_edit_does_not_undo_a_concurrent_status_change(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    """B's reject/unpublish lands while A's edit runs its guard: A loses, B's status stays.

    Neither changes the post revision, so only the status compare can catch it.
    """
    ws = workspace(_home(tmp_path, store_url))
    try:
        aid = add_post(ws, 1)
        real = review.guard_findings

        def b_acts_meanwhile(*args: Any, **kwargs: Any) -> list[str]:
            monkeypatch.setattr(review, "guard_findings", real)
            if action == "reject":
                review.reject(ws, aid, "b", "wrong", revision=1)
            else:
                assert review.unpublish(ws, aid, "b", env={}, revision=1) == []
            return real(*args, **kwargs)

        monkeypatch.setattr(review, "guard_findings", b_acts_meanwhile)
        with pytest.raises(ConflictError) as info:
            review.edit(ws, aid, "甲的新版本。", "a", revision=1)
        assert info.value.revision == 1
        found = ws.store.article(aid)
        assert found is not None and found.status == Status.REJECTED.value
        current = ws.store.current_summary(aid)
        assert current is not None and current.backend == "openai"  # A's text not stored
        assert _edits(list(ws.store.dump())) == []
        assert len(ws.store.summaries_of(aid)) == 1
    finally:
        ws.close()


def test_ids_and_revisions_past_the_integer_columns(tmp_path: Path, store_url: str) -> None:
    """A revision or article id beyond INTEGER is stale / not found, not a DataError (a 500)."""
    big = 3_000_000_000
    home = _home(tmp_path, store_url)
    with desk(home, users=(("a", "editor"),)) as (server, ws):
        aid = add_post(ws, 1)
        for act in (
            lambda: review.approve(ws, aid, "a", revision=big),
            lambda: review.reject(ws, aid, "a", "stale", revision=big),
            lambda: review.unpublish(ws, aid, "a", env={}, revision=big),
            lambda: review.edit(ws, aid, "甲的版本。", "a", revision=big),
        ):
            with pytest.raises(ConflictError) as info:
                act()
            assert info.value.revision == 1
        assert ws.store.article(big) is None
        token = accounts.issue_token(ws.store, "a")
        with client(server, headers={"authorization": f"Bearer {token}"}) as c:
            api = "/desk/api/v1/articles"
            for path in (f"{api}/{big}", f"{api}/{big}/audit", f"/desk/articles/{big}"):
                assert c.get(path).status_code == 404, path
            assert c.post(f"{api}/{big}/approve", json={"revision": 1}).status_code == 404
            r = c.post(f"{api}/{aid}/approve", json={"revision": big})
            assert r.status_code == 400 and "2147483647" in r.json()["error"], r.text
            assert c.post(f"{api}/{aid}/approve", json={"revision": 2**31 - 1}).status_code == 409
        found = ws.store.article(aid)
        assert found is not None and found.status == Status.SUMMARIZED.value


def test_approve_names_the_status_a_concurrent_reject_left(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B rejects between A's read and A's approve: A is told "rejected", not "summarized"."""
    ws = workspace(_home(tmp_path, store_url))
    try:
        aid = add_post(ws, 1)
        real = review.set_status

        def b_rejects_first(*args: Any, **kwargs: Any) -> bool:
            monkeypatch.setattr(review, "set_status", real)
            review.reject(ws, aid, "b", "wrong", revision=1)
            return real(*args, **kwargs)

        monkeypatch.setattr(review, "set_status", b_rejects_first)
        with pytest.raises(WaikanError, match=f"article {aid} is rejected: only a summarized"):
            review.approve(ws, aid, "a", revision=1)
        found = ws.store.article(aid)
        assert found is not None and found.status == Status.REJECTED.value
    finally:
        ws.close()
