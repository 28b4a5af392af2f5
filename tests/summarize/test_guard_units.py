"""The guard, glossary, limits and the glossary/stats/doctor commands, piece by piece."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import DATA, SEED, SEED_SUMMARY_LINE, assert_one_line_error
from tests.summarize.scripted_llm import ScriptedLLM

from waikan.summarize.glossary import Glossary, GlossaryError, builtin, parse_entries
from waikan.summarize.guard import Article, check
from waikan.summarize.guard.numbers import article_facts, parse_zh_number, trace, zh_quantities
from waikan.summarize.limits import RateLimiter, backoff_delay
from waikan.summarize.variants import to_variant

SEED_ARTICLE = json.loads((DATA / "reuters-blinken-wang.expected.json").read_text())
ARTICLE = Article.of(
    SEED_ARTICLE["title"],
    SEED_ARTICLE["caption"],
    SEED_ARTICLE["paragraphs"],
    SEED_ARTICLE["published"],
)
SEED_PARAS = SEED.read_text(encoding="utf-8").split("\n")[SEED_SUMMARY_LINE].split(" ")
G = Glossary.of(builtin())


def test_builtin_glossary_size_and_regional_columns() -> None:
    assert len(G) >= 500
    kinds = {e.kind for e in G.entries.values()}
    assert {"person", "country", "place", "org", "company"} <= kinds
    trump = G.get("Donald Trump")
    assert trump is not None and trump.zh_hant_tw == "唐納·川普"
    sea = G.get("South China Sea")
    assert sea is not None and "南中国海" in sea.variants


def test_seed_summary_has_zero_findings() -> None:
    assert check(SEED_PARAS, ARTICLE, G) == []


@pytest.mark.parametrize(
    ("zh", "value"),
    [("三千五百万", 35_000_000), ("十二亿", 1.2e9), ("三点五", 3.5), ("两", 2), ("二〇二三", 2023)],
)
def test_chinese_numerals(zh: str, value: float) -> None:
    assert parse_zh_number(zh) == value


@pytest.mark.parametrize(
    ("summary", "ok"),
    [
        ("约52亿美元", True),  # $5.17 billion, rounded
        ("52万美元", False),  # 万 ↔ 亿
        ("120万人", True),  # 1.2 million
        ("周五", True),
        ("周六", False),
        ("10月27日", True),
        ("10月28日", False),
        ("三天", True),  # three-day
        ("第三天", False),  # an ordinal is not the count in "three-day"
        ("百分之三点五", True),
        ("3.7%", False),
        ("三成", True),  # 30%
        ("一系列问题", True),  # an idiom, not a count
    ],
)
def test_numbers_traced_by_kind(summary: str, ok: bool) -> None:
    text = ARTICLE.text + " A deal worth $5.17 billion, 1.2 million people, 3.5 percent, 30%."
    facts = article_facts(text, ARTICLE.published)
    assert all(trace(q, facts) for q in zh_quantities(summary)) is ok


def test_names_checks() -> None:
    good = ["托尼·布林肯与王毅会晤，布林肯表示……" + SEED_PARAS[0]]
    assert [
        f for f in check(good, ARTICLE, G, paragraphs_wanted=1, min_han=0) if f.kind == "name"
    ] == []
    wrong = ["国务卿布琳肯与外长王义会晤。约翰·史密斯也在场。唐纳德·特朗普发表讲话。"]
    messages = [f.message for f in check(wrong, ARTICLE, G, paragraphs_wanted=1, min_han=0)]
    assert any("布琳肯" in m for m in messages)
    assert any("王义" in m for m in messages)
    assert any("唐纳德·特朗普" in m and "not named" in m for m in messages)


def test_shape_findings() -> None:
    bad = ["以下是摘要：" + SEED_PARAS[0] + "详见 https://example.com/x", *SEED_PARAS[1:]]
    kinds = {f.kind for f in check(bad, ARTICLE, G)}
    assert {"chatter", "url"} <= kinds
    assert {f.kind for f in check(SEED_PARAS[3:], ARTICLE, G)} == {"structure", "length"}


def test_glossary_file_errors_name_the_line() -> None:
    with pytest.raises(GlossaryError, match="line 3"):
        parse_entries("en\tzh_hans\nFoo Bar\t福·巴\nBaz\n", "f.tsv")  # Baz has no Chinese
    with pytest.raises(GlossaryError, match="header"):
        parse_entries("name\tchinese\nFoo\t福\n", "f.tsv")


def test_backoff_and_rate_limiter() -> None:
    assert backoff_delay(0, retry_after=3.0) == 3.0
    assert 0.25 <= backoff_delay(0, rand=lambda: 0.0) <= 0.5
    assert backoff_delay(10, rand=lambda: 1.0) == 30.0  # capped
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    limiter = RateLimiter(rpm=2, clock=lambda: now[0], sleep=sleep)
    limiter.acquire(10)
    limiter.acquire(10)
    assert slept == []
    limiter.acquire(10)  # the third in a minute waits for the window
    assert sum(slept) == pytest.approx(60.0)
    tpm = RateLimiter(tpm=100, clock=lambda: now[0], sleep=sleep)
    tpm.acquire(80)
    before = sum(slept)
    tpm.acquire(30)
    assert sum(slept) - before == pytest.approx(60.0)


def test_variants_convert_names_and_script() -> None:
    text = ["美国总统唐纳德·特朗普在悉尼会见了普京。"]
    assert to_variant(text, "zh-Hans") == tuple(text)
    (tw,) = to_variant(text, "zh-Hant-TW")
    assert "唐納·川普" in tw and "雪梨" in tw and "普丁" in tw and "美國" in tw
    (hk,) = to_variant(text, "zh-Hant-HK")
    assert "特朗普" in hk and "悉尼" in hk and "普京" in hk


def test_glossary_cli(waikan: Any, tmp_path: Path) -> None:
    assert waikan("init").code == 0
    added = waikan("glossary", "add", "Jane Roe", "简·罗", "--tw", "珍·羅", "--variant", "罗")
    assert added.code == 0, added.err
    listed = waikan("glossary", "list", "--user", "--json")
    rows = [json.loads(line) for line in listed.out.splitlines()]
    assert [r["en"] for r in rows] == ["Jane Roe"] and rows[0]["zh_hant_tw"] == "珍·羅"
    found = waikan("glossary", "check", "Jane Roe met Antony Blinken in Washington.")
    assert "简·罗" in found.out and "安东尼·布林肯" in found.out
    flagged = waikan("glossary", "check", "Blinken spoke.", "--summary", "布林根表示。")
    assert flagged.code == 3 and "布林根" in flagged.out
    good = tmp_path / "names.csv"
    good.write_text("en,zh_hans,kind\nJohn Doe,约翰·多伊,person\n", encoding="utf-8")
    assert waikan("glossary", "import", str(good)).code == 0
    bad = tmp_path / "bad.tsv"
    bad.write_text("en\tzh_hans\nAlpha Beta\t阿尔法\nGamma\t\n", encoding="utf-8")
    result = waikan("glossary", "import", str(bad))
    assert_one_line_error(result)
    assert "line 3" in result.err
    names = [
        json.loads(x)["en"]
        for x in waikan("glossary", "list", "--user", "--json").out.split("\n")
        if x
    ]
    assert "Alpha Beta" not in names  # all or nothing
    nul = tmp_path / "nul.tsv"  # PostgreSQL text cannot hold NUL: a traceback there
    nul.write_text("en\tzh_hans\nKaja Kallas\t卡拉斯\x00\n", encoding="utf-8")
    refused = waikan("glossary", "import", str(nul))
    assert_one_line_error(refused)
    assert "line 2: contains a NUL character" in refused.err
    assert waikan("glossary", "remove", "Jane Roe").code == 0
    assert_one_line_error(waikan("glossary", "remove", "Jane Roe"))


def test_user_entry_overrides_builtin_in_prompt(waikan: Any) -> None:
    assert waikan("init").code == 0
    assert waikan("glossary", "add", "Antony Blinken", "托尼·布林肯").code == 0
    shown = waikan("glossary", "check", "Antony Blinken arrived.")
    assert "托尼·布林肯" in shown.out and "user" in shown.out


def test_doctor(waikan: Any) -> None:
    with ScriptedLLM(api_key="sk-doc", models=("m1",)) as llm:
        e = {
            "WAIKAN_LLM_BASE_URL": llm.url,
            "WAIKAN_LLM_MODEL": "m1",
            "WAIKAN_LLM_API_KEY": "sk-doc",
        }
        ok = waikan("doctor", env=e)
        assert ok.code == 0, ok.err
        assert "API key accepted" in ok.out and "model m1 listed" in ok.out
        assert llm.calls == 0  # listing models spends nothing
        wrong = waikan("doctor", env={**e, "WAIKAN_LLM_MODEL": "nope"})
        assert wrong.code == 1 and "not offered" in wrong.out
        badkey = waikan("doctor", env={**e, "WAIKAN_LLM_API_KEY": "sk-bad"})
        assert badkey.code == 1 and "API key rejected" in badkey.out
