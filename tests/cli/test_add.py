"""``waikan add`` / ``list``: files, folders, URLs over loopback, rejection, idempotence."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

from tests.conftest import DATA, assert_one_line_error
from tests.servers.pages import PageServer, endless, gzip_bomb, redirect, slow

REUTERS = DATA / "reuters-blinken-wang.html"
PRIVATE_OK = {"WAIKAN_FETCH_ALLOW_PRIVATE_NETWORKS": "true"}


def test_add_file_twice_is_one_article(waikan) -> None:  # type: ignore[no-untyped-def]
    first = waikan("add", str(REUTERS))
    assert first.code == 0
    assert first.out.split("\t")[:2] == ["1", "extracted"]
    again = waikan("add", str(REUTERS))
    assert again.code == 0 and again.out == first.out
    listed = waikan("list", "--json")
    rows = [json.loads(line) for line in listed.out.splitlines()]
    assert len(rows) == 1
    row = rows[0]
    assert {"id", "status", "reason", "source", "url", "title", "published"} <= row.keys()
    assert row["published"] == "2023-10-27T14:03:40Z" and row["source"] == "Reuters"
    assert row["url"].startswith("https://www.reuters.com/")  # the page's canonical URL


def test_add_folder_with_gz_and_rejects_exit_3(waikan, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "pages"
    folder.mkdir()
    (folder / "a.html.gz").write_bytes(gzip.compress(REUTERS.read_bytes()))
    shutil.copy(DATA / "not-article-index.html", folder / "b.html")
    (folder / "notes.txt").write_text("ignored")
    result = waikan("add", "--json", str(folder))
    assert result.code == 3
    rows = [json.loads(line) for line in result.out.splitlines()]
    assert [(r["status"], r["reason"]) for r in rows] == [
        ("extracted", None),
        ("rejected", "not_article"),
    ]
    assert len(waikan("list", "--status", "rejected").out.splitlines()) == 1


def test_add_url_over_loopback_with_redirect(waikan) -> None:  # type: ignore[no-untyped-def]
    page = REUTERS.read_bytes()
    with PageServer({"/story": page, "/old": redirect("/story")}) as srv:
        result = waikan("add", "--json", f"{srv.base}/old", env=PRIVATE_OK)
        assert result.code == 0, result.err
        row = json.loads(result.out)
        assert row["url"] == f"{srv.base}/old" and row["status"] == "extracted"
        assert srv.hits == ["/old", "/story"]
        # Adding the same URL again fetches nothing and stores nothing new.
        assert waikan("add", f"{srv.base}/old", env=PRIVATE_OK).code == 0
        assert srv.hits == ["/old", "/story"]


def test_private_address_refused_without_flag(waikan, home: Path) -> None:  # type: ignore[no-untyped-def]
    with PageServer({"/story": REUTERS.read_bytes()}) as srv:
        result = waikan("add", f"{srv.base}/story")
        assert srv.hits == []
    assert_one_line_error(result)
    assert "private address" in result.err
    assert waikan("list").out == ""


def test_redirect_to_non_http_scheme_refused(waikan) -> None:  # type: ignore[no-untyped-def]
    with PageServer({"/r": redirect("file:///etc/passwd")}) as srv:
        result = waikan("add", f"{srv.base}/r", env=PRIVATE_OK)
    assert_one_line_error(result)
    assert "only http and https" in result.err


def test_endless_and_bomb_responses_capped(waikan) -> None:  # type: ignore[no-untyped-def]
    env = PRIVATE_OK | {"WAIKAN_FETCH_MAX_BYTES": "1000000"}
    with PageServer({"/endless": endless, "/bomb": gzip_bomb}) as srv:
        for path in ("/endless", "/bomb"):
            result = waikan("add", f"{srv.base}{path}", env=env)
            assert result.code == 3 and result.err == "", result.err  # rejected, as a rejection
    listed = [json.loads(line) for line in waikan("list", "--json").out.splitlines()]
    assert [(a["status"], a["reason"].split(":")[0]) for a in listed] == [
        ("rejected", "too_large")
    ] * 2


def test_unreachable_url_and_timeout(waikan) -> None:  # type: ignore[no-untyped-def]
    result = waikan("add", "http://127.0.0.1:9/nothing", env=PRIVATE_OK)
    assert_one_line_error(result)
    with PageServer({"/slow": slow, "/gone": None}) as srv:
        timed = waikan("add", f"{srv.base}/slow", env=PRIVATE_OK | {"WAIKAN_FETCH_TIMEOUT": "0.5"})
        assert_one_line_error(timed)
        assert "timed out" in timed.err
        missing = waikan("add", f"{srv.base}/gone", env=PRIVATE_OK)
        assert_one_line_error(missing)
        assert "HTTP 404" in missing.err
    assert waikan("list").out == ""
