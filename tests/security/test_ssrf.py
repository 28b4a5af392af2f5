"""SSRF suite (tests/security/ssrf.py): all cases blocked on every outbound path."""

from __future__ import annotations

from pathlib import Path

from tests.security import ssrf


def test_ssrf_suite_all_blocked(tmp_path: Path) -> None:
    outcomes = ssrf.run(tmp_path)
    print("\n" + ssrf.summary(outcomes))
    assert len(outcomes) == len(ssrf.CASES) * len(ssrf.SURFACES)
    assert all(o.blocked for o in outcomes), ssrf.summary(outcomes)


def test_ssrf_suite_detects_an_open_door(tmp_path: Path) -> None:
    """With the protection off the same cases reach the internal server: the suite can fail."""
    outcomes = ssrf.run(tmp_path, protect=False, surfaces=("page/feed",))
    reached = [o for o in outcomes if not o.blocked]
    assert len(reached) >= len(outcomes) // 2, ssrf.summary(outcomes)
