"""Dedupe inside the pipeline: real SQLite store, real CLI, a real model server on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import _CLEAN, DATA, ROOT, assert_one_line_error, run_inproc, run_proc
from tests.dedupe.pages import page, write
from tests.servers.openai_server import FakeLLM

API_KEY = "sk-dedupe-test-0badc0de"
MODEL = "deepseek-chat"
ANSWER = "\n\n".join(
    [
        "这篇报道描述了秘鲁南部阿雷基帕地区周二发生的一次强烈地震。地震震级为6.4级，"
        "造成至少12人死亡、约140人受伤，许多遇难者居住在山区村庄的土坯房屋中。",
        "这一事件之所以重要，是因为秘鲁位于环太平洋地震带，每年发生大量地震，"
        "而高原地区的传统土坯建筑抗震能力很弱，一旦发生强震，伤亡和财产损失往往十分严重。",
        "报道指出，地震震源深度为35公里，震中位于阿雷基帕市西北约60公里处。"
        "民防部门统计显示，约2300所房屋受损，山体滑坡阻断了通往科尔卡峡谷的道路，"
        "救援人员正在倒塌的房屋中搜寻幸存者。总体而言，灾区的交通和通信仍受影响。",
        "这一报道强调了政府的应急反应：总统宣布受灾地区进入为期60天的紧急状态，"
        "并表示将派遣医疗队、运送食品和帐篷，帮助灾民渡过难关，同时提醒民众警惕余震。",
    ]
)
REPORTS = json.loads((DATA / "dedupe" / "quake-reports.json").read_text())["reports"]
BOILERPLATE = [
    ("Sign up for our morning newsletter.",),
    ("Read more: the world's deadliest earthquakes", "Follow us on social media."),
    (),
    ("Our Standards: The Trust Principles.",),
    ("Copyright 2024. All rights reserved. This material may not be published.",),
]


def env_for(home: Path, llm: FakeLLM | None = None, **extra: str) -> dict[str, str]:
    env = {"WAIKAN_HOME": str(home), "WAIKAN_EXTRACT_MIN_WORDS": "40", **extra}
    if llm is not None:
        env |= {
            "WAIKAN_LLM_BASE_URL": llm.url,
            "WAIKAN_LLM_MODEL": MODEL,
            "WAIKAN_LLM_API_KEY": API_KEY,
        }
    return env


def slug(outlet: str) -> str:
    return outlet.lower().replace(" ", "")


def copies_of_one_story(folder: Path) -> list[Path]:
    """One wire story as ten sites print it: other headlines, boilerplate, trims, small edits."""
    wire = REPORTS[0]
    out = []
    for i, report in enumerate(REPORTS):
        paragraphs = list(wire["paragraphs"])
        if i % 3 == 1:
            paragraphs = paragraphs[:-1]  # the last paragraph trimmed
        if i % 4 == 2:
            paragraphs[1] = paragraphs[1].replace("local time", "in the morning")
        out.append(
            write(
                folder,
                f"copy{i:02d}.html",
                page(
                    outlet=report["outlet"],
                    url=f"https://{slug(report['outlet'])}.example/world/peru-quake-{i}",
                    headline=report["headline"],
                    paragraphs=paragraphs,
                    published=f"2024-03-05T{9 + i:02d}:00:00Z",
                    boilerplate=BOILERPLATE[i % len(BOILERPLATE)],
                ),
            )
        )
    return out


def rewrites_of_one_event(folder: Path) -> list[Path]:
    return [
        write(
            folder,
            f"report{i:02d}.html",
            page(
                outlet=r["outlet"],
                url=f"https://{slug(r['outlet'])}.example/news/{i}",
                headline=r["headline"],
                paragraphs=r["paragraphs"],
                published=f"2024-03-05T{8 + i:02d}:30:00Z",
            ),
        )
        for i, r in enumerate(REPORTS)
    ]


def listed(home: Path) -> list[dict[str, object]]:
    got = run_inproc(["list", "--json"], env_for(home))
    assert got.code == 0, got.err
    return [json.loads(line) for line in got.out.splitlines()]


def test_ten_copies_of_one_story_make_one_call_and_one_post(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    copies_of_one_story(tmp_path / "pages")
    with FakeLLM(api_key=API_KEY, model=MODEL, answer=ANSWER) as llm:
        env = env_for(home, llm)
        added = run_inproc(["add", str(tmp_path / "pages")], env)
        assert added.code == 0, added.err
        assert run_inproc(["summarize"], env).code == 0
        assert run_inproc(["summarize"], env).code == 0  # again: nothing left to pay for
        assert llm.calls == 1
    rows = listed(home)
    assert len(rows) == 10
    canonical = [r for r in rows if r["status"] == "summarized"]
    assert len(canonical) == 1
    dups = [r for r in rows if r["status"] == "duplicate"]
    assert len(dups) == 9
    shown = run_inproc(["show", str(canonical[0]["id"]), "--format", "json"], env)
    post = json.loads(shown.out)
    assert sorted(o["source"] for o in post["outlets"]) == sorted(r["outlet"] for r in REPORTS)
    assert post["outlets"][0]["article_id"] == canonical[0]["id"]
    assert all(o["url"].startswith("https://") for o in post["outlets"])
    # The full-length copy is kept, not a trimmed one.
    trimmed = {REPORTS[i]["headline"] for i in range(len(REPORTS)) if i % 3 == 1}
    assert canonical[0]["title"] not in trimmed

    from waikan.store import open_store

    store = open_store(f"sqlite:///{home / 'waikan.db'}")
    try:
        for r in dups:
            a = store.article(int(str(r["id"])))
            assert a is not None and a.duplicate_of == canonical[0]["id"]
    finally:
        store.close()


def test_ten_rewrites_of_one_event_make_one_post_naming_ten_outlets(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    rewrites_of_one_event(tmp_path / "pages")
    with FakeLLM(api_key=API_KEY, model=MODEL, answer=ANSWER) as llm:
        env = env_for(home, llm)
        assert run_inproc(["add", str(tmp_path / "pages")], env).code == 0
        assert run_inproc(["summarize"], env).code == 0
        assert llm.calls == 1
    rows = listed(home)
    (canonical,) = [r for r in rows if r["status"] == "summarized"]
    post = json.loads(run_inproc(["show", str(canonical["id"]), "--format", "json"], env).out)
    assert {o["source"] for o in post["outlets"]} == {r["outlet"] for r in REPORTS}
    text = run_inproc(["show", str(canonical["id"])], env).out.rstrip("\n")
    last = text.split("\n\n")[-1]
    assert last.startswith("报道来源：") and all(r["outlet"] in last for r in REPORTS)
    markdown = run_inproc(["show", str(canonical["id"]), "--format", "markdown"], env).out
    assert "](<https://andeswire.example/news/0>)" in markdown
    html = run_inproc(["show", str(canonical["id"]), "--format", "html"], env).out
    assert html.count('rel="noopener nofollow">') >= 11  # the original and ten outlets

    stories = run_inproc(["stories", "--json"], env)
    assert stories.code == 0, stories.err
    (story,) = [json.loads(line) for line in stories.out.splitlines()]
    assert len(story["outlets"]) == 10 and story["canonical_id"] == canonical["id"]
    plain = run_inproc(["stories"], env).out
    assert plain.startswith(f"{story['id']}\t10 outlets\t")


def test_unrelated_articles_stay_apart_and_single_outlet_text_unchanged(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    demo = ROOT / "src" / "waikan" / "demo" / "samples"
    env = env_for(home)
    assert run_inproc(["add", str(demo)], env).code == 0
    assert run_inproc(["summarize"], env).code == 0
    rows = listed(home)
    assert rows and all(r["status"] == "summarized" for r in rows)
    stories = [json.loads(x) for x in run_inproc(["stories", "--json"], env).out.splitlines()]
    assert len(stories) == len(rows) and all(len(s["outlets"]) == 1 for s in stories)
    text = run_inproc(["show", str(rows[0]["id"])], env).out
    assert "报道来源" not in text


def test_show_of_a_duplicate_names_the_canonical_post(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    paths = copies_of_one_story(tmp_path / "pages")
    env = env_for(home)
    first = run_inproc(["add", str(paths[0])], env)
    second = run_inproc(["add", "--json", str(paths[3])], env)
    assert json.loads(second.out)["status"] == "duplicate"
    dup_id = json.loads(second.out)["id"]
    canonical_id = first.out.split("\t")[0]
    shown = run_inproc(["show", str(dup_id)], env)
    assert_one_line_error(shown)
    assert f"duplicate of article {canonical_id}" in shown.err
    refused = run_inproc(["summarize", str(dup_id)], env)
    assert refused.code == 1 and "duplicate" in refused.err


def test_index_rebuilt_from_the_store_in_a_new_process(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    paths = copies_of_one_story(tmp_path / "pages")
    env = env_for(home)
    assert run_proc(["add", str(paths[0])], env).code == 0
    later = run_proc(["add", "--json", str(paths[1]), str(paths[5])], env)
    assert later.code == 0, later.err
    assert [json.loads(x)["status"] for x in later.out.splitlines()] == ["duplicate"] * 2


def test_concurrent_ingestion_keeps_one_canonical(tmp_path: Path) -> None:
    """Four processes add copies of one story at the same moment: one canonical, no lost rows."""
    home = tmp_path / "ws"
    paths = copies_of_one_story(tmp_path / "pages") + rewrites_of_one_event(tmp_path / "more")
    env = _CLEAN | env_for(home)
    assert run_proc(["init"], env).code == 0
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "waikan", "add", *map(str, paths[k::4])],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(4)
    ]
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    rows = listed(home)
    assert len(rows) == len(paths)
    assert sum(r["status"] == "extracted" for r in rows) == 1
    stories = [json.loads(x) for x in run_inproc(["stories", "--json"], env).out.splitlines()]
    assert len(stories) == 1 and len(stories[0]["outlets"]) == 10
