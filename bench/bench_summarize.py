"""Summarize speed and cost: waikan's summarize stage against a bare httpx loop.

usage: python bench/bench_summarize.py [--articles N] [--repeat-share F]
                                       [--latency S] [--concurrency N]

A loopback OpenAI-compatible server (``tests/servers/openai_server.py``)
answers every chat request after ``--latency`` seconds (default 0.2) with a
four-paragraph summary that passes the guard. ``--articles`` articles
(default 1,000) are built from the corpus texts (../shared/corpus), a
``--repeat-share`` of them (default 0.25) repeating the body of an earlier one
(syndicated copies), and stored in a fresh SQLite workspace. Figures, measured
in the same run against the same server:

- waikan: ``Summarizer.run`` over every article at ``llm.concurrency`` =
  ``--concurrency`` (default 16): glossary, cache, budget, guard, store;
- baseline: the same request bodies posted by a bare ``httpx.Client`` loop on
  as many threads;
- throughput ratio: model calls per second of waikan / of the baseline
  (target >= 0.85);
- median prompt overhead: tokens of each request (o200k) less those of the
  article between its delimiters (the issue's budget: <= 600);
- model calls: repeats come from the cache, so 1,000 articles with 250 repeats
  take 750 calls (target: the number of distinct bodies, exactly).

Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

TARGET_RATIO = 0.85
MAX_OVERHEAD = 600
KEY = "sk-bench"
MODEL = "bench-model"

ANSWER = "\n\n".join(
    [
        "标题：外刊报道摘要",
        "这篇报道描述了近期发生的一起事件，介绍了相关各方的立场与行动，并梳理了事件发生的"
        "背景和经过，让读者能够了解事情的来龙去脉以及各方关注的焦点。",
        "报道认为，这一事件之所以重要，是因为它牵涉到公众关心的利益，也可能影响相关政策的"
        "走向，因此受到了媒体和社会各界的广泛关注，相关讨论仍在继续。",
        "报道指出，相关人士就此发表了看法，有人表示支持，也有人提出了担忧和质疑。总体而言，"
        "各方仍在观察事态的发展，后续情况尚不明朗，更多细节有待公布。",
        "这一报道强调了及时、准确地了解事件全貌的重要性，也提醒读者关注各方说法之间的差异，"
        "从而对事件作出更加全面和客观的判断。",
    ]
)


def corpus_dir() -> Path:
    return Path(os.environ.get("WAIKAN_CORPUS", ROOT.parent / "shared" / "corpus")).resolve()


def corpus_texts(corpus: Path) -> list[tuple[str, list[str]]]:
    """(title, paragraphs) of every corpus article with a body of a few paragraphs."""
    out: list[tuple[str, list[str]]] = []
    for g in json.loads((corpus / "naeb-dev" / "gold.json").read_text()):
        out.append((g.get("title") or "", g.get("text") or ""))  # type: ignore[arg-type]
    for i, g in enumerate(json.loads((corpus / "scrapinghub" / "gold.json").read_text()).values()):
        out.append((f"Story {i}", g.get("articleBody") or ""))  # type: ignore[arg-type]
    texts: list[tuple[str, list[str]]] = []
    for title, body in out:
        paras = [p.strip() for p in str(body).split("\n") if p.strip()]
        if len(paras) >= 3 and sum(len(p.split()) for p in paras) >= 150:
            texts.append((str(title), paras))
    return texts


def build_articles(
    texts: list[tuple[str, list[str]]], n: int, repeat_share: float, seed: int = 7
) -> list[tuple[str, list[str]]]:
    """``n`` articles of which ``round(n * repeat_share)`` repeat an earlier body."""
    rng = random.Random(seed)
    repeats = round(n * repeat_share)
    unique: list[tuple[str, list[str]]] = []
    seen: set[str] = set()
    k = 0
    while len(unique) < n - repeats:
        title, paras = texts[k % len(texts)]
        turn = k // len(texts)
        paras = paras[turn % len(paras) :] + paras[: turn % len(paras)]  # other versions
        body = "\n\n".join(paras)
        if body in seen:
            paras = [*paras, f"Editor's note: this is version {turn} of the story."]
            body = "\n\n".join(paras)
        seen.add(body)
        unique.append((title, paras))
        k += 1
    slots = sorted(rng.sample(range(1, n), repeats))
    out: list[tuple[str, list[str]]] = []
    fresh = iter(unique)
    made: list[tuple[str, list[str]]] = []
    for i in range(n):
        if slots and slots[0] == i and made:
            slots.pop(0)
            out.append(rng.choice(made))  # a syndicated copy of an earlier story
        else:
            item = next(fresh)
            made.append(item)
            out.append(item)
    return out


def run_waikan(
    home: Path, url: str, articles: list[tuple[str, list[str]]], concurrency: int
) -> tuple[float, float, int, int]:
    """(seconds, CPU seconds of the process, articles done, articles failed) for the whole
    summarize stage."""
    from waikan import config as config_mod
    from waikan.errors import WaikanError
    from waikan.models import Extracted
    from waikan.store import ArticleRecord
    from waikan.summarize.service import Outcome, Summarizer
    from waikan.workspace import Workspace

    env = {"WAIKAN_LLM_API_KEY": KEY}
    overrides = {
        "llm.base_url": url,
        "llm.model": MODEL,
        "llm.concurrency": concurrency,
        "llm.backend": "openai",
    }
    cfg = config_mod.load(home, env=env, overrides=overrides)
    ws = Workspace(cfg)
    records = []
    for i, (title, paras) in enumerate(articles):
        ext = Extracted(
            title=title,
            source="Bench",
            published="2024-01-19T15:57:00Z",
            caption=None,
            paragraphs=tuple(paras),
            language="en",
        )
        records.append(
            ws.store.add_article(f"https://bench.example/{i}", ext, raw=b"<html></html>")
        )
    done: list[Outcome] = []
    failed: list[tuple[ArticleRecord, WaikanError]] = []
    summarizer = Summarizer(ws)
    started, cpu = time.perf_counter(), time.process_time()
    summarizer.run(records, done.append, lambda a, e: failed.append((a, e)))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    for article, exc in failed[:3]:
        print(f"  failed article {article.id}: {exc}")
    flagged = [o for o in done if o.findings]
    if flagged:
        print(f"  {len(flagged)} summaries flagged, e.g. {flagged[0].findings[0].message}")
    ws.close()
    return seconds, cpu, len(done), len(failed)


def run_bare(url: str, bodies: list[dict[str, Any]], concurrency: int) -> tuple[float, float]:
    """(seconds, CPU seconds of the process) for a bare httpx loop posting ``bodies`` on
    ``concurrency`` threads."""
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(limits=limits, timeout=60) as client:

        def post(body: dict[str, Any]) -> None:
            r = client.post(f"{url}/chat/completions", json=body, headers=headers)
            r.raise_for_status()
            r.json()

        started, cpu = time.perf_counter(), time.process_time()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(post, bodies))
        return time.perf_counter() - started, time.process_time() - cpu


def prompt_overhead(body: dict[str, Any], count: Callable[[str], int]) -> int:
    """Tokens of a request less those of the article between the prompt's delimiters."""
    from waikan.summarize.prompt import CLOSE, OPEN
    from waikan.summarize.tokens import count_messages

    text = "\n".join(m["content"] for m in body["messages"])
    article = (
        text.rsplit(OPEN, 1)[1].split(CLOSE, 1)[0].strip("\n")
    )  # the system prompt names them too
    return int(count_messages(body["messages"])) - count(article)


def main(argv: list[str] | None = None) -> int:
    from tests.servers.openai_server import FakeLLM

    from waikan.summarize.tokens import count_tokens

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", type=int, default=1000)
    ap.add_argument("--repeat-share", type=float, default=0.25)
    ap.add_argument("--latency", type=float, default=0.2, help="seconds per model request")
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args(argv)

    articles = build_articles(corpus_texts(corpus_dir()), args.articles, args.repeat_share)
    distinct = len({"\n\n".join(p) for _, p in articles})
    with FakeLLM(api_key=KEY, model=MODEL, answer=ANSWER, delay=args.latency) as llm:
        with tempfile.TemporaryDirectory() as tmp:
            seconds, cpu, done, failed = run_waikan(Path(tmp), llm.url, articles, args.concurrency)
        with llm._lock:
            bodies = [r["body"] for r in llm.requests if r["path"].endswith("/chat/completions")]
        calls = len(bodies)
        bare, bare_cpu = run_bare(llm.url, bodies, args.concurrency)
    overheads = [prompt_overhead(b, count_tokens) for b in bodies]
    ours, theirs = calls / seconds, calls / bare
    ratio = ours / theirs
    overhead = statistics.median(overheads) if overheads else 0
    ok_ratio = ratio >= TARGET_RATIO
    ok_calls = calls == distinct and failed == 0
    ok_overhead = overhead <= MAX_OVERHEAD
    print(
        f"articles: {len(articles)} ({distinct} distinct bodies), latency "
        f"{args.latency * 1000:.0f} ms, concurrency {args.concurrency}"
    )
    print(f"waikan summarize  {seconds:7.2f} s  {ours:6.1f} calls/s  {done} done, {failed} failed")
    print(f"bare httpx loop   {bare:7.2f} s  {theirs:6.1f} calls/s  (same {calls} requests)")
    # Both include the loopback server, which runs in this process.
    print(
        f"process CPU       waikan {cpu * 1000 / max(calls, 1):.1f} ms per call, "
        f"bare {bare_cpu * 1000 / max(calls, 1):.1f} ms per call (server included in both)"
    )
    print(
        f"throughput ratio {ratio:.3f}  target >= {TARGET_RATIO}  "
        f"{'MET' if ok_ratio else 'NOT MET'}"
    )
    print(
        f"median prompt overhead {overhead:.0f} tokens (min {min(overheads, default=0)}, "
        f"max {max(overheads, default=0)})  budget <= {MAX_OVERHEAD}  "
        f"{'MET' if ok_overhead else 'NOT MET'}"
    )
    print(
        f"model calls {calls} for {len(articles)} articles  target {distinct}  "
        f"{'MET' if ok_calls else 'NOT MET'}"
    )
    return 0 if ok_ratio and ok_calls and ok_overhead else 1


if __name__ == "__main__":
    sys.exit(main())
