"""Acceptance of issue 3 through the real CLI, a real SQLite file and a scripted
OpenAI-compatible server on loopback: each odd answer ends in the right state."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.conftest import DATA, SEED, SEED_SUMMARY_LINE, assert_one_line_error
from tests.summarize.scripted_llm import Hang, Raw, ScriptedLLM, Status

from waikan.models import Extracted, Summary
from waikan.store import open_store, schema
from waikan.summarize.openai_compat import parse_answer
from waikan.summarize.service import _cache_put

KEY = "sk-guard-test-0bad5eed"
MODEL = "test-model"
SEED_PARAS = SEED.read_text(encoding="utf-8").split("\n")[SEED_SUMMARY_LINE].split(" ")
GOOD = "标题：布林肯与王毅再度会晤\n\n" + "\n\n".join(SEED_PARAS)


def variant(first_extra: str = "", replace: tuple[str, str] | None = None, prefix: str = "") -> str:
    paras = list(SEED_PARAS)
    if replace:
        paras = [p.replace(*replace) for p in paras]
    paras[0] = prefix + paras[0] + first_extra
    return "\n\n".join(paras)


INVENTED = variant("双方还宣布了一项价值52亿美元的贸易协议。")
WRONG_DATE = variant("会晤于10月28日结束。")
BAD_NAME = variant(replace=("王毅", "王义"))
CHATTER = variant(prefix="以下是摘要：")
ENGLISH = "Blinken met Wang Yi in Washington on Friday.\n\nThey discussed many issues together."


def env(llm: ScriptedLLM, **extra: str) -> dict[str, str]:
    return {
        "WAIKAN_LLM_BASE_URL": llm.url,
        "WAIKAN_LLM_MODEL": MODEL,
        "WAIKAN_LLM_API_KEY": KEY,
        **{f"WAIKAN_{k.upper()}": v for k, v in extra.items()},
    }


def add_seed(waikan: Any, e: dict[str, str]) -> None:
    added = waikan("add", str(DATA / "reuters-blinken-wang.html"), env=e)
    assert added.code == 0, added.err


def status_of(home: Path, article_id: int = 1) -> str:
    store = open_store(f"sqlite:///{home / 'waikan.db'}")
    try:
        article = store.article(article_id)
        assert article is not None
        return article.status
    finally:
        store.close()


def findings_of(waikan: Any, e: dict[str, str], article_id: int = 1) -> list[dict[str, str]]:
    shown = waikan("show", str(article_id), "--format", "json", env=e)
    assert shown.code == 0, shown.err
    return list(json.loads(shown.out)["findings"])


def test_normal_answer_is_summarized_with_glossary_in_prompt(waikan: Any, home: Path) -> None:
    with ScriptedLLM(api_key=KEY, default=GOOD) as llm:
        e = env(llm)
        add_seed(waikan, e)
        result = waikan("summarize", env=e)
        assert result.code == 0, result.err
        assert llm.calls == 1
        prompt = llm.prompt_text(0)
    assert status_of(home) == "summarized"
    assert "Antony Blinken = 安东尼·布林肯" in prompt and "Wang Yi = 王毅" in prompt
    assert "Donald Trump" not in prompt  # only names found in the article are sent
    assert findings_of(waikan, e) == []


def test_nul_in_an_answer_is_dropped_not_a_crash(waikan: Any, home: Path) -> None:
    """PostgreSQL text cannot hold NUL: such an answer crashed ``summarize`` there."""
    title, first, *rest = GOOD.split("\n\n")
    answer = "\n\n".join([title[:5] + "\x00" + title[5:], first + "\x00", *rest])
    with ScriptedLLM(api_key=KEY, default=answer) as llm:
        e = env(llm)
        add_seed(waikan, e)
        result = waikan("summarize", env=e)
        assert result.code == 0, result.err
    store = open_store(f"sqlite:///{home / 'waikan.db'}")
    try:
        summary = store.current_summary(1)
    finally:
        store.close()
    title_zh, paragraphs = parse_answer(GOOD)  # the answer as if it had no NUL
    assert summary is not None and summary.title_zh == title_zh == "布林肯与王毅再度会晤"
    assert summary.paragraphs == tuple(paragraphs)


@pytest.mark.parametrize(
    ("script", "calls"),
    [
        ([Status(429, retry_after=0.05), GOOD], 2),
        ([Status(500), Status(503), GOOD], 3),
    ],
    ids=["429-retry-after", "500s"],
)
def test_transient_errors_are_retried(
    waikan: Any, home: Path, script: list[Any], calls: int
) -> None:
    with ScriptedLLM(api_key=KEY, script=script, default=GOOD) as llm:
        e = env(llm)
        add_seed(waikan, e)
        result = waikan("summarize", env=e)
        assert result.code == 0, result.err
        assert llm.calls == calls
    assert status_of(home) == "summarized"


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (Hang(3), "timed out"),
        (Raw(b'{"choices": [ not json'), "malformed"),
        (Status(500), "HTTP 500"),
    ],
    ids=["hang", "malformed-json", "500-forever"],
)
def test_endpoint_failures_leave_status(waikan: Any, home: Path, step: Any, message: str) -> None:
    with ScriptedLLM(api_key=KEY, script=[step] * 5, default=step) as llm:
        e = env(llm, llm_timeout="0.5", llm_max_retries="1")
        add_seed(waikan, e)
        result = waikan("summarize", env=e)
    assert_one_line_error(result)
    assert message in result.err
    assert status_of(home) == "extracted"  # retried on a later run, nothing half-written
    store = open_store(f"sqlite:///{home / 'waikan.db'}")
    assert store.summaries_of(1) == []
    store.close()


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (ENGLISH, "language"),
        (INVENTED, "number"),
        (WRONG_DATE, "date"),
        (BAD_NAME, "name"),
        (CHATTER, "chatter"),
    ],
)
def test_bad_answer_twice_goes_to_needs_review(
    waikan: Any, home: Path, answer: str, kind: str
) -> None:
    with ScriptedLLM(api_key=KEY, default=answer) as llm:
        e = env(llm)
        add_seed(waikan, e)
        result = waikan("summarize", env=e)
        assert result.code == 0, result.err
        assert llm.calls == 2  # one retry with the problems listed
        retry_prompt = llm.prompt_text(1)
    assert status_of(home) == "needs_review"
    found = findings_of(waikan, e)
    assert kind in {f["kind"] for f in found}, found
    assert any(f["message"] in retry_prompt for f in found)
    text = waikan("show", "1", env=e)
    assert text.code == 0
    assert "needs_review" in text.err and found[0]["message"] in text.err
    assert found[0]["message"] not in text.out  # never in the text rendering


def test_bad_answer_then_good_retry_is_summarized(waikan: Any, home: Path) -> None:
    with ScriptedLLM(api_key=KEY, script=[INVENTED], default=GOOD) as llm:
        e = env(llm)
        add_seed(waikan, e)
        assert waikan("summarize", env=e).code == 0
        assert llm.calls == 2
        assert "52亿美元" in llm.prompt_text(1)  # the problem was stated
    assert status_of(home) == "summarized"
    assert findings_of(waikan, e) == []


def test_rerun_uses_cache_not_the_model(waikan: Any, home: Path) -> None:
    with ScriptedLLM(api_key=KEY, default=GOOD) as llm:
        e = env(llm)
        add_seed(waikan, e)
        assert waikan("summarize", env=e).code == 0
        assert waikan("summarize", "1", env=e).code == 0
        assert llm.calls == 1
        stats = waikan("stats", "--json", env=e)
    assert stats.code == 0, stats.err
    rows = [json.loads(line) for line in stats.out.splitlines()]
    spend = [r for r in rows if r.get("type") == "spend"]
    assert spend and spend[0]["calls"] == 1 and spend[0]["cached"] == 1
    assert spend[0]["tokens_in"] > 0


def test_copies_in_one_run_take_one_call_per_body(home: Path) -> None:
    """Copies handed to one run (the summarize stage dedupes first; a direct caller may
    not): one call per distinct body, the rest from the cache, every copy summarized."""
    from waikan import config as config_mod
    from waikan.summarize.service import Outcome, Summarizer
    from waikan.workspace import Workspace

    answer = "\n\n".join(
        ["这篇报道描述了一场关于经济政策和对外关系的讲话，并分析了各方反应。" * 3] * 4
    )
    with ScriptedLLM(api_key=KEY, default=answer, delay=0.05) as llm:
        overrides = {"llm.base_url": llm.url, "llm.model": MODEL, "llm.concurrency": 4}
        cfg = config_mod.load(home, env={"WAIKAN_LLM_API_KEY": KEY}, overrides=overrides)
        ws = Workspace(cfg)
        try:
            records = []
            for i in range(6):
                body = f"Story {i % 2}: officials spoke about the economy and foreign affairs. "
                ext = Extracted(
                    title="A story",
                    source="Test",
                    published="2024-03-01T10:00:00Z",
                    caption=None,
                    paragraphs=(body * 10,),
                    language="en",
                )
                records.append(ws.store.add_article(f"https://example.com/{i}", ext, raw=b"x"))
            done: list[Outcome] = []
            Summarizer(ws).run(records, done.append, lambda a, e: pytest.fail(str(e)))
            assert llm.calls == 2
            assert sorted(o.cached for o in done) == [False] * 2 + [True] * 4
            statuses = {a.status for r in records if (a := ws.store.article(r.id))}
            assert statuses == {"summarized"}
        finally:
            ws.close()


def test_a_second_cache_entry_for_a_key_keeps_the_first(home: Path) -> None:
    """Another worker caching the same story first is no error, and the transaction the
    entry is written in (with the summary) goes on."""
    home.mkdir(parents=True)
    store = open_store(f"sqlite:///{home / 'waikan.db'}")
    first = Summary(paragraphs=("甲",), backend="openai", model="m", prompt_version="1")
    second = Summary(paragraphs=("乙",), backend="openai", model="m", prompt_version="1")
    try:
        with store.engine.begin() as c:
            _cache_put(c, "k", first, [])
            _cache_put(c, "k", second, [])
            _cache_put(c, "k2", second, [])
        with store.engine.connect() as c:
            rows = c.execute(select(schema.summary_cache.c.key, schema.summary_cache.c.paragraphs))
            assert sorted((r.key, list(r.paragraphs)) for r in rows) == [
                ("k", ["甲"]),
                ("k2", ["乙"]),
            ]
    finally:
        store.close()


def test_budget_zero_stops_with_clear_message(waikan: Any, home: Path) -> None:
    with ScriptedLLM(api_key=KEY, default=GOOD) as llm:
        e = env(llm, summarize_daily_token_budget="0")
        add_seed(waikan, e)
        result = waikan("summarize", env=e)
        assert llm.calls == 0
    assert_one_line_error(result)
    assert "budget" in result.err
    assert status_of(home) == "extracted"


def test_cost_budget_stops_second_article(waikan: Any, home: Path) -> None:
    with ScriptedLLM(api_key=KEY, default=GOOD) as llm:
        # At 10,000 per million tokens the seed request reserves ~21 (its prompt plus
        # llm.max_tokens) and spends ~20; the second (~17) no longer fits in 30.
        e = env(
            llm,
            llm_prices=f"{MODEL}=10000/10000",
            summarize_daily_cost_budget="30",
            llm_concurrency="1",
        )
        add_seed(waikan, e)
        _insert_article(home, "https://example.com/other", ["Another story. " * 60])
        result = waikan("summarize", env=e)
        assert llm.calls == 1
    assert result.code == 1
    assert "daily cost budget reached" in result.err
    assert {status_of(home, 1), status_of(home, 2)} == {"summarized", "extracted"}


def test_fallback_chain_uses_next_model(waikan: Any, home: Path) -> None:
    with ScriptedLLM(api_key=KEY, models=("backup-model",), default=GOOD) as llm:
        e = env(llm, llm_fallback_models="backup-model")
        add_seed(waikan, e)
        assert waikan("summarize", env=e).code == 0
        assert [b["model"] for b in llm.bodies] == [MODEL, "backup-model"]
    store = open_store(f"sqlite:///{home / 'waikan.db'}")
    (summary,) = store.summaries_of(1)
    store.close()
    assert summary.model == "backup-model"


def test_unknown_model_and_wrong_key_are_one_line_errors(waikan: Any, home: Path) -> None:
    with ScriptedLLM(api_key=KEY, models=("other",), default=GOOD) as llm:
        e = env(llm)
        add_seed(waikan, e)
        result = waikan("summarize", env=e)
        assert_one_line_error(result)
        assert "does not exist" in result.err
        bad_key = waikan("summarize", env={**e, "WAIKAN_LLM_API_KEY": "sk-wrong"})
        assert_one_line_error(bad_key)
        assert "rejected the API key" in bad_key.err and "sk-wrong" not in bad_key.err
    assert status_of(home) == "extracted"


def test_wrong_base_url_is_one_line_error(waikan: Any, home: Path) -> None:
    with ScriptedLLM(api_key=KEY, default=GOOD) as llm:
        e = env(llm)
        add_seed(waikan, e)
    dead = {**e, "WAIKAN_LLM_MAX_RETRIES": "0"}  # the server is gone: nothing listens
    result = waikan("summarize", env=dead)
    assert_one_line_error(result)
    assert "unreachable" in result.err
    assert status_of(home) == "extracted"


def test_no_api_key_for_remote_endpoint(waikan: Any, home: Path) -> None:
    e = {"WAIKAN_LLM_BASE_URL": "https://api.example.invalid/v1", "WAIKAN_LLM_MODEL": MODEL}
    add_seed(waikan, e)
    result = waikan("summarize", env=e)
    assert_one_line_error(result)
    assert "WAIKAN_LLM_API_KEY" in result.err


def test_empty_article_fails_with_reason(waikan: Any, home: Path) -> None:
    with ScriptedLLM(api_key=KEY, default=GOOD) as llm:
        e = env(llm)
        assert waikan("init", env=e).code == 0
        _insert_article(home, "https://example.com/empty", [" "])
        result = waikan("summarize", "1", env=e)
        assert llm.calls == 0
    assert_one_line_error(result)
    assert "empty article" in result.err
    assert status_of(home) == "failed"


def test_long_article_map_reduce(waikan: Any, home: Path) -> None:
    words = "The committee reviewed the harbour plan in great detail and heard residents."
    paragraphs = [f"{words} " * 20 for _ in range(140)]  # ~20,000 words

    def answer(body: dict[str, Any]) -> str:
        if "要点笔记" in body["messages"][0]["content"]:
            return "- 委员会审议了港口计划。"
        return "\n\n".join(
            ["这篇报道描述了委员会对港口计划的详细审议，以及居民在会上表达的意见和关切。" * 3] * 4
        )

    with ScriptedLLM(api_key=KEY, default=answer) as llm:
        e = env(llm, llm_context_tokens="6000")
        assert waikan("init", env=e).code == 0
        _insert_article(home, "https://example.com/long", paragraphs)
        result = waikan("summarize", env=e)
        assert result.code == 0, result.err
        assert llm.calls >= 4  # several map calls, then the reduce
        assert all(len(json.dumps(b)) < 60_000 for b in llm.bodies)
    assert status_of(home) == "summarized"


def test_traditional_variant_uses_regional_names(waikan: Any, home: Path) -> None:
    answer = "\n\n".join(
        [
            "这篇报道描述了美国总统唐纳德·特朗普在悉尼发表讲话，强调了经济政策和对外关系的重要性。"
            * 3
        ]
        * 4
    )
    with ScriptedLLM(api_key=KEY, default=answer) as llm:
        e = env(llm)
        assert waikan("init", env=e).code == 0
        body = "President Donald Trump spoke in Sydney about the economy and foreign relations. "
        _insert_article(home, "https://example.com/trump", [body * 10])
        assert waikan("summarize", env=e).code == 0
    tw = waikan("show", "1", env={**e, "WAIKAN_CHANNEL_VARIANT": "zh-Hant-TW"})
    hk = waikan("show", "1", env={**e, "WAIKAN_CHANNEL_VARIANT": "zh-Hant-HK"})
    hans = waikan("show", "1", env=e)
    assert "唐納·川普" in tw.out and "雪梨" in tw.out and "這篇報道" in tw.out and "美國" in tw.out
    assert "特朗普" in hk.out and "悉尼" in hk.out and "這篇報道" in hk.out
    assert "唐纳德·特朗普" in hans.out


def test_user_glossary_entries_give_the_regional_forms(waikan: Any, home: Path) -> None:
    """A user entry overriding a built-in one (Sydney) and one for a new name change the
    Traditional text, and removing them brings the built-in forms back."""
    answer = "\n\n".join(
        ["这篇报道描述了简·罗在悉尼发表讲话，强调了经济政策和对外关系的重要性。" * 3] * 4
    )
    with ScriptedLLM(api_key=KEY, default=answer) as llm:
        e = env(llm)
        assert waikan("init", env=e).code == 0
        body = "Jane Roe spoke in Sydney about the economy and foreign relations. "
        _insert_article(home, "https://example.com/roe", [body * 10])
        assert waikan("summarize", env=e).code == 0
    assert status_of(home) == "summarized"
    tw_env = {**e, "WAIKAN_CHANNEL_VARIANT": "zh-Hant-TW"}
    hk_env = {**e, "WAIKAN_CHANNEL_VARIANT": "zh-Hant-HK"}
    before = waikan("show", "1", env=tw_env)
    assert "雪梨" in before.out and "簡·羅" in before.out  # built-in form, OpenCC
    for args in (
        ["Sydney", "悉尼", "--kind", "place", "--tw", "雪梨市", "--hk", "悉尼市"],
        ["Jane Roe", "简·罗", "--tw", "珍·羅伊", "--hk", "珍·盧"],
    ):
        added = waikan("glossary", "add", *args, env=e)
        assert added.code == 0, added.err
    tw = waikan("show", "1", env=tw_env)
    hk = waikan("show", "1", env=hk_env)
    assert "雪梨市" in tw.out and "珍·羅伊" in tw.out and "簡·羅" not in tw.out
    assert "悉尼市" in hk.out and "珍·盧" in hk.out
    assert "简·罗在悉尼" in waikan("show", "1", env=e).out  # zh-Hans is stored as is
    for name in ("Sydney", "Jane Roe"):
        assert waikan("glossary", "remove", name, env=e).code == 0
    after = waikan("show", "1", env=tw_env)
    assert "雪梨市" not in after.out and "雪梨" in after.out and "簡·羅" in after.out


def test_requests_in_flight_never_exceed_llm_concurrency(waikan: Any, home: Path) -> None:
    """Twice as many threads as llm.concurrency check answers and write the store, but
    no more than llm.concurrency requests are ever at the model at once."""
    answer = "\n\n".join(
        ["这篇报道描述了一场关于经济政策和对外关系的讲话，并分析了各方反应。" * 3] * 4
    )
    lock = threading.Lock()
    inflight = [0, 0]  # now, most

    def slow(_body: dict[str, Any]) -> str:
        with lock:
            inflight[0] += 1
            inflight[1] = max(inflight[1], inflight[0])
        time.sleep(0.2)
        with lock:
            inflight[0] -= 1
        return answer

    with ScriptedLLM(api_key=KEY, default=slow) as llm:
        e = env(llm, llm_concurrency="2")
        assert waikan("init", env=e).code == 0
        for i in range(8):
            body = f"Story {i}: officials spoke about the economy and foreign relations. "
            _insert_article(home, f"https://example.com/{i}", [body * 10])
        result = waikan("summarize", env=e)
        assert result.code == 0, result.err
        assert llm.calls == 8
    assert inflight[1] <= 2
    assert [status_of(home, i) for i in range(1, 9)] == ["summarized"] * 8


def _insert_article(home: Path, url: str, paragraphs: list[str]) -> None:
    store = open_store(f"sqlite:///{home / 'waikan.db'}")
    extracted = Extracted(
        title="A test story",
        source="Test",
        published="2024-03-01T10:00:00Z",
        caption=None,
        paragraphs=tuple(paragraphs),
        language="en",
    )
    store.add_article(url, extracted, raw=url.encode())
    store.close()
