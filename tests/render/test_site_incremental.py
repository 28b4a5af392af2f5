"""Incremental site builds give exactly the site a full build gives, after any change.

Each step changes the store through its own API (or behind its back), builds the
site incrementally, and compares every file with a ``--full`` build into a fresh
folder. Real SQLite workspaces, real files.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert
from tests.render.site_support import add_post, extracted, summary, workspace
from tests.servers.pages import PageServer

from waikan.models import Status
from waikan.render import site as site_module
from waikan.render.site import IMAGE_TRIES, JOURNAL, MANIFEST, BuildReport, build_site
from waikan.store import Store, schema
from waikan.workspace import Workspace


def _files(site: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(site)): p.read_bytes()
        for p in site.rglob("*")
        if p.is_file() and p.name not in (MANIFEST, JOURNAL)
    }


def _same_as_full(ws: Workspace, site: Path, full: Path) -> None:
    build_site(ws, full, full=True)
    got, want = _files(site), _files(full)
    assert sorted(got) == sorted(want)
    assert [name for name in want if got[name] != want[name]] == []


@pytest.fixture
def stamps_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts reads of the whole post list (the slow path an incremental build avoids)."""
    calls: list[int] = []
    original = Store.post_stamps

    def counted(self: Store, statuses: object) -> object:
        calls.append(1)
        return original(self, statuses)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "post_stamps", counted)
    return calls


def test_every_change_gives_the_full_build_s_site(
    home: Path, tmp_path: Path, stamps_calls: list[int]
) -> None:
    ws = workspace(home, **{"site.per_page": "3"})
    sources = ("BBC News", "NPR", "The Guardian")
    ids = [add_post(ws, n, source=sources[n % 3]) for n in range(1, 14)]
    site = home / "site"
    build_site(ws)
    assert stamps_calls == [1]  # the first build reads the whole list
    stamps_calls.clear()

    full_reads: list[int] = []  # reads of the whole list by incremental builds

    def step(change: Callable[[], object]) -> BuildReport:
        change()
        stamps_calls.clear()
        report = build_site(ws)
        full_reads.extend(stamps_calls)
        _same_as_full(ws, site, tmp_path / f"full-{len(list(tmp_path.iterdir()))}")
        return report

    # A new post from a new source.
    new = step(lambda: ids.append(add_post(ws, 14, source="Reuters")))
    assert f"posts/{ids[-1]}.html" in new.written and "sources/reuters/index.html" in new.written

    # A post in the middle re-summarized: its page, its archive page, source, day, search.
    middle = ids[4]
    resummarized = step(
        lambda: ws.store.add_summary(middle, summary(5, paragraphs=("全新的摘要文字。",) * 2))
    )
    assert f"posts/{middle}.html" in resummarized.written
    assert "page/2.html" in resummarized.written  # positions 3..5, oldest first
    assert "全新的摘要文字" in (site / "page" / "2.html").read_text(encoding="utf-8")

    # A post in the middle rejected: every later archive page moves up.
    removed = step(lambda: ws.store.set_status(ids[2], Status.REJECTED, "editor"))
    assert f"posts/{ids[2]}.html" in removed.removed

    # Approval changes no page; only the feeds carry the item's new update time.
    approved = step(lambda: ws.store.set_status(ids[6], Status.APPROVED))
    assert set(approved.written) <= {"atom.xml", "rss.xml", "feed.json"}
    assert approved.removed == []

    # Re-extracted under another source and day, then summarized again.
    def move() -> None:
        ex = extracted(8, source="Reuters", published="2024-04-09T10:00:00Z")
        ws.store.complete_article(ids[7], ex, raw=b"again")
        ws.store.add_summary(ids[7], summary(8))

    moved = step(move)
    assert "days/2024-04-09.html" in moved.written

    # Every post of one source leaves: its folder goes.
    def drop_npr() -> None:
        for article_id, n in zip(ids, range(1, 15), strict=True):
            if n % 3 == 1 and n != 14:
                ws.store.set_status(article_id, Status.REJECTED)

    dropped = step(drop_npr)
    assert "sources/npr/index.html" in dropped.removed
    assert not (site / "sources" / "npr").exists()

    # None of these builds read the whole list: only the rows changed since the last.
    assert full_reads == []

    # A post written behind the store's back with an old time: the count disagrees,
    # so the build reads the whole list and still finds it.
    def sneak_in() -> None:
        then = datetime(2020, 1, 1, tzinfo=UTC)
        with ws.store.engine.begin() as c:
            article_id = c.execute(
                insert(schema.articles).values(
                    url="https://news.example.com/sneaked",
                    source_name="NPR",
                    status="summarized",
                    title="Sneaked in",
                    published="2024-03-20T08:00:00Z",
                    authors=[],
                    paragraphs=["A paragraph."],
                    language="en",
                    word_count=2,
                    created_at=then,
                    updated_at=then,
                )
            ).inserted_primary_key[0]
            summary_id = c.execute(
                insert(schema.summaries).values(
                    article_id=article_id,
                    backend="test",
                    paragraphs=["偷偷加入的摘要。"],
                    is_excerpt=False,
                    created_at=then,
                )
            ).inserted_primary_key[0]
            c.execute(
                insert(schema.posts).values(
                    article_id=article_id,
                    summary_id=summary_id,
                    revision=1,
                    created_at=then,
                    updated_at=then,
                )
            )

    sneaked = step(sneak_in)
    assert full_reads == [1]  # the fallback read the list
    assert "sources/npr/index.html" in sneaked.written
    ws.close()


def test_nothing_changed_renders_nothing(home: Path, stamps_calls: list[int]) -> None:
    ws = workspace(home)
    for n in range(1, 6):
        add_post(ws, n)
    first = build_site(ws)
    again = build_site(ws)
    ws.close()
    assert first.rendered_pages > 5
    assert again.rendered_pages == 0 and again.written == [] and again.removed == []
    assert again.unchanged == first.unchanged + len(first.written)
    assert stamps_calls == [1]


def test_damaged_state_file_means_a_full_comparison(home: Path) -> None:
    ws = workspace(home)
    for n in range(1, 4):
        add_post(ws, n)
    build_site(ws)
    site = home / "site"
    (site / MANIFEST).write_text('{"format": "2", "posts": [[1, "x"]]}', encoding="utf-8")
    add_post(ws, 4)
    report = build_site(ws)
    ws.close()
    assert report.posts == 4
    assert "posts/4.html" in (site / "index.html").read_text(encoding="utf-8")


PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)


def test_a_failed_lead_image_is_tried_again_by_the_next_builds(home: Path) -> None:
    def png(h) -> None:  # type: ignore[no-untyped-def]
        h.send_response(200)
        h.send_header("Content-Type", "image/png")
        h.send_header("Content-Length", str(len(PNG)))
        h.end_headers()
        h.wfile.write(PNG)

    with PageServer({}) as server:
        settings = {"site.images": "true", "fetch.allow_private_networks": "true"}
        ws = workspace(home, **settings)
        add_post(ws, 1, image_url=f"{server.base}/late.png")
        add_post(ws, 2, image_url=f"{server.base}/never.png")
        first = build_site(ws)  # both answer 404
        assert len(first.warnings) == 2
        server.routes["/late.png"] = png
        second = build_site(ws)  # nothing changed in the store, yet the pages try again
        assert "posts/1.html" in second.written and "posts/2.html" not in second.written
        assert len(list((home / "site" / "media").glob("*.png"))) == 1
        for _ in range(3):
            build_site(ws)
        ws.close()
        hits = list(server.hits)
    page = (home / "site" / "posts" / "1.html").read_text(encoding="utf-8")
    assert "../media/" in page
    assert hits.count("/late.png") == 2  # failed once, then fetched, then served from the site
    assert hits.count("/never.png") == IMAGE_TRIES  # then it stops asking (until --full)


def test_the_state_journal_survives_a_torn_line_and_compacts(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(site_module, "JOURNAL_LINES", 3)
    ws = workspace(home, **{"site.per_page": "2"})
    for n in range(1, 6):
        add_post(ws, n)
    site = home / "site"
    build_site(ws)
    assert not (site / JOURNAL).exists()  # a first build writes a base file
    base = (site / MANIFEST).read_bytes()
    for n in (6, 7):
        add_post(ws, n)
        build_site(ws)
    assert (site / MANIFEST).read_bytes() == base  # small builds only append
    assert len((site / JOURNAL).read_text(encoding="utf-8").splitlines()) == 2

    # A build stopped while appending its line: that line is ignored, the next build
    # compares against the state before it and starts a new base.
    with (site / JOURNAL).open("a", encoding="utf-8") as fh:
        fh.write('{"gen": "x", "set": [[')
    ws.store.set_status(add_post(ws, 8) - 3, Status.REJECTED)
    build_site(ws)
    assert not (site / JOURNAL).exists() and (site / MANIFEST).read_bytes() != base
    _same_as_full(ws, site, tmp_path / "full-a")

    for n in range(9, 14):  # past JOURNAL_LINES lines: a new base again
        add_post(ws, n)
        build_site(ws)
    assert len((site / JOURNAL).read_text(encoding="utf-8").splitlines()) < 3
    _same_as_full(ws, site, tmp_path / "full-b")
    ws.close()


def test_store_lists_only_posts_changed_since(home: Path) -> None:
    ws = workspace(home)
    ids = [add_post(ws, n) for n in range(1, 5)]
    with ws.store.engine.begin() as c:  # the first posts were written long ago
        for table in (schema.articles, schema.posts):
            key = table.c.id if table is schema.articles else table.c.article_id
            c.execute(
                table.update()
                .where(key.in_(ids[:3]))
                .values(updated_at=datetime(2020, 1, 1, tzinfo=UTC))
            )
    since = datetime(2021, 1, 1, tzinfo=UTC)
    assert [s.article_id for s in ws.store.post_changes(since)] == [ids[3]]
    ws.store.set_status(ids[0], Status.REJECTED)
    ws.store.add_summary(ids[1], summary(2, title_zh="新标题"))
    changed = {s.article_id: s for s in ws.store.post_changes(since)}
    assert set(changed) == {ids[0], ids[1], ids[3]}
    assert changed[ids[0]].status == Status.REJECTED.value and changed[ids[1]].revision == 2
    statuses = (Status.SUMMARIZED.value, Status.APPROVED.value, Status.PUBLISHED.value)
    assert ws.store.post_count(statuses) == 3
    ws.close()
