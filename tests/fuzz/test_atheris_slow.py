"""Coverage-guided fuzzing with atheris: 10,000+ inputs per target, in ``make test-slow``.

Each harness runs in its own process (libFuzzer owns the process and leaves
with ``_exit``). The test prints, per target, the inputs tried, the crashes
found, coverage at start and end, and the slowest input against its limit.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.fuzz.seeds import write_seeds
from tests.fuzz.targets import TARGETS

ROOT = Path(__file__).resolve().parents[2]
RUNS = 10_000
LIMIT_S = 5.0  # per input; libFuzzer's -timeout kills a harness that passes it
LIMITS = {"extract": 10.0}  # a whole page through trafilatura, htmldate and langid
# extraction inputs are capped so 10,000 of them fit the slow suite's time budget
MAX_LEN = {"extract": 8_192, "listing": 8_192, "config": 2_048}
_COV = re.compile(r"cov: (\d+)")
_DONE = re.compile(r"Done (\d+) runs")


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzz(target: str, tmp_path: Path) -> None:
    limit = LIMITS.get(target, LIMIT_S)
    seeds = write_seeds(target, tmp_path / "seeds")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    report = tmp_path / "slowest.json"
    cmd = [
        sys.executable, "-m", "tests.fuzz.atheris_harness", target, str(seeds), str(report),
        f"-runs={RUNS}", f"-timeout={int(limit)}", f"-max_len={MAX_LEN.get(target, 4096)}",
        "-rss_limit_mb=3072", "-seed=1", f"-artifact_prefix={tmp_path}/", str(corpus),
    ]  # fmt: skip
    start = time.monotonic()
    # No target opens a store; pg mode's start-up hook would import waikan before atheris
    # instruments it (coverage 0 -> 0), so the harness runs without it.
    env = {k: v for k, v in os.environ.items() if k != "WAIKAN_TEST_PG"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    took = time.monotonic() - start
    log = proc.stderr
    crashes = sorted(p.name for p in tmp_path.glob("crash-*")) + sorted(
        p.name for p in tmp_path.glob("timeout-*")
    )
    done = _DONE.search(log)
    runs = int(done.group(1)) if done else 0
    cov = [int(c) for c in _COV.findall(log)]
    slowest = json.loads(report.read_text())["slowest_s"] if report.exists() else float("nan")
    print(
        f"\nfuzz {target}: {runs} inputs tried, {len(crashes)} crashes, "
        f"coverage {cov[0] if cov else 0} -> {cov[-1] if cov else 0}, "
        f"slowest input {slowest:.3f} s (limit {limit:g} s), {took:.0f} s"
    )
    assert not crashes, log[-3000:]
    assert proc.returncode == 0, log[-3000:]
    assert runs >= RUNS
    assert cov and cov[-1] > cov[0], "coverage did not grow"
    assert slowest < limit
