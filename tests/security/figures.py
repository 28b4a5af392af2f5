"""Each security suite with its protection on and off: ``python -m tests.security.figures``.

The figures quoted in the hardening issue's note come from this script. With
the protection on every case must pass; with it off the suite must fail,
showing that it tests something.
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

from tests.security import injection, ssrf
from tests.security import secrets_suite as secrets


def main() -> int:
    warnings.filterwarnings("ignore")
    work = Path(tempfile.mkdtemp(prefix="waikan-security-"))
    ok = True
    on = ssrf.run(work / "ssrf-on")
    off = ssrf.run(work / "ssrf-off", protect=False)
    print("SSRF guard on:  " + ssrf.summary(on).splitlines()[0])
    print("SSRF guard off (fetch.allow_private_networks = true): " + ssrf.summary(off))
    ok &= all(o.blocked for o in on) and not all(o.blocked for o in off)

    on_i = injection.run(work / "inj-on")
    off_i = injection.run(work / "inj-off", protect=False)
    undefused = injection.run(work / "inj-nodefuse", defuse=False)
    print("injection guard on:  " + injection.summary(on_i).splitlines()[0])
    print("injection guard off: " + injection.summary(off_i).splitlines()[0])
    print("delimiter defusal off: " + injection.summary(undefused).splitlines()[0])
    ok &= all(o.flagged and o.delimiters_ok for o in on_i)
    ok &= not any(o.flagged for o in off_i) and not all(o.delimiters_ok for o in undefused)

    on_s = secrets.run(work / "sec-on")
    off_s = secrets.run(work / "sec-off", protect=False)
    print("secrets redaction on:  " + secrets.summary(on_s))
    print("secrets redaction off: " + secrets.summary(off_s))
    ok &= not on_s.scan() and bool(off_s.scan())
    print("figures: " + ("as expected" if ok else "UNEXPECTED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
