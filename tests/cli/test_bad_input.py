"""Bad input: one clear line, a non-zero exit, nothing half-written (issue acceptance)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.conftest import DATA, PG_MODE, assert_one_line_error, run_proc
from tests.servers.openai_server import FakeLLM

REUTERS = DATA / "reuters-blinken-wang.html"


def article_count(home: Path) -> int:
    """Articles in the workspace's store (its SQLite file, or its database in pg mode)."""
    from sqlalchemy import text

    from waikan.store import open_store

    db = home / "waikan.db"
    if not db.exists() and not PG_MODE:
        return 0
    store = open_store(f"sqlite:///{db}")
    try:
        with store.engine.connect() as c:
            return int(c.scalar(text("select count(*) from articles")) or 0)
    finally:
        store.close()


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, Path]:
    files = {
        "missing": tmp_path / "nope.html",
        "empty": tmp_path / "empty.html",
        "binary": tmp_path / "image.html",
        "huge": tmp_path / "huge.html",
        "broken_gz": tmp_path / "broken.html.gz",
    }
    files["empty"].write_bytes(b"")
    files["binary"].write_bytes(bytes(range(256)) * 64)
    with files["huge"].open("wb") as fh:  # 200 MB, sparse: must be refused before reading
        fh.truncate(200 * 1024 * 1024)
    files["broken_gz"].write_bytes(b"\x1f\x8b\x08\x00garbage")
    return files


@pytest.mark.parametrize("kind", ["missing", "empty", "binary", "broken_gz"])
def test_add_bad_file(waikan, home: Path, bad_files: dict[str, Path], kind: str) -> None:  # type: ignore[no-untyped-def]
    result = waikan("add", str(bad_files[kind]))
    assert_one_line_error(result)
    assert str(bad_files[kind].name) in result.err
    assert article_count(home) == 0


def test_add_huge_file_is_rejected_too_large(waikan, home: Path, bad_files) -> None:  # type: ignore[no-untyped-def]
    """Over fetch.max_bytes is a rejection (exit 3), as for a source's page, not an error."""
    result = waikan("add", str(bad_files["huge"]))
    assert result.code == 3 and result.err == "", result.err
    assert "rejected:too_large: " in result.out and "huge.html: 209,715,200 bytes" in result.out
    assert article_count(home) == 1


@pytest.mark.parametrize("kind", ["missing", "empty", "binary", "huge"])
def test_extract_bad_file(bad_files: dict[str, Path], kind: str) -> None:
    from tests.conftest import run_inproc

    result = run_inproc(["extract", "--json", str(bad_files[kind])])
    assert_one_line_error(result)


def test_bad_file_among_good_ones_keeps_the_good(waikan, home: Path, bad_files) -> None:  # type: ignore[no-untyped-def]
    result = waikan("add", str(bad_files["missing"]), str(REUTERS))
    assert result.code == 1
    assert result.out.startswith("1\textracted\t")
    assert article_count(home) == 1


def test_invalid_utf8_page(waikan, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = REUTERS.read_bytes().replace(b"Wang arrived", b"Wang \xff\xfe arrived")
    path = tmp_path / "latin.html"
    path.write_bytes(page)
    result = waikan("add", str(path))
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    assert article_count(home) == 1


def test_non_article_rejected_exit_3(waikan) -> None:  # type: ignore[no-untyped-def]
    result = waikan("add", str(DATA / "not-article-index.html"))
    assert result.code == 3
    assert "\trejected:not_article\t" in result.out


def test_summarize_with_llm_down_leaves_status(waikan, home: Path) -> None:  # type: ignore[no-untyped-def]
    assert waikan("add", str(REUTERS)).code == 0
    env = {
        "WAIKAN_LLM_BASE_URL": "http://127.0.0.1:9/v1",
        "WAIKAN_LLM_MODEL": "m",
        "WAIKAN_LLM_API_KEY": "sk-down-key",
        "WAIKAN_LLM_MAX_RETRIES": "0",
    }
    result = waikan("summarize", env=env)
    assert_one_line_error(result)
    assert "unreachable" in result.err and "sk-down-key" not in result.err
    assert "1\textracted\t" in waikan("list").out


@pytest.mark.parametrize("status", [500, 401])
def test_summarize_with_llm_error_status(waikan, status: int) -> None:  # type: ignore[no-untyped-def]
    assert waikan("add", str(REUTERS)).code == 0
    with FakeLLM(api_key="sk-right", model="m", answer="x", status=500) as llm:
        key = "sk-right" if status == 500 else "sk-wrong"
        env = {
            "WAIKAN_LLM_BASE_URL": llm.url,
            "WAIKAN_LLM_MODEL": "m",
            "WAIKAN_LLM_API_KEY": key,
            "WAIKAN_LLM_MAX_RETRIES": "0",
        }
        result = waikan("summarize", env=env)
    assert_one_line_error(result)
    assert f"HTTP {status}" in result.err and key not in result.err
    assert "1\textracted\t" in waikan("list").out


def test_missing_api_key_for_remote_endpoint(waikan) -> None:  # type: ignore[no-untyped-def]
    assert waikan("add", str(REUTERS)).code == 0
    env = {"WAIKAN_LLM_BASE_URL": "https://api.example.com/v1", "WAIKAN_LLM_MODEL": "m"}
    result = waikan("summarize", env=env)
    assert_one_line_error(result)
    assert "WAIKAN_LLM_API_KEY" in result.err


def test_show_unknown_and_unsummarized(waikan) -> None:  # type: ignore[no-untyped-def]
    assert_one_line_error(waikan("show", "42"))
    assert waikan("add", str(REUTERS)).code == 0
    result = waikan("show", "1")
    assert_one_line_error(result)
    assert "waikan summarize" in result.err


def test_usage_errors_exit_2(waikan) -> None:  # type: ignore[no-untyped-def]
    assert waikan("add").code == 2
    assert waikan("show", "abc").code == 2
    assert waikan("show", "1", "--format", "pdf").code == 2
    assert waikan("no-such-command").code == 2


def test_real_process_never_prints_traceback(tmp_path: Path) -> None:
    env = {"WAIKAN_HOME": str(tmp_path / "ws")}
    for args in (["add", str(tmp_path / "missing.html")], ["show", "7"], ["extract", "/dev/null"]):
        result = run_proc(args, env)
        assert_one_line_error(result)
    assert os.listdir(tmp_path) in (["ws"], [])
