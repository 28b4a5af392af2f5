"""Dedupe at scale: 100,000 synthetic articles through the real Deduper on a real SQLite store.

usage: python bench/bench_dedupe.py [--n N] [--checkpoint N] [--batch N]

Articles are made from corpus paragraphs: each picks 5-9 paragraphs of the
corpus at random (so it is new), and one in four is instead a perturbed copy
of a recent one (trimmed, a paragraph added, words edited), so every path of
the decision runs. Publication times advance 1,000 articles a day, as a busy
wire would. Articles are stored a batch at a time and then deduplicated the
way :func:`waikan.dedupe.dedupe` does it (signatures first, then one
transaction per batch). Only dedupe is timed (signatures + decisions and
their transactions), not making or storing the article; the time of each
part is printed. Prints articles/second over the last 2,000 articles at the
checkpoint and at the end, their per-article cost ratio (target: cost at N
within 1.5x of that at the checkpoint) and peak memory (target < 1.5 GB):
VmHWM of this process, reset when the bench starts, so it is this bench's
peak even when bench/run.py runs it after others.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

COST_RATIO_MAX = 1.5
PEAK_MB_MAX = 1536
WINDOW = 2000  # articles over which a rate is measured


def corpus_paragraphs() -> list[str]:
    corpus = Path(os.environ.get("WAIKAN_CORPUS", ROOT.parent / "shared" / "corpus")).resolve()
    out: list[str] = []
    for g in json.loads((corpus / "naeb-dev" / "gold.json").read_text()):
        out += [p for p in g["text"].split("\n") if len(p.split()) >= 12]
    for g in json.loads((corpus / "scrapinghub" / "gold.json").read_text()).values():
        out += [p for p in g["articleBody"].split("\n") if len(p.split()) >= 12]
    return out


def synthetic(n: int, seed: int = 6) -> Iterator[tuple[int, list[str], str, str]]:
    """(number, paragraphs, source, published) of ``n`` articles; a quarter are perturbed copies."""
    rng = random.Random(seed)
    pool = corpus_paragraphs()
    recent: list[list[str]] = []
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(1, n + 1):
        if recent and rng.random() < 0.25:
            paras = list(rng.choice(recent))
            cut = rng.random()
            if cut < 0.33:
                paras = paras[: max(2, len(paras) - 2)]
            elif cut < 0.66:
                paras.insert(rng.randrange(len(paras)), rng.choice(pool))
            else:
                paras = [p.replace(" the ", " a ", 1) for p in paras]
        else:
            paras = rng.sample(pool, rng.randint(5, 9))
            recent = [paras, *recent][:200]
        published = start + timedelta(seconds=i * 86.4)
        yield i, paras, f"Outlet {rng.randrange(50)}", published.strftime("%Y-%m-%dT%H:%M:%SZ")


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM)."""
    status = Path("/proc/self/status").read_text()
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) / 1024 if found else float("nan")


def reset_peak() -> None:
    """Start VmHWM afresh (Linux: ``5`` to clear_refs), so earlier benches do not count."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def main(argv: list[str] | None = None) -> int:
    from waikan.dedupe import BATCH, Deduper, Settings, features
    from waikan.models import Extracted
    from waikan.store import open_store

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--checkpoint", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=BATCH, help="articles per dedupe transaction")
    args = ap.parse_args(argv)
    if not WINDOW < args.checkpoint < args.n:
        ap.error(f"need {WINDOW} < --checkpoint < --n")
    reset_peak()
    wall = time.perf_counter()
    spent = {"make": 0.0, "store": 0.0, "signatures": 0.0, "decide": 0.0}
    done_at: dict[int, float] = {0: 0.0}  # articles decided → dedupe seconds so far
    cpu_at: dict[int, float] = {0: 0.0}  # … and this process's CPU seconds in dedupe
    cpu = 0.0
    decided: dict[str, int] = {}
    peak_at: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        deduper = Deduper(store, Settings())
        made = synthetic(args.n)
        count = 0
        while count < args.n:
            t0 = time.perf_counter()
            # Batches end at the checkpoint, so its rate covers exactly the articles before it.
            edge = args.checkpoint if count < args.checkpoint else args.n
            size = min(args.batch, edge - count)
            items = [next(made) for _ in range(size)]
            t1 = time.perf_counter()
            records = []
            for i, paras, source, published in items:
                ex = Extracted(
                    title=" ".join(paras[0].split()[:8]),
                    source=source,
                    published=published,
                    caption=None,
                    paragraphs=tuple(paras),
                )
                records.append(
                    store.add_article(f"https://o{i % 50}.example/a/{i}", ex, raw=str(i).encode())
                )
            t2 = time.perf_counter()
            c2 = time.process_time()
            batch = [(r, features(r)) for r in records]
            t3 = time.perf_counter()
            for decision in deduper.decide_many(batch):
                if decision is not None:
                    decided[decision.relation] = decided.get(decision.relation, 0) + 1
            t4 = time.perf_counter()
            cpu += time.process_time() - c2
            for part, seconds in zip(spent, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                spent[part] += seconds
            count += size
            done_at[count] = spent["signatures"] + spent["decide"]
            cpu_at[count] = cpu
            if count in (args.checkpoint, args.n):
                peak_at[count] = peak_mb()
            if count % 10_000 == 0:  # a sign of life: the full run takes minutes
                print(f"  {count} articles, {time.perf_counter() - wall:.0f}s", flush=True)
        store.close()

    def rate(at: int, clock: dict[int, float]) -> float:
        since = max(k for k in clock if k <= at - WINDOW)
        return (at - since) / (clock[at] - clock[since])

    # The verdict uses wall-clock rates; CPU-time rates are printed beside them
    # because on a shared machine the wall clock also measures the neighbours.
    for at in (args.checkpoint, args.n):
        print(
            f"{at:>7} articles: {rate(at, done_at):7.1f} articles/s wall, "
            f"{rate(at, cpu_at):7.1f} articles/s CPU (last {WINDOW}); "
            f"peak memory so far {peak_at[at]:.0f} MB",
            flush=True,
        )
    ratio = rate(args.checkpoint, done_at) / rate(args.n, done_at)  # cost at n / at checkpoint
    cpu_ratio = rate(args.checkpoint, cpu_at) / rate(args.n, cpu_at)
    peak = peak_mb()
    dedupe_s = spent["signatures"] + spent["decide"]
    print(f"decided: {dict(sorted(decided.items()))}")
    print(
        f"time: making articles {spent['make']:.1f}s, storing them {spent['store']:.1f}s "
        f"(not timed); "
        f"dedupe {dedupe_s:.1f}s = signatures {spent['signatures']:.1f}s "
        f"+ decisions {spent['decide']:.1f}s; mean {args.n / dedupe_s:.1f} articles/s; "
        f"wall {time.perf_counter() - wall:.0f}s"
    )
    ok_cost, ok_mem = ratio <= COST_RATIO_MAX, peak < PEAK_MB_MAX
    print(
        f"cost at {args.n} / cost at {args.checkpoint}: {ratio:.2f}  target <= {COST_RATIO_MAX}  "
        f"{'MET' if ok_cost else 'NOT MET'}  (CPU time: {cpu_ratio:.2f})"
    )
    print(
        f"peak memory (VmHWM) {peak:.0f} MB  target < {PEAK_MB_MAX}  "
        f"{'MET' if ok_mem else 'NOT MET'}"
    )
    return 0 if ok_cost and ok_mem else 1


if __name__ == "__main__":
    sys.exit(main())
