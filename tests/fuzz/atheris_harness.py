"""One atheris (libFuzzer) harness per fuzz target: ``python -m tests.fuzz.atheris_harness
TARGET SEED_DIR REPORT [libFuzzer flags]``.

waikan's modules are instrumented, so libFuzzer's ``cov:`` counter grows as
new branches are found. The slowest input's time is written to ``REPORT``
(JSON) whenever a new maximum appears, because libFuzzer leaves with
``_exit`` after ``-runs`` and no ``atexit`` hook would run.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["waikan"]):
    from tests.fuzz.targets import TARGETS

from tests.fuzz.seeds import regressions


def main() -> None:
    name, seeds, report = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    target = TARGETS[name]
    state = {"slowest": 0.0, "n": 0}

    def one(data: bytes) -> None:
        start = time.perf_counter()
        target(data)
        took = time.perf_counter() - start
        state["n"] += 1
        if took > state["slowest"]:
            state["slowest"] = took
            report.write_text(json.dumps({"slowest_s": took, "size": len(data)}))

    # one-time costs of a fresh process (dateparser compiles every locale's regexes on its
    # first extensive date search: ~9 s) are paid here, not charged to the first input
    for path in regressions(name):
        target(path.read_bytes())
    atheris.Setup([sys.argv[0], *sys.argv[4:], seeds], one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
