"""The "ask" update policy through the CLI: a model server on loopback counts the calls."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import assert_one_line_error, run_inproc
from tests.dedupe.pages import page, write
from tests.dedupe.test_pipeline import ANSWER, API_KEY, MODEL, REPORTS, env_for
from tests.servers.openai_server import FakeLLM

from waikan.store import open_store

WIRE = REPORTS[0]["paragraphs"]
LATER = (
    "Rescuers said on Wednesday the toll had risen to 15 after two more bodies were "
    "found in Caylloma province and a child died in hospital in Arequipa city."
)


def first_then_update(home: Path, folder: Path, llm: FakeLLM) -> tuple[dict[str, str], int]:
    """Summarize a wire story, then ingest a later version that changed a third of the text."""
    env = env_for(home, llm, WAIKAN_DEDUPE_UPDATE_POLICY="ask")
    first = page(
        outlet="Andes Wire",
        url="https://andeswire.example/world/peru-quake",
        headline="Strong earthquake kills 12 in southern Peru",
        paragraphs=WIRE[:4],
        published="2024-03-05T09:00:00Z",
    )
    assert run_inproc(["add", str(write(folder, "first.html", first))], env).code == 0
    assert run_inproc(["summarize"], env).code == 0
    assert llm.calls == 1
    update = page(
        outlet="Andes Wire",
        url="https://andeswire.example/world/peru-quake-updated",
        headline="Peru earthquake toll rises to 15",
        paragraphs=[*WIRE[:4], WIRE[4], LATER],
        published="2024-03-06T09:00:00Z",
    )
    assert run_inproc(["add", str(write(folder, "update.html", update))], env).code == 0
    (story,) = stories(env)
    assert story["pending_update_id"] is not None
    assert "update pending" in run_inproc(["stories"], env).out
    return env, int(story["id"])


def stories(env: dict[str, str]) -> list[dict[str, object]]:
    got = run_inproc(["stories", "--json"], env)
    assert got.code == 0, got.err
    return [json.loads(line) for line in got.out.splitlines()]


def summaries(home: Path) -> dict[int, int]:
    """Article id → how many summaries the store keeps for it."""
    store = open_store(f"sqlite:///{home / 'waikan.db'}")
    try:
        return {a.id: len(store.summaries_of(a.id)) for a in store.articles()}
    finally:
        store.close()


def test_approve_update_summarizes_the_new_version_once(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    with FakeLLM(api_key=API_KEY, model=MODEL, answer=ANSWER) as llm:
        env, story_id = first_then_update(home, tmp_path / "pages", llm)
        (before,) = stories(env)
        old_id, new_id = before["canonical_id"], before["pending_update_id"]
        approved = run_inproc(["stories", "approve-update", str(story_id)], env)
        assert approved.code == 0, approved.err
        assert f"article {new_id}" in approved.out
        assert run_inproc(["summarize"], env).code == 0
        assert run_inproc(["summarize"], env).code == 0  # again: nothing left to pay for
        assert llm.calls == 2  # exactly one call for the approved update
    (after,) = stories(env)
    assert after["canonical_id"] == new_id and after["pending_update_id"] is None
    assert {o["article_id"]: o["relation"] for o in after["outlets"]} == {
        new_id: "canonical"
    }  # one outlet, listed once: its newest version
    counts = summaries(home)
    assert counts[int(str(old_id))] == 1  # the old summary stays in the history
    assert counts[int(str(new_id))] == 1
    listed = run_inproc(["list", "--json"], env).out.splitlines()
    status = {a["id"]: a["status"] for a in map(json.loads, listed)}
    assert status[old_id] == "duplicate" and status[new_id] != "duplicate"
    again = run_inproc(["stories", "approve-update", str(story_id)], env)
    assert_one_line_error(again)  # nothing pending any more
    assert "no update waiting" in again.err


def test_decline_update_keeps_the_summary_and_pays_nothing(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    with FakeLLM(api_key=API_KEY, model=MODEL, answer=ANSWER) as llm:
        env, story_id = first_then_update(home, tmp_path / "pages", llm)
        (before,) = stories(env)
        declined = run_inproc(["stories", "decline-update", str(story_id)], env)
        assert declined.code == 0, declined.err
        assert run_inproc(["summarize"], env).code == 0
        assert llm.calls == 1  # no model call for a declined update
    (after,) = stories(env)
    assert after["canonical_id"] == before["canonical_id"]
    assert after["pending_update_id"] is None
    assert "update pending" not in run_inproc(["stories"], env).out
    counts = summaries(home)
    assert counts[int(str(before["canonical_id"]))] == 1
    assert counts[int(str(before["pending_update_id"]))] == 0
    assert_one_line_error(run_inproc(["stories", "decline-update", str(story_id)], env))


def test_approve_or_decline_bad_story_is_one_line_error(tmp_path: Path) -> None:
    env = env_for(tmp_path / "ws")
    for command in ("approve-update", "decline-update"):
        missing = run_inproc(["stories", command, "999"], env)
        assert_one_line_error(missing)
        assert "no story 999" in missing.err
        typo = run_inproc(["stories", command, "not-a-number"], env)
        assert typo.code == 2 and "Traceback" not in typo.err  # click's usage error
        assert "not a valid integer" in typo.err
