"""The dedupe eval gate: held-out targets are reported, held-out baseline floors enforced."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest
from tests.conftest import ROOT


def _gate(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """eval/dedupe/run.py as a module (registered: its dataclasses look themselves up)."""
    spec = importlib.util.spec_from_file_location("dedupe_eval_gate", ROOT / "eval/dedupe/run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("floor", "status", "verdict"),
    [(0.79, 0, "NOT MET"), (1.0, 1, "NOT MET (below baseline 1.0)")],
)
def test_heldout_target_is_reported_and_its_floor_enforced(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    floor: float,
    status: int,
    verdict: str,
) -> None:
    gate = _gate(monkeypatch)
    (tmp_path / "eval").mkdir()
    shutil.copy(ROOT / "eval/targets.json", tmp_path / "eval/targets.json")
    baseline = json.loads((ROOT / "eval/baseline.json").read_text())
    assert "dedupe_heldout_story_precision" in baseline
    baseline["dedupe_heldout_story_precision"] = floor
    (tmp_path / "eval/baseline.json").write_text(json.dumps(baseline))
    monkeypatch.setattr(gate, "ROOT", tmp_path)
    monkeypatch.setattr(gate, "evaluate", lambda verbose=False: {"dedupe_story_precision": 0.99})
    monkeypatch.setattr(
        gate, "evaluate_heldout", lambda verbose=False: {"dedupe_heldout_story_precision": 0.8}
    )
    assert gate.main([]) == status
    line = next(x for x in capsys.readouterr().out.splitlines() if "heldout" in x)
    assert line.split() == [
        "dedupe_heldout_story_precision",
        "0.8000",
        "target",
        "0.85",
        *verdict.split(),
    ]


def test_a_missed_labelled_target_still_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = _gate(monkeypatch)
    (tmp_path / "eval").mkdir()
    shutil.copy(ROOT / "eval/targets.json", tmp_path / "eval/targets.json")
    monkeypatch.setattr(gate, "ROOT", tmp_path)
    monkeypatch.setattr(gate, "evaluate", lambda verbose=False: {"dedupe_story_precision": 0.8})
    monkeypatch.setattr(gate, "evaluate_heldout", lambda verbose=False: {})
    assert gate.main([]) == 1
