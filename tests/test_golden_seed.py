"""The first acceptance test: the seed post reproduced end to end (SPEC §1).

A realistic Reuters page, a real OpenAI-compatible server on loopback that
answers only a correct request, and the real CLI in subprocesses.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

from tests.conftest import DATA, SEED, SEED_SUMMARY_LINE, run_proc
from tests.servers.openai_server import FakeLLM

from waikan.summarize.prompt import CLOSE, OPEN

API_KEY = "sk-seed-test-5f1c0ffee"
MODEL = "deepseek-chat"


def seed_summary_answer() -> str:
    """The seed's summary as the model gives it: four paragraphs, blank-line separated."""
    line = SEED.read_text(encoding="utf-8").split("\n")[SEED_SUMMARY_LINE]
    paragraphs = line.split(" ")
    assert len(paragraphs) == 4
    return "\n\n".join(paragraphs)


def test_seed_post_end_to_end(tmp_path: Path) -> None:
    seed = SEED.read_text(encoding="utf-8")
    home = tmp_path / "ws"
    first_paragraph = json.loads((DATA / "reuters-blinken-wang.expected.json").read_text())[
        "paragraphs"
    ][0]
    with FakeLLM(
        api_key=API_KEY,
        model=MODEL,
        answer=seed_summary_answer(),
        require_delimiters=(OPEN, CLOSE),
        require_text=first_paragraph,
    ) as llm:
        env = {
            "WAIKAN_HOME": str(home),
            "WAIKAN_CHANNEL_NAME": "真相集中营",
            "WAIKAN_LLM_BASE_URL": llm.url,
            "WAIKAN_LLM_MODEL": MODEL,
            "WAIKAN_LLM_API_KEY": API_KEY,
        }
        added = run_proc(["add", str(DATA / "reuters-blinken-wang.html")], env)
        assert added.code == 0, added.err
        article_id = added.out.split("\t")[0]
        summarized = run_proc(["summarize"], env)
        assert summarized.code == 0, summarized.err
        shown = run_proc(["show", article_id, "--format", "text"], env)
        assert shown.code == 0, shown.err
        assert llm.calls == 1
        assert all(r["auth_ok"] for r in llm.requests)

    out = shown.out.removesuffix("\n")  # click.echo adds one; the post has no trailing newline
    assert unicodedata.normalize("NFKC", out) == unicodedata.normalize("NFKC", seed)
    got_lines, want_lines = out.split("\n"), seed.split("\n")
    assert len(got_lines) == len(want_lines)
    for i, (got, want) in enumerate(zip(got_lines, want_lines, strict=True)):
        if i != SEED_SUMMARY_LINE:
            assert got == want, f"line {i + 1} differs"
    summary = got_lines[SEED_SUMMARY_LINE]
    assert "处理分歧，同时" in summary and "," not in summary

    # The key never lands anywhere: output, stderr, the store.
    from waikan.store import open_store

    everything = added.out + added.err + summarized.out + summarized.err + shown.out + shown.err
    store = open_store(f"sqlite:///{home / 'waikan.db'}")
    everything += "\n".join(json.dumps(row, default=str) for row in store.dump())
    store.close()
    assert API_KEY not in everything
    assert "2023-10-27T14:03:40Z" in everything  # the scan did see the stored rows


def test_summary_stored_as_list_with_prompt_version(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    with FakeLLM(
        api_key=API_KEY, model=MODEL, answer="标题：布林肯会见王毅\n\n" + seed_summary_answer()
    ) as llm:
        env = {
            "WAIKAN_HOME": str(home),
            "WAIKAN_LLM_BASE_URL": llm.url,
            "WAIKAN_LLM_MODEL": MODEL,
            "WAIKAN_LLM_API_KEY": API_KEY,
        }
        assert run_proc(["add", str(DATA / "reuters-blinken-wang.html")], env).code == 0
        assert run_proc(["summarize"], env).code == 0
        shown = run_proc(["show", "1", "--format", "json"], env)
    post = json.loads(shown.out)
    assert len(post["summary"]) == 4
    assert post["title_zh"] == "布林肯会见王毅"
    assert "布林肯会见王毅" not in run_proc(["show", "1"], env).out  # never in the text rendering

    from waikan.store import open_store

    store = open_store(f"sqlite:///{home / 'waikan.db'}")
    (summary,) = store.summaries_of(1)
    store.close()
    assert summary.backend == "openai" and summary.model == MODEL
    assert summary.prompt_version == "zh-digest-2"
    assert summary.tokens_in > 0 and summary.tokens_out > 0
