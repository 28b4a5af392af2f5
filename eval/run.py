"""Extraction quality gate: waikan vs trafilatura over the shared corpus.

usage: python eval/run.py [--update-baseline] [--keep DIR] [--only waikan]

Scores come from the corpus's reference scorers (``score_scrapinghub.py``,
``score_naeb.py``), run on JSONL files written here, so the figures stay
comparable with the published ones. trafilatura's own figures are measured
in the same run as a yardstick. Exit status 1 when a figure is below its
target (``eval/targets.json``, never lowered) or below the best figure
reached so far (``eval/baseline.json``) minus a small tolerance.

Body figures score the paragraphs waikan extracted whether or not a quality
gate rejected the page, so that they measure extraction alone and compare
with trafilatura's; the rejections are listed apart (every page of these
sets has a gold body, so each rejection is worth a look).
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

TARGETS = ROOT / "eval" / "targets.json"
BASELINE = ROOT / "eval" / "baseline.json"
TOLERANCE = 0.002
WORKERS = 2

# metric name → (dataset, key in the scorer's output)
METRICS: dict[str, tuple[str, str]] = {
    "scrapinghub_body_f1": ("scrapinghub", "f1"),
    "naeb_title_exact": ("naeb-dev", "title_exact"),
    "naeb_date_day": ("naeb-dev", "date_day"),
    "naeb_timestamp_exact": ("naeb-dev", "timestamp_exact"),
    "naeb_body_f1": ("naeb-dev", "body_f1"),
}
SCORERS = {"scrapinghub": "score_scrapinghub.py", "naeb-dev": "score_naeb.py"}


def corpus_dir() -> Path:
    return Path(os.environ.get("WAIKAN_CORPUS", ROOT.parent / "shared" / "corpus")).resolve()


def pages(corpus: Path, dataset: str) -> list[tuple[str, str, str | None]]:
    """(key, path, url) for every page of a dataset, in gold order."""
    gold = json.loads((corpus / dataset / "gold.json").read_text())
    if dataset == "scrapinghub":
        items = [(k, v.get("url")) for k, v in gold.items()]
    else:
        items = [(g["html_file"], g.get("link")) for g in gold]
    return [(k, str(corpus / dataset / "html" / f"{k}.html.gz"), url) for k, url in items]


def run_waikan(html: bytes, url: str | None) -> dict[str, Any]:
    from waikan.errors import ExtractError
    from waikan.extract import extract

    try:
        doc = extract(html, url=url)
    except ExtractError as exc:
        return {"title": None, "published": None, "body": "", "reject": f"error: {exc}"}
    return {
        "title": doc.title,
        "published": doc.published,
        "body": doc.body,
        "reject": doc.reject_reason,
    }


def run_trafilatura(html: bytes, url: str | None) -> dict[str, Any]:
    import trafilatura

    out = trafilatura.extract(html, url=url, include_comments=False, output_format="json",
                              with_metadata=True)
    doc = json.loads(out) if out else {}
    return {"title": doc.get("title"), "published": doc.get("date"), "body": doc.get("text") or ""}


def _work(task: tuple[str, str, str, str | None]) -> tuple[str, dict[str, Any]]:
    system, key, path, url = task
    with gzip.open(path) as fh:
        html = fh.read()
    started = time.perf_counter()
    result = run_waikan(html, url) if system == "waikan" else run_trafilatura(html, url)
    result["seconds"] = time.perf_counter() - started
    result["file"] = key
    return system, result


def score(corpus: Path, dataset: str, results: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    out.write_text("".join(json.dumps(r) + "\n" for r in results))
    proc = subprocess.run(
        [sys.executable, str(corpus / SCORERS[dataset]), str(corpus / dataset), str(out)],
        capture_output=True, text=True, check=True,
    )
    scores: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return scores


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--update-baseline", action="store_true", help="raise eval/baseline.json")
    ap.add_argument("--keep", type=Path, help="keep the per-page JSONL results in this folder")
    ap.add_argument("--only", choices=["waikan"], help="skip trafilatura's reference run")
    args = ap.parse_args(argv)

    corpus = corpus_dir()
    systems = ["waikan"] if args.only else ["waikan", "trafilatura"]
    tasks = [(s, k, p, u) for d in SCORERS for k, p, u in pages(corpus, d) for s in systems]
    dataset_of = {k: d for d in SCORERS for k, _, _ in pages(corpus, d)}
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
        done = pool.map(_work, tasks, chunksize=4)
    elapsed = time.perf_counter() - started

    figures: dict[str, dict[str, float | None]] = {s: {} for s in systems}
    rejected: Counter[tuple[str, str]] = Counter()
    listed: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        outdir = args.keep or Path(tmp)
        outdir.mkdir(parents=True, exist_ok=True)
        for system in systems:
            for dataset in SCORERS:
                results = [r for s, r in done if s == system and dataset_of[r["file"]] == dataset]
                if system == "waikan":
                    refused = [r for r in results if r.get("reject")]
                    rejected.update((dataset, r["reject"]) for r in refused)
                    listed.extend((dataset, r["file"], r["reject"]) for r in refused)
                scores = score(corpus, dataset, results, outdir / f"{dataset}-{system}.jsonl")
                for metric, (ds, key) in METRICS.items():
                    if ds == dataset:
                        figures[system][metric] = scores.get(key)

    targets: dict[str, float] = json.loads(TARGETS.read_text())
    baseline: dict[str, float] = json.loads(BASELINE.read_text()) if BASELINE.exists() else {}
    ok = True
    print(f"corpus: {corpus}  ({len(dataset_of)} pages, {elapsed:.1f}s, {WORKERS} workers)")
    print(f"{'metric':24} {'waikan':>8} {'trafil.':>8} {'target':>8} {'baseline':>9}  verdict")
    for metric in METRICS:
        ours = figures["waikan"].get(metric)
        theirs = figures.get("trafilatura", {}).get(metric)
        target = targets.get(metric)
        best = baseline.get(metric)
        met = ours is not None and (target is None or ours >= target)
        held = ours is not None and (best is None or ours >= best - TOLERANCE)
        verdict = ("MET" if met else "NOT MET") + ("" if held else f" (below baseline {best})")
        ok = ok and met and held
        cells = f"{_fmt(ours):>8} {_fmt(theirs):>8} {_fmt(target):>8} {_fmt(best):>9}"
        print(f"{metric:24} {cells}  {verdict}")
    for (dataset, reason), n in sorted(rejected.items()):
        print(f"rejected on {dataset}: {n} {reason}")
    if args.keep:
        (args.keep / "rejected.tsv").write_text("".join("\t".join(r) + "\n" for r in listed))

    if args.update_baseline:
        ours_now = {m: v for m, v in figures["waikan"].items() if v is not None}
        # other gates may keep their own figures in this file: keep them, only raise ours
        raised = {**baseline, **{m: max(v, baseline.get(m, 0.0)) for m, v in ours_now.items()}}
        BASELINE.write_text(json.dumps(raised, indent=2, sort_keys=True) + "\n")
        print(f"baseline written: {BASELINE.relative_to(ROOT)}")
    # The faithfulness guard's gate (issue 3): recall on planted errors, false alarms.
    guard = subprocess.run([sys.executable, str(ROOT / "eval" / "guard_eval.py")], check=False)
    # Dedupe's gate (issue 6): near-duplicate and story-cluster precision/recall.
    dedupe_gate = [sys.executable, str(ROOT / "eval" / "dedupe" / "run.py")]
    dedupe = subprocess.run(dedupe_gate + ["--update-baseline"] * args.update_baseline, check=False)
    return 0 if ok and guard.returncode == 0 and dedupe.returncode == 0 else 1


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


if __name__ == "__main__":
    sys.exit(main())
