from __future__ import annotations

import sqlite3
import zlib
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from tests.conftest import SQLITE_ONLY

from waikan.errors import StoreError
from waikan.models import Extracted, Status, Summary
from waikan.store import open_store
from waikan.store.migrations import MIGRATIONS


def extracted(**kw: object) -> Extracted:
    base: dict[str, object] = dict(
        title="T", source="S", published="2024-01-01", caption=None, paragraphs=("a b c",)
    )
    base.update(kw)
    return Extracted(**base)  # type: ignore[arg-type]


def test_migrations_recorded_once(store_url: str) -> None:
    open_store(store_url).close()
    store = open_store(store_url)  # re-opening applies nothing twice
    with store.engine.connect() as c:
        names = sorted(r[0] for r in c.execute(text("select name from migrations")))
        tables = set(inspect(c).get_table_names())
    assert names == sorted(name for name, _ in MIGRATIONS)
    assert {"sources", "articles", "raw_responses", "summaries", "posts"} <= tables
    store.close()


@SQLITE_ONLY
def test_sqlite_store_uses_wal(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    open_store(f"sqlite:///{db}").close()
    con = sqlite3.connect(db)
    assert con.execute("pragma journal_mode").fetchone()[0] == "wal"
    con.close()


def test_raw_archived_compressed_and_deduplicated(store_url: str) -> None:
    store = open_store(store_url)
    page = b"<html>" + b"x" * 10_000 + b"</html>"
    a = store.add_article("https://e.com/a", extracted(), raw=page)
    assert store.raw_content(a.raw_id or 0) == page
    with store.engine.connect() as c:
        blob = bytes(c.execute(text("select content from raw_responses")).scalar_one())
    assert len(blob) < len(page) / 10 and zlib.decompress(blob) == page
    assert store.save_raw("https://e.com/b", page) == a.raw_id
    store.close()


def test_summary_updates_post_revision_and_status(store_url: str) -> None:
    store = open_store(store_url)
    a = store.add_article("https://e.com/a", extracted(), raw=b"<p>x</p>")
    assert a.status == Status.EXTRACTED.value
    s1 = Summary(("一", "二"), backend="x", model="m", prompt_version="v1", tokens_in=5)
    store.add_summary(a.id, s1)
    store.add_summary(a.id, Summary(("三",), backend="x", model="m", prompt_version="v2"))
    cur = store.current_summary(a.id)
    assert cur is not None and cur.paragraphs == ("三",) and cur.prompt_version == "v2"
    assert [s.paragraphs for s in store.summaries_of(a.id)] == [("一", "二"), ("三",)]
    assert store.article(a.id).status == Status.SUMMARIZED.value  # type: ignore[union-attr]
    store.close()


def test_rejected_article_keeps_reason(store_url: str) -> None:
    store = open_store(store_url)
    a = store.add_article("https://e.com/i", extracted(reject_reason="not_article"), raw=b"<a>")
    assert (a.status, a.reason) == ("rejected", "not_article")
    assert store.articles(status="rejected") == [a]
    store.close()


def test_duplicate_url_insert_fails_whole_transaction(store_url: str) -> None:
    store = open_store(store_url)
    store.add_article("https://e.com/a", extracted(), raw=b"one")
    with pytest.raises(Exception):  # noqa: B017 - the integrity error of the driver
        store.add_article("https://e.com/a", extracted(), raw=b"two")
    assert len(store.articles()) == 1
    assert store.raw_by_sha256(__import__("hashlib").sha256(b"two").hexdigest()) is None
    store.close()


@pytest.mark.parametrize(
    "url", ["nosuchdb://x", pytest.param("sqlite:////nonexistent-dir/x/y.db", marks=SQLITE_ONLY)]
)
def test_bad_store_url_is_store_error(url: str) -> None:
    with pytest.raises(StoreError) as info:
        open_store(url)
    assert "\n" not in str(info.value)


def test_store_url_password_never_printed() -> None:
    with pytest.raises(StoreError) as info:
        open_store("postgresql+nosuchdriver://user:hunter2@127.0.0.1:1/db")
    assert "hunter2" not in str(info.value)
