"""Prompt-injection suite (tests/security/injection.py): every obeyed injection is flagged."""

from __future__ import annotations

from pathlib import Path

from tests.security import injection


def test_injection_suite_all_flagged(tmp_path: Path) -> None:
    outcomes = injection.run(tmp_path)
    print("\n" + injection.summary(outcomes))
    assert len(outcomes) == len(injection.CASES)
    assert all(o.flagged for o in outcomes), injection.summary(outcomes)
    assert all(o.delimiters_ok for o in outcomes), injection.summary(outcomes)
    for case, o in zip(injection.CASES, outcomes, strict=True):
        if any(mark in case.answer for mark in ("://", "／／", ".me/", ".top/", ".ai/")):
            assert any(f.startswith("url:") for f in o.findings), o  # any URL is a finding


def test_faithful_answer_is_not_flagged(tmp_path: Path) -> None:
    got = injection.control(tmp_path)
    assert got.status == "summarized" and got.findings == [] and got.delimiters_ok


def test_suite_fails_with_the_protections_off(tmp_path: Path) -> None:
    """The suite can fail: guard off → nothing flagged; defusal off → the block is closed."""
    with injection.guard_off():  # two cases here; every case in tests/security/figures.py
        off = [injection.run_case(injection.CASES[i], tmp_path / f"off-{i}") for i in (0, 7)]
    assert not any(o.flagged for o in off)
    undefused = injection.run_case(injection.CASES[-1], tmp_path / "defuse-off")
    assert undefused.delimiters_ok
    with injection.defuse_off():
        broken = injection.run_case(injection.CASES[-1], tmp_path / "defuse-off-2")
    assert not broken.delimiters_ok
