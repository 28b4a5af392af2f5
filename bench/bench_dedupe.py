"""Dedupe at scale: 100,000 synthetic articles through the real Deduper on a real SQLite store.

usage: python bench/bench_dedupe.py [--n N] [--checkpoint N]

Articles are made from corpus paragraphs: each picks 5-9 paragraphs of the
corpus at random (so it is new), and one in four is instead a perturbed copy
of a recent one (trimmed, a paragraph added, words edited), so every path of
the decision runs. Publication times advance 1,000 articles a day, as a busy
wire would. Only dedupe is timed (signatures + the decision and its
transaction), not storing the article. Prints articles/second around the
checkpoint and at the end, their ratio (target: per-article cost at N within
1.5x of that at the checkpoint) and peak memory (target < 1.5 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
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


def main(argv: list[str] | None = None) -> int:
    from waikan.dedupe import Deduper, Settings, features
    from waikan.models import Extracted
    from waikan.store import open_store

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--checkpoint", type=int, default=10_000)
    args = ap.parse_args(argv)
    rng = random.Random(6)
    pool = corpus_paragraphs()
    recent: list[list[str]] = []
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rates: dict[int, float] = {}
    elapsed = 0.0
    window_started = 0.0
    kinds = {"new": 0, "copy": 0}
    decided: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        deduper = Deduper(store, Settings())
        for i in range(1, args.n + 1):
            if recent and rng.random() < 0.25:
                paras = list(rng.choice(recent))
                cut = rng.random()
                if cut < 0.33:
                    paras = paras[: max(2, len(paras) - 2)]
                elif cut < 0.66:
                    paras.insert(rng.randrange(len(paras)), rng.choice(pool))
                else:
                    paras = [p.replace(" the ", " a ", 1) for p in paras]
                kinds["copy"] += 1
            else:
                paras = rng.sample(pool, rng.randint(5, 9))
                recent = [paras, *recent][:200]
                kinds["new"] += 1
            published = start + timedelta(seconds=i * 86.4)
            ex = Extracted(
                title=" ".join(paras[0].split()[:8]),
                source=f"Outlet {rng.randrange(50)}",
                published=published.strftime("%Y-%m-%dT%H:%M:%SZ"),
                caption=None,
                paragraphs=tuple(paras),
            )
            record = store.add_article(f"https://o{i % 50}.example/a/{i}", ex, raw=str(i).encode())
            t0 = time.perf_counter()
            decision = deduper.decide(record, features(record))
            elapsed += time.perf_counter() - t0
            if decision is not None:
                decided[decision.relation] = decided.get(decision.relation, 0) + 1
            if i in (args.checkpoint - WINDOW, args.n - WINDOW):
                window_started = elapsed
            if i in (args.checkpoint, args.n):
                rates[i] = WINDOW / (elapsed - window_started)
                print(f"{i:>7} articles: {rates[i]:7.1f} articles/s (last {WINDOW})", flush=True)
        store.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ratio = rates[args.checkpoint] / rates[args.n]  # per-article cost at n over that at checkpoint
    print(f"made: {kinds}; decided: {decided}")
    print(f"dedupe total {elapsed:.1f}s, mean {args.n / elapsed:.1f} articles/s")
    ok_cost, ok_mem = ratio <= COST_RATIO_MAX, peak_mb < PEAK_MB_MAX
    print(
        f"cost at {args.n} / cost at {args.checkpoint}: {ratio:.2f}  target <= {COST_RATIO_MAX}  "
        f"{'MET' if ok_cost else 'NOT MET'}"
    )
    print(f"peak memory {peak_mb:.0f} MB  target < {PEAK_MB_MAX}  {'MET' if ok_mem else 'NOT MET'}")
    return 0 if ok_cost and ok_mem else 1


if __name__ == "__main__":
    sys.exit(main())
