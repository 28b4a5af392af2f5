"""Long trial: every corpus page through ``waikan add`` twice (make test-slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import ROOT, run_proc

CORPUS = ROOT.parent / "shared" / "corpus"


@pytest.mark.slow
def test_whole_corpus_ingests_without_error_and_idempotently(tmp_path: Path) -> None:
    folders = [CORPUS / "scrapinghub" / "html", CORPUS / "naeb-dev" / "html"]
    assert all(f.is_dir() for f in folders), "the shared corpus must be beside the checkout"
    pages = sum(len(list(f.glob("*.html.gz"))) for f in folders)
    env = {"WAIKAN_HOME": str(tmp_path / "ws")}
    first = run_proc(["add", "--json", *map(str, folders)], env, timeout=1800)
    assert first.code in (0, 3), first.err[-2000:]
    assert "Traceback" not in first.err
    rows = [json.loads(line) for line in first.out.splitlines()]
    assert len(rows) == pages
    extracted = [r for r in rows if r["status"] == "extracted"]
    assert len(extracted) >= 0.9 * pages  # the corpus is real articles: few rejections
    assert all(r["title"] for r in extracted)
    again = run_proc(["list", "--json"], env)
    assert len(again.out.splitlines()) == len({r["id"] for r in rows})
    second = run_proc(["add", "--json", *map(str, folders)], env, timeout=1800)
    assert [json.loads(line)["id"] for line in second.out.splitlines()] == [r["id"] for r in rows]
