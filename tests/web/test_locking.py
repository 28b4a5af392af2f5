"""Optimistic locking held by the store, not by one process's memory.

Two ``waikan serve`` processes share one store (a SQLite file, then a
PostgreSQL database); API clients with tokens edit one summary through both.
The stale writer gets 409 and its text back; what the other wrote stays.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.render.site_support import summary
from tests.servers.openai_server import FakeLLM
from tests.web.support import PASSWORD, add_post, client, desk, login, serve_process, workspace
from tests.web.test_actions import ANSWER

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


# -- regenerate: the model call runs outside any transaction -------------------------------

EDITED = "甲在模型作答时保存的版本。\n\n第二段。"


def _llm_home(tmp_path: Path, store_url: str, llm: FakeLLM) -> Path:
    """:func:`_home` with the loopback model (its key read from a file, never literal)."""
    home = _home(tmp_path, store_url)
    (home / "llm.key").write_text(llm.api_key, encoding="utf-8")
    with (home / "waikan.toml").open("a", encoding="utf-8") as f:
        f.write(
            f'\n[llm]\nbase_url = "{llm.url}"\nmodel = "{llm.model}"\n'
            'api_key = {"$file" = "llm.key"}\n'
        )
    return home


def _two_editors(home: Path) -> tuple[int, dict[str, str]]:
    """One summarized post and API tokens of editors ``a`` and ``b``."""
    ws = workspace(home)
    try:
        aid = add_post(ws, 1)
        for name in ("a", "b"):
            accounts.add_user(ws.store, name, "editor", PASSWORD)
        return aid, {name: accounts.issue_token(ws.store, name) for name in ("a", "b")}
    finally:
        ws.close()


def _spent_calls(rows: list[dict[str, Any]]) -> int:
    return sum(int(str(r["calls"])) for r in rows if r["table"] == "llm_spend")


def _actions(rows: list[dict[str, Any]]) -> list[tuple[object, object]]:
    return [(r["actor"], r["action"]) for r in rows if r["table"] == "audit_log"]


def _bearer(base: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"authorization": f"Bearer {token}"}, timeout=60)


def test_regenerate_on_a_stale_revision_calls_no_model(tmp_path: Path, store_url: str) -> None:
    """B's page (and API) regenerate on the revision before A's edit: 409, and no call."""
    with FakeLLM(api_key="sk-desk", model="m", answer=ANSWER) as llm:
        home = _llm_home(tmp_path, store_url, llm)
        aid, tokens = _two_editors(home)
        with (
            serve_process(home) as one,
            serve_process(home) as two,
            _bearer(one, tokens["a"]) as a,
            _bearer(two, tokens["b"]) as b,
            httpx.Client(base_url=two, timeout=60) as page,
        ):
            path = f"/desk/api/v1/articles/{aid}"
            csrf = login(page, "b")
            html = page.get(f"/desk/articles/{aid}").text
            form = re.search(r'/regenerate".*?name="revision" value="([0-9]+)"', html)
            assert form is not None, html
            seen = int(form.group(1))
            r = a.post(f"{path}/edit", json={"text": EDITED, "revision": seen})
            assert r.status_code == 200, r.text
            stale = page.post(
                f"/desk/articles/{aid}/regenerate", data={"csrf": csrf, "revision": str(seen)}
            )
            assert stale.status_code == 409 and 'class="conflict"' in stale.text, stale.text
            stale = b.post(f"{path}/regenerate", json={"revision": seen})
            assert stale.status_code == 409, stale.text
            assert stale.json()["revision"] == seen + 1
            assert llm.calls == 0  # checked before the call: nothing spent on a stale page
            assert b.get(path).json()["summary"][0] == "甲在模型作答时保存的版本。"
            # on the revision B now sees, the model's answer replaces A's text
            done = b.post(f"{path}/regenerate", json={"revision": seen + 1})
            assert done.status_code == 200, done.text
            assert done.json()["revision"] == seen + 2
            assert a.get(path).json()["summary"][0].startswith("这篇报道描述了一则测试新闻")
        assert llm.calls == 1
    ws = workspace(home)
    try:
        rows = list(ws.store.dump())
        assert _actions(rows)[-2:] == [("a", "edit-text"), ("b", "regenerate")]
        assert _spent_calls(rows) == 1
    finally:
        ws.close()


def test_an_edit_during_the_model_call_beats_regenerate(tmp_path: Path, store_url: str) -> None:
    """A saves through one process while B's regenerate waits for the model in the other.

    The model answers only after A's edit is stored, so the interleaving is exact:
    B gets 409, A's text stays, the audit has A's edit and no regenerate, and the
    call B made is still in the day's spend.
    """
    where: dict[str, Any] = {}
    edited: list[httpx.Response] = []

    def answer_after_an_edit(_body: dict[str, Any]) -> str:
        if not edited:
            with _bearer(where["one"], where["token"]) as a:
                text = {"text": EDITED, "revision": where["rev"]}
                edited.append(a.post(f"/desk/api/v1/articles/{where['aid']}/edit", json=text))
        return ANSWER

    with FakeLLM(api_key="sk-desk", model="m", answer=answer_after_an_edit) as llm:
        home = _llm_home(tmp_path, store_url, llm)
        aid, tokens = _two_editors(home)
        with serve_process(home) as one, serve_process(home) as two, _bearer(two, tokens["b"]) as b:
            path = f"/desk/api/v1/articles/{aid}"
            rev = b.get(path).json()["revision"]
            where.update(one=one, token=tokens["a"], rev=rev, aid=aid)
            lost = b.post(f"{path}/regenerate", json={"revision": rev})
            assert [r.status_code for r in edited] == [200], [r.text for r in edited]
            assert lost.status_code == 409, lost.text
            assert lost.json()["revision"] == rev + 1
            seen = b.get(path).json()
            assert seen["summary"] == ["甲在模型作答时保存的版本。", "第二段。"]
            assert seen["revision"] == rev + 1 and seen["status"] == edited[0].json()["status"]
        assert llm.calls == 1
    ws = workspace(home)
    try:
        rows = list(ws.store.dump())
        assert _actions(rows) == [("a", "edit"), ("a", "edit-text")]  # no regenerate
        assert _spent_calls(rows) == 1  # the call was made: its spend counts
        current = ws.store.current_summary(aid)
        assert current is not None and current.backend == "editor"
        assert len(ws.store.summaries_of(aid)) == 2  # the pipeline's and A's; no model answer
    finally:
        ws.close()


@pytest.mark.parametrize("action", ["edit", "reject"])
def test_regenerate_without_a_revision_swaps_on_the_one_it_read(
    tmp_path: Path, store_url: str, action: str
) -> None:
    """No revision sent: the one read before the call is compared; a reject counts too."""
    with FakeLLM(api_key="sk-desk", model="m", answer=ANSWER) as llm:
        ws = workspace(_llm_home(tmp_path, store_url, llm))
        try:
            aid = add_post(ws, 1)

            def b_acts_meanwhile(_body: dict[str, Any]) -> str:
                if llm.calls == 1:
                    if action == "edit":
                        review.edit(ws, aid, EDITED, "b", revision=1)
                    else:
                        review.reject(ws, aid, "b", "wrong", revision=1)
                return ANSWER

            llm.answer = b_acts_meanwhile
            with pytest.raises(ConflictError):
                review.regenerate(ws, aid, "a")
            assert llm.calls == 1
            rows = list(ws.store.dump())
            assert [who for who, what in _actions(rows) if what == "regenerate"] == []
            assert _spent_calls(rows) == 1
            found = ws.store.article(aid)
            current = ws.store.current_summary(aid)
            assert found is not None and current is not None
            if action == "edit":
                assert current.backend == "editor" and found.status != Status.REJECTED.value
            else:
                assert current.backend == "openai" and found.status == Status.REJECTED.value
                assert not current.paragraphs[0].startswith("这篇报道描述了一则测试新闻")
            # with nothing moving meanwhile the next regenerate goes through and is
            # audited: with the dropped answer, cached when it was dropped (no new call)
            if action == "edit":
                done = review.regenerate(ws, aid, "a", revision=2)
                assert done.revision == 3 and llm.calls == 1
                rows = list(ws.store.dump())
                assert _actions(rows)[-1] == ("a", "regenerate") and _spent_calls(rows) == 1
                regenerated = ws.store.current_summary(aid)
                assert regenerated is not None and regenerated.backend == "openai"
        finally:
            ws.close()
