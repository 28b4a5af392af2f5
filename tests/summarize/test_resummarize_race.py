"""``waikan summarize ID`` against an editor acting on the desk while the model answers.

The loopback model performs the desk action (through the store, from its request
thread) before it answers, so the interleaving is exact: the editor's change must
win, the CLI must say so in one informational line (no error: nothing failed, so
single ids, batches and ``waikan run`` exit as the other articles say), and the call
it made must stay in the spend and its answer in the cache (the next try reuses it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.conftest import DATA, Result
from tests.render.site_support import workspace
from tests.servers.openai_server import FakeLLM
from tests.summarize.test_guarded import GOOD, KEY, MODEL, _insert_article

from waikan.config import load
from waikan.errors import ConflictError, SummaryDropped
from waikan.models import Status
from waikan.pipeline import conflict_message
from waikan.publish import review
from waikan.summarize.budget import spend_rows
from waikan.workspace import Workspace

EDITED = "编辑在模型作答时保存的版本。\n\n第二段。"
CHANGED = (
    "changed meanwhile (edited, approved, rejected, published, marked a duplicate or "
    "summarized elsewhere; post now at revision {revision})"
)


def kept_line(article_id: int, revision: int, tail: str, stage: str = "") -> str:
    """The informational stderr line of a change that won over this run's summary."""
    return f"waikan: {stage}article {article_id} {CHANGED.format(revision=revision)}: {tail}"


def assert_only_notes(result: Result, *notes: str) -> None:
    """Exactly these stderr lines, none of them an error line."""
    lines = [ln for ln in result.err.splitlines() if ln.strip()]
    assert lines == list(notes), result.err
    assert "waikan: error:" not in result.err and "Traceback" not in result.err


def llm_env(llm: FakeLLM) -> dict[str, str]:
    return {
        "WAIKAN_LLM_BASE_URL": llm.url,
        "WAIKAN_LLM_MODEL": MODEL,
        "WAIKAN_LLM_API_KEY": KEY,
    }


@pytest.mark.parametrize(
    ("first", "action", "args"),
    [
        ("summarized", "edit", ("1",)),
        ("summarized", "approve", ("1",)),
        ("summarized", "reject", ("1",)),
        ("extracted", "reject", ("1",)),
        ("extracted", "reject", ()),  # the pending batch swaps the same way
    ],
    ids=["edit", "approve", "reject", "reject-extracted", "reject-pending"],
)
def test_a_desk_action_during_the_model_call_wins(
    waikan: Any, home: Path, first: str, action: str, args: tuple[str, ...]
) -> None:
    added = waikan("add", str(DATA / "reuters-blinken-wang.html"))
    assert added.code == 0, added.err
    if first == "summarized":  # the extractive backend's post (no model, nothing cached)
        done = waikan("summarize", "1")
        assert done.code == 0, done.err
    ws = workspace(home)
    try:
        before = ws.store.revision(1)
        acted: list[str] = []

        def desk_acts_then_answer(_body: dict[str, Any]) -> str:
            if not acted:
                if action == "edit":
                    acted.append(review.edit(ws, 1, EDITED, "editor").status)
                elif action == "approve":
                    acted.append(review.approve(ws, 1, "editor"))
                else:
                    acted.append(review.reject(ws, 1, "editor", "off-topic"))
            return GOOD

        with FakeLLM(api_key=KEY, model=MODEL, answer=desk_acts_then_answer) as llm:
            result = waikan("summarize", *args, env=llm_env(llm))
            assert llm.calls == 1
        assert len(acted) == 1
        # The editor's change winning is no failure, for one id as for the pending batch.
        assert result.code == 0, result.err
        assert result.out == ""  # nothing summarized
        after = ws.store.revision(1)
        assert after == before + (1 if action == "edit" else 0)
        assert_only_notes(
            result,
            kept_line(1, after, "the new summary was dropped, its spend is recorded"),
        )
        article = ws.store.article(1)
        assert article is not None and article.status == acted[0]
        current = ws.store.current_summary(1)
        if first == "extracted":
            assert current is None and ws.store.summaries_of(1) == []
        else:
            assert current is not None and current.backend != "openai"  # no model answer
            assert all(s.backend != "openai" for s in ws.store.summaries_of(1))
        if action == "edit":
            assert current is not None and current.paragraphs == tuple(EDITED.split("\n\n"))
        assert sum(r.calls for r in spend_rows(ws.store)) == 1  # the call made is paid for
    finally:
        ws.close()


def test_resummarize_without_a_desk_action_replaces_the_post(waikan: Any, home: Path) -> None:
    """The swap passes when nobody acted: the model's summary is the new revision."""
    assert waikan("add", str(DATA / "reuters-blinken-wang.html")).code == 0
    assert waikan("summarize", "1").code == 0
    with FakeLLM(api_key=KEY, model=MODEL, answer=GOOD) as llm:
        result = waikan("summarize", "1", env=llm_env(llm))
        assert llm.calls == 1
    assert result.code == 0, result.err
    ws = workspace(home)
    try:
        assert ws.store.revision(1) == 2
        article = ws.store.article(1)
        assert article is not None and article.status == Status.SUMMARIZED.value
        current = ws.store.current_summary(1)
        assert current is not None and current.backend == "openai"
    finally:
        ws.close()


def test_a_dropped_answer_is_reused_not_paid_again(waikan: Any, home: Path) -> None:
    """The desk approves during the call: that answer is dropped, but cached, so the next
    ``waikan summarize 1`` stores it without a second call (as without the desk action)."""
    assert waikan("add", str(DATA / "reuters-blinken-wang.html")).code == 0
    assert waikan("summarize", "1").code == 0  # the extractive backend's post
    ws = workspace(home)
    try:

        def desk_approves_then_answer(_body: dict[str, Any]) -> str:
            if llm.calls == 1:
                assert review.approve(ws, 1, "editor") == Status.APPROVED.value
            return GOOD

        with FakeLLM(api_key=KEY, model=MODEL, answer=desk_approves_then_answer) as llm:
            lost = waikan("summarize", "1", env=llm_env(llm))
            assert lost.code == 0, lost.err
            assert_only_notes(
                lost, kept_line(1, 1, "the new summary was dropped, its spend is recorded")
            )
            again = waikan("summarize", "1", env=llm_env(llm))
            assert again.code == 0, again.err
            assert llm.calls == 1  # the paid answer, not a second call
        current = ws.store.current_summary(1)
        assert current is not None and current.backend == "openai"
        assert current.paragraphs[0].startswith("这篇报道描述了美国国务卿")
        assert sum(r.calls for r in spend_rows(ws.store)) == 1
    finally:
        ws.close()


def test_a_dropped_regenerate_answer_is_reused_by_summarize(waikan: Any, home: Path) -> None:
    """Desk regenerate and ``waikan summarize`` drop and cache through one code path."""
    assert waikan("add", str(DATA / "reuters-blinken-wang.html")).code == 0
    assert waikan("summarize", "1").code == 0

    def editor_edits_then_answer(_body: dict[str, Any]) -> str:
        if llm.calls == 1:
            review.edit(desk, 1, EDITED, "editor")
        return GOOD

    with FakeLLM(api_key=KEY, model=MODEL, answer=editor_edits_then_answer) as llm:
        desk = Workspace(load(home, env=llm_env(llm)))
        try:
            with pytest.raises(SummaryDropped) as info:
                review.regenerate(desk, 1, "desk")
            assert info.value.calls == 1 and info.value.revision == 2
            current = desk.store.current_summary(1)
            assert current is not None and current.backend == "editor"
            done = waikan("summarize", "1", env=llm_env(llm))
            assert done.code == 0, done.err
            assert llm.calls == 1  # summarize stored the regenerate's paid answer
            assert desk.store.revision(1) == 3
            current = desk.store.current_summary(1)
            assert current is not None and current.backend == "openai"
        finally:
            desk.close()


@pytest.mark.parametrize("desk_rejects", [True, False], ids=["rejected", "control"])
def test_an_article_rejected_before_its_turn_costs_no_call(
    waikan: Any, home: Path, desk_rejects: bool
) -> None:
    """A pending batch lists statuses up front; one rejected while an earlier article is at
    the model is skipped at its turn without a call (it was called, then dropped)."""
    assert waikan("add", str(DATA / "reuters-blinken-wang.html")).code == 0
    _insert_article(home, "https://example.com/other", ["Another story. " * 60])
    ws = workspace(home)
    try:

        def desk_rejects_the_second(_body: dict[str, Any]) -> str:
            if desk_rejects and llm.calls == 1:
                assert review.reject(ws, 2, "editor", "off-topic") == Status.REJECTED.value
            return GOOD

        with FakeLLM(api_key=KEY, model=MODEL, answer=desk_rejects_the_second) as llm:
            env = {**llm_env(llm), "WAIKAN_LLM_CONCURRENCY": "1"}  # one article after the other
            result = waikan("summarize", env=env)
            calls = llm.calls
        first = ws.store.article(1)
        second = ws.store.article(2)
        assert first is not None and first.status == Status.SUMMARIZED.value
        assert second is not None
        assert result.out.startswith("1\tsummarized\t"), result.out
        if desk_rejects:
            assert calls == 1
            assert result.code == 0, result.err
            assert_only_notes(result, kept_line(2, 0, "skipped before the model call"))
            assert result.out.count("\n") == 1  # article 2 is not listed as done
            assert second.status == Status.REJECTED.value and ws.store.summaries_of(2) == []
        else:
            assert calls >= 2 and result.code == 0, result.err
            assert ws.store.summaries_of(2) != []
        assert sum(r.calls for r in spend_rows(ws.store)) == calls
    finally:
        ws.close()


@pytest.mark.parametrize(
    ("exc", "tail"),
    [
        (SummaryDropped(7, 3, calls=2), ": the new summary was dropped, its spend is recorded"),
        (SummaryDropped(7, 3, calls=0), ": the new summary was dropped"),
        (ConflictError(7, 3), ": skipped before the model call"),
    ],
    ids=["paid", "cached-or-extractive", "before-the-call"],
)
def test_the_conflict_message_names_spend_only_when_there_was_some(
    exc: ConflictError, tail: str
) -> None:
    message = conflict_message(7, exc)
    assert message.startswith("article 7 changed meanwhile (") and "revision 3)" in message
    assert message.endswith(tail), message


def test_a_real_failure_beside_a_kept_change_still_exits_1(waikan: Any, home: Path) -> None:
    """Only the kept change is informational: another article's failure in the same
    batch is still an error line and exit 1."""
    assert waikan("add", str(DATA / "reuters-blinken-wang.html")).code == 0
    _insert_article(home, "https://example.com/empty", [" "])  # no text: fails, no call
    ws = workspace(home)
    try:

        def desk_rejects_then_answer(_body: dict[str, Any]) -> str:
            if llm.calls == 1:
                assert review.reject(ws, 1, "editor", "off-topic") == Status.REJECTED.value
            return GOOD

        with FakeLLM(api_key=KEY, model=MODEL, answer=desk_rejects_then_answer) as llm:
            env = {**llm_env(llm), "WAIKAN_LLM_CONCURRENCY": "1"}
            result = waikan("summarize", env=env)
            assert llm.calls == 1
        assert result.code == 1, result.err
        assert result.out == ""
        assert result.err.splitlines() == [
            kept_line(1, 0, "the new summary was dropped, its spend is recorded"),
            "waikan: error: article 2: article 2 has no text to summarize (empty article)",
        ], result.err
        first, second = ws.store.article(1), ws.store.article(2)
        assert first is not None and first.status == Status.REJECTED.value
        assert second is not None and second.status == Status.FAILED.value
    finally:
        ws.close()


@pytest.mark.parametrize("desk_acts", [True, False], ids=["kept", "control"])
def test_waikan_run_reports_a_kept_change_as_a_note(
    waikan: Any, home: Path, desk_acts: bool
) -> None:
    """``waikan run``'s summarize stage: the same line under the stage's name, no error."""
    assert waikan("add", str(DATA / "reuters-blinken-wang.html")).code == 0
    ws = workspace(home)
    try:

        def desk_rejects_then_answer(_body: dict[str, Any]) -> str:
            if desk_acts and llm.calls == 1:
                assert review.reject(ws, 1, "editor", "off-topic") == Status.REJECTED.value
            return GOOD

        with FakeLLM(api_key=KEY, model=MODEL, answer=desk_rejects_then_answer) as llm:
            result = waikan("run", env=llm_env(llm))
            assert llm.calls == 1
        article = ws.store.article(1)
        assert article is not None
        if desk_acts:
            assert result.code == 0, result.err
            assert "summarize: 0 done, 0 rejected, 0 errors" in result.out.splitlines()
            assert_only_notes(
                result,
                kept_line(
                    1, 0, "the new summary was dropped, its spend is recorded", "summarize: "
                ),
            )
            assert article.status == Status.REJECTED.value
        else:
            assert result.code == 0 and result.err == "", result.err
            assert "summarize: 1 done, 0 rejected, 0 errors" in result.out.splitlines()
            assert article.status != Status.REJECTED.value
    finally:
        ws.close()
