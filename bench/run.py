"""Extraction speed: waikan's full extract() against plain trafilatura.bare_extraction.

usage: python bench/run.py [--repeats N] [--limit N]

waikan does more than trafilatura (metadata, lead photo, boilerplate rules,
quality gates, language), so the figure is a ratio measured in the same run
on the same machine: pages/second of waikan divided by pages/second of
``trafilatura.bare_extraction(html)``. Each pass runs every extractor on a
page before moving to the next page (the order rotating page by page), so a
machine whose load changes during the run slows all of them alike; the
ratio uses the medians of the passes. The same figure is measured for the pipeline's path,
extraction within limits in a reused worker process (``extract.isolate``, on
by default), which adds the depth scan, a pipe round trip and pickling. Exit
status 1 when either ratio is below the target.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

TARGET_RATIO = 0.8


def corpus_dir() -> Path:
    return Path(os.environ.get("WAIKAN_CORPUS", ROOT.parent / "shared" / "corpus")).resolve()


def load_pages(corpus: Path, limit: int | None) -> list[bytes]:
    paths = sorted(corpus.glob("*/html/*.html.gz"))[:limit]
    out = []
    for path in paths:
        with gzip.open(path) as fh:
            out.append(fh.read())
    return out


def timed_pass(fns: list[Callable[[bytes], object]], pages: list[bytes], shift: int) -> list[float]:
    """Pages per second of each function for one pass, interleaved page by page."""
    gc.collect()
    spent = [0.0] * len(fns)
    for n, html in enumerate(pages):
        for k in range(len(fns)):
            j = (n + shift + k) % len(fns)
            started = time.perf_counter()
            fns[j](html)
            spent[j] += time.perf_counter() - started
    return [len(pages) / s for s in spent]


def main(argv: list[str] | None = None) -> int:
    import trafilatura

    from waikan.extract import extract
    from waikan.extract.limited import Limits

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--limit", type=int, default=None, help="only the first N pages")
    args = ap.parse_args(argv)

    pages = load_pages(corpus_dir(), args.limit)
    ours: list[float] = []
    theirs: list[float] = []
    isolated: list[float] = []
    limits = Limits()  # the defaults of the extract.* settings: isolated

    def waikan_fn(html: bytes) -> object:
        return extract(html)

    def isolated_fn(html: bytes) -> object:
        return limits.extract(html)

    def trafilatura_fn(html: bytes) -> object:
        return trafilatura.bare_extraction(html)

    for html in pages[:5]:  # warm-up: model loads and imports are not per-page costs
        waikan_fn(html)
        isolated_fn(html)
        trafilatura_fn(html)
    for repeat in range(args.repeats):
        rates = timed_pass([waikan_fn, isolated_fn, trafilatura_fn], pages, repeat)
        for sink, rate in zip((ours, isolated, theirs), rates, strict=True):
            sink.append(rate)
    w, i, t = (statistics.median(x) for x in (ours, isolated, theirs))
    print(f"pages: {len(pages)}  repeats: {args.repeats}")
    rows = (
        ("waikan extract", w, ours),
        ("waikan extract isolated", i, isolated),
        ("trafilatura bare_extract", t, theirs),
    )
    for name, median, passes in rows:
        listed = ", ".join(f"{x:.1f}" for x in passes)
        print(f"{name:24} {median:7.1f} pages/s  (passes: {listed})")
    ratios = (("ratio", w / t), ("ratio isolated", i / t))
    for label, ratio in ratios:
        verdict = "MET" if ratio >= TARGET_RATIO else "NOT MET"
        print(f"{label} {ratio:.3f}  target >= {TARGET_RATIO}  {verdict}")
    return 0 if all(ratio >= TARGET_RATIO for _, ratio in ratios) else 1


def run_all() -> int:
    """Every benchmark in turn; the exit status is 1 when any target is missed."""
    import bench_site

    results = [main()]
    print("\n== site build (bench/bench_site.py)")
    results.append(bench_site.main([]))
    import bench_publish

    print("\n== publishing (bench/bench_publish.py)")
    results.append(bench_publish.main([]))
    import bench_fetch

    print("\n== waikan fetch over loopback (bench/bench_fetch.py)")
    results.append(bench_fetch.main([]))
    import bench_summarize

    print("\n== summarize against a loopback model server (bench/bench_summarize.py)")
    results.append(bench_summarize.main([]))
    import bench_dedupe

    print("\n== dedupe, 100,000 synthetic articles (bench/bench_dedupe.py)")
    results.append(bench_dedupe.main([]))
    import bench_desk

    print("\n== the editor's desk, 100,000 vs 1,000 articles (bench/bench_desk.py)")
    results.append(bench_desk.main([]))
    import bench_queue

    print("\n== run --distributed with 1, 2, 4 workers vs inline (bench/bench_queue.py)")
    results.append(bench_queue.main([]))
    return max(results)


if __name__ == "__main__":
    sys.exit(run_all())
