"""Site build speed: a full build of 10,000 posts, then an incremental build after one more.

usage: python bench/bench_site.py [--posts N] [--keep DIR]

Figures, each build timed inside its own fresh process (imports and opening the
store excluded: the timer starts once the workspace is open): posts per second
of the full build; the incremental build after adding one post as a ratio to
the full build (target <= 0.02; the median of three, each adding one more
post); a rebuild with nothing changed, as a ratio too (median of three); the
full build's peak resident memory (target < 1 GB). The posts are written
straight into a real SQLite store with realistic sizes (8 English paragraphs of
~45 words, a 4-paragraph Chinese summary of ~400 characters, 20 sources over
120 days). Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

TARGET_RATIO = 0.02
TARGET_PEAK_MB = 1024
REPEATS = 3

WORDS = (
    "government minister talks trade summit officials said week market prices energy "
    "security policy election council agency report water farmers harbour museum river "
    "talks agreement border investment climate research hospital schools transport city "
    "weather storm flood coast court ruling bank inflation growth exports workers union"
).split()
HAN = (
    "报道指出政府官员会谈贸易峰会市场价格能源安全政策选举议会机构农民港口博物馆河流协议边境投资"
    "气候研究医院学校交通城市天气风暴洪水海岸法院裁决银行通胀增长出口工人工会总体而言这一强调了"
)


def _paragraph(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choice(WORDS) for _ in range(words))
    return text[0].upper() + text[1:] + "."


def _summary(rng: random.Random, n: int) -> list[str]:
    return [
        f"这篇报道描述了第{n}号新闻，" + "".join(rng.choice(HAN) for _ in range(90)) + "。"
        for _ in range(4)
    ]


def populate(home: Path, posts: int, seed: int = 7) -> None:
    """``posts`` summarized articles with their posts, in one transaction (setup, not measured)."""
    from sqlalchemy import insert

    from waikan.config import load
    from waikan.store import schema
    from waikan.workspace import Workspace

    rng = random.Random(seed)
    ws = Workspace(load(home, env={}))
    start = datetime(2024, 1, 1, tzinfo=UTC)
    now = datetime.now(UTC)
    with ws.store.engine.begin() as c:
        for n in range(1, posts + 1):
            paragraphs = [_paragraph(rng, 45) for _ in range(8)]
            published = start + timedelta(minutes=n * 17)
            article_id = c.execute(
                insert(schema.articles).values(
                    url=f"https://news{n % 20}.example.com/story/{n}",
                    source_name=f"Source {n % 20}",
                    status="summarized",
                    title=f"Story {n}: " + " ".join(rng.choice(WORDS) for _ in range(8)),
                    published=published.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    authors=[],
                    caption=_paragraph(rng, 20),
                    paragraphs=paragraphs,
                    language="en",
                    word_count=sum(len(p.split()) for p in paragraphs) + 21,
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
            summary_id = c.execute(
                insert(schema.summaries).values(
                    article_id=article_id,
                    backend="bench",
                    paragraphs=_summary(rng, n),
                    is_excerpt=False,
                    created_at=now,
                )
            ).inserted_primary_key[0]
            c.execute(
                insert(schema.posts).values(
                    article_id=article_id,
                    summary_id=summary_id,
                    revision=1,
                    created_at=now,
                    updated_at=now,
                )
            )
    ws.close()


def add_one(home: Path, n: int) -> None:
    """One more post through the store's own API, as the pipeline would write it."""
    from waikan.config import load
    from waikan.models import Extracted, Summary
    from waikan.workspace import Workspace

    rng = random.Random(n)
    ws = Workspace(load(home, env={}))
    ex = Extracted(
        title=f"Story {n}: one more",
        source="Source 3",
        published=(datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        caption=_paragraph(rng, 20),
        paragraphs=tuple(_paragraph(rng, 45) for _ in range(8)),
        language="en",
    )
    record = ws.store.add_article(f"https://news.example.com/new/{n}", ex, raw=f"p{n}".encode())
    ws.store.add_summary(record.id, Summary(tuple(_summary(rng, n)), "bench", None, None))
    ws.close()


def child_build(home: Path) -> None:
    """Run in a fresh process: one build, then its time and this process's peak memory."""
    from waikan.config import load
    from waikan.render.site import build_site
    from waikan.workspace import Workspace

    ws = Workspace(load(home, env={}, overrides={"site.base_url": "https://bench.example"}))
    # Not the build's work: opening (and migrating) the store, and a module the
    # build imports lazily (the review-mode rule). Imports are excluded throughout.
    ws.store  # noqa: B018
    import waikan.publish.review  # noqa: F401

    started, cpu = time.perf_counter(), time.process_time()
    report = build_site(ws)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    ws.close()
    # VmHWM: ru_maxrss would carry the parent's peak across fork and exec.
    with open("/proc/self/status", encoding="ascii") as fh:
        peak_kb = next(int(ln.split()[1]) for ln in fh if ln.startswith("VmHWM:"))
    record = {
        "seconds": seconds,
        "cpu": cpu,  # this process's CPU time: less at the mercy of other work on the machine
        "written": len(report.written),
        "rendered": report.rendered_pages,
        "posts": report.posts,
        "peak_mb": peak_kb / 1024,
    }
    print(json.dumps(record))


def build_in_child(home: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(home)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=10_000)
    ap.add_argument("--keep", default=None, help="workspace folder to use and keep")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child_build(Path(args.child))
        return 0

    home = Path(args.keep or tempfile.mkdtemp(prefix="waikan-bench-site-"))
    started = time.perf_counter()
    populate(home, args.posts)
    print(f"setup: {args.posts} posts in {time.perf_counter() - started:.1f} s ({home})")
    full = build_in_child(home)
    # A build of a fraction of a second is at the mercy of the machine's other work:
    # the median of three (each adding one more post for the incremental figure).
    same = _median([build_in_child(home) for _ in range(REPEATS)])
    incrs = []
    for n in range(REPEATS):
        add_one(home, args.posts + 1 + n)
        incrs.append(build_in_child(home))
    incr = _median(incrs)

    ratio = incr["seconds"] / full["seconds"]
    same_ratio = same["seconds"] / full["seconds"]
    ok_ratio = ratio <= TARGET_RATIO
    ok_peak = full["peak_mb"] < TARGET_PEAK_MB
    print(
        f"full build      {full['seconds']:7.2f} s  {full['posts'] / full['seconds']:7.0f} posts/s"
        f"  ({full['written']:.0f} files)"
    )
    print(
        f"incremental +1  {incr['seconds']:7.3f} s  ratio {ratio:.4f}  target <= {TARGET_RATIO}"
        f"  {'MET' if ok_ratio else 'NOT MET'}  ({incr['rendered']:.0f} pages rendered,"
        f" {incr['written']:.0f} files written)"
    )
    print(f"no change       {same['seconds']:7.3f} s  ratio {same_ratio:.4f}")
    print(
        f"CPU time        full {full['cpu']:.2f} s, incremental {incr['cpu']:.3f} s"
        f" (ratio {incr['cpu'] / full['cpu']:.4f}), no change {same['cpu']:.3f} s"
    )
    print(
        f"peak memory     {full['peak_mb']:7.0f} MB  target < {TARGET_PEAK_MB} MB"
        f"  {'MET' if ok_peak else 'NOT MET'}"
    )
    return 0 if ok_ratio and ok_peak else 1


if __name__ == "__main__":
    sys.exit(main())
