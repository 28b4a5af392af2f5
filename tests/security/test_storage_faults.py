"""Real storage faults mid-run (make test-slow, as root): a full tmpfs, a read-only
remount, a read-only PostgreSQL, a full or read-only site disk; and, in make test, a
store of each kind that refuses writes. Each run must stop with one clear line, leave
a consistent store (no article without its raw page, no orphan raw page), and a
second run after the fault is fixed must finish with every article once.

Nothing is mocked and nothing is skipped: a mount that fails fails the test.
The read-only case uses ext4's own error remount (``errors=remount-ro``): a plain
``mount -o remount,ro`` is refused (EBUSY) while a process holds the database open
for writing, so that is the only way a store goes read-only under a running waikan.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from tests.conftest import _CLEAN, DATA, ROOT, SQLITE_ONLY, Result, assert_one_line_error
from tests.servers.feeds import Served, ago, corpus_pages, raw, rss
from tests.servers.openai_server import FakeLLM
from tests.servers.pages import PageServer
from tests.services import PgServer, throwaway_pg

PAGES = 120  # ~80 kB each once compressed: a 2 MB disk holds about 20
SETTLED = ("discovered", "failed")  # the statuses that have no raw page


def env(llm: FakeLLM, **extra: str) -> dict[str, str]:
    return _CLEAN | {
        "WAIKAN_FETCH_ALLOW_PRIVATE_NETWORKS": "true",
        "WAIKAN_FETCH_HOST_DELAY": "0",
        "WAIKAN_FETCH_PER_HOST": "4",
        "WAIKAN_LLM_BASE_URL": llm.url,
        "WAIKAN_LLM_MODEL": "m",
        "WAIKAN_LLM_API_KEY": "sk-faults",
        "WAIKAN_SITE_IMAGES": "false",  # lead images live on the real web: never fetched here
        **extra,
    }


def waikan(home: Path, e: dict[str, str], *args: str) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "waikan", "--home", str(home), *args],
        env=e,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def sh(*cmd: str) -> None:
    """A mount command; any failure fails the test (never a skip)."""
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)}: {done.stderr.strip()}"


def unmount(mnt: Path) -> None:
    """Unmount, lazily if something still holds it (then fail: a test leaked a file)."""
    done = subprocess.run(["umount", str(mnt)], capture_output=True, text=True)
    if done.returncode != 0:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
        raise AssertionError(f"umount {mnt}: {done.stderr.strip()}")


@contextmanager
def site() -> Iterator[tuple[PageServer, FakeLLM, str]]:
    """Loopback news site (a feed of PAGES corpus pages) and model; yields the feed URL."""
    pages = corpus_pages(PAGES)
    routes: dict[str, Any] = {
        f"/n/{i}": raw(p, "text/html; charset=utf-8") for i, p in enumerate(pages)
    }
    with PageServer(routes) as srv, FakeLLM(api_key="sk-faults", model="m", answer="摘要。") as llm:
        items = [(f"{srv.base}/n/{i}", f"Story {i}", ago(1)) for i in range(PAGES)]
        srv.routes["/feed.xml"] = Served(rss(items), "application/rss+xml")
        yield srv, llm, f"{srv.base}/feed.xml"


def add_source(home: Path, e: dict[str, str], feed: str) -> None:
    added = waikan(home, e, "sources", "add", feed, "--backfill", str(PAGES))
    assert added.code == 0, added.err


def start_run(home: Path, e: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "waikan", "--home", str(home), "run"],
        env=e,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> Result:
    out, err = proc.communicate(timeout=600)
    return Result(proc.returncode, out, err)


def wait_for(count: Callable[[], int], n: int, proc: subprocess.Popen[str]) -> int:
    """Wait until ``count()`` reaches ``n`` rows while the run is still going."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        got = count()
        if got >= n:
            return got
        assert proc.poll() is None, f"run ended before {n} rows: {proc.communicate()}"
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} rows in 300 s")


Rows = list[tuple[str, str, int | None, bool]]  # url, status, raw_id, raw row exists


def check_consistent(rows: Rows, orphans: int, *, complete: bool) -> None:
    """Each article's status agrees with its raw page; no raw page without an article."""
    urls = [u for u, _s, _r, _e in rows]
    assert len(urls) == len(set(urls)) == PAGES, "an article missing or stored twice"
    for url, status, raw_id, exists in rows:
        if status in SETTLED:
            assert raw_id is None, f"{url}: {status} with a raw page"
        else:
            assert raw_id is not None and exists, f"{url}: {status} without its raw page"
    assert orphans == 0, f"{orphans} raw pages stored without their article"
    pending = sum(s == "discovered" for _u, s, _r, _e in rows)
    if complete:
        assert pending == 0, f"{pending} articles left undone after the resumed run"
    else:
        assert 0 < pending < PAGES, f"the fault was not mid-run ({pending} pending)"


ROWS_SQL = (
    "select a.url, a.status, a.raw_id, r.id is not null from articles a "
    "left join raw_responses r on r.id = a.raw_id"
)
ORPHANS_SQL = (
    "select count(*) from raw_responses r where not exists "
    "(select 1 from articles a where a.raw_id = r.id)"
)
STORED_SQL = "select count(*) from articles where raw_id is not null"


def sqlite_state(db: Path) -> tuple[Rows, int]:
    with closing(sqlite3.connect(db)) as c:  # closed: the disk is unmounted next
        assert c.execute("pragma integrity_check").fetchone() == ("ok",)
        rows = [(u, s, r, bool(e)) for u, s, r, e in c.execute(ROWS_SQL)]
        (orphans,) = c.execute(ORPHANS_SQL).fetchone()
    return rows, int(orphans)


def sqlite_stored(db: Path) -> Callable[[], int]:
    def count() -> int:
        try:
            with closing(sqlite3.connect(db, timeout=30)) as c:
                return int(c.execute(STORED_SQL).fetchone()[0])
        except sqlite3.OperationalError:  # the run is migrating the schema still
            return 0

    return count


def assert_fault_line(result: Result, *words: str) -> None:
    assert_one_line_error(result)
    line = result.err.strip()
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert all(w in line for w in words), line
    assert "the run stopped and what was stored is kept" in line, line
    print(f"fault: {line}")


@pytest.mark.slow
@SQLITE_ONLY  # the SQLite file on a full disk; PostgreSQL's fault is its own test below
def test_disk_full_mid_run_then_resume(tmp_path: Path) -> None:
    mnt = tmp_path / "disk"
    mnt.mkdir()
    sh("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt))
    try:
        home = mnt / "ws"
        db = home / "waikan.db"
        with site() as (_srv, llm, feed):
            e = env(llm)
            add_source(home, e, feed)
            full = waikan(home, e, "fetch")
            assert_fault_line(full, "disk full writing", str(db), "database or disk is full")
            rows, orphans = sqlite_state(db)
            check_consistent(rows, orphans, complete=False)
            stored = sum(r is not None for _u, _s, r, _e in rows)
            assert not list(home.rglob(".tmp-*")), "a temp file was left behind"

            sh("mount", "-o", "remount,size=64m", str(mnt))
            again = waikan(home, e, "run")
            assert again.code in (0, 3), again.err
            rows, orphans = sqlite_state(db)
            check_consistent(rows, orphans, complete=True)
            print(f"disk full: {stored}/{PAGES} stored before the fault, all {PAGES} after")
    finally:
        unmount(mnt)


@pytest.mark.slow
@SQLITE_ONLY  # the SQLite file on a disk gone read-only; PostgreSQL's is the next test
def test_read_only_remount_mid_run_then_resume(tmp_path: Path) -> None:
    image, mnt = tmp_path / "disk.img", tmp_path / "disk"
    mnt.mkdir()
    with image.open("wb") as fh:
        fh.truncate(64 << 20)
    sh("mkfs.ext4", "-q", "-F", str(image))
    sh("mount", "-o", "loop,errors=remount-ro", str(image), str(mnt))
    mounted = True
    try:
        home = mnt / "ws"
        db = home / "waikan.db"
        dev = subprocess.run(
            ["findmnt", "-no", "SOURCE", str(mnt)], capture_output=True, text=True, check=True
        ).stdout.strip()
        trigger = Path("/sys/fs/ext4") / Path(dev).name / "trigger_fs_error"
        with site() as (_srv, llm, feed):
            e = env(llm)
            add_source(home, e, feed)
            proc = start_run(home, e)
            try:
                at = wait_for(sqlite_stored(db), 30, proc)
                trigger.write_text("waikan storage fault test\n")  # the kernel turns it ro
                opts = subprocess.run(
                    ["findmnt", "-no", "OPTIONS", str(mnt)], capture_output=True, text=True
                ).stdout
                assert opts.startswith("ro") or "emergency_ro" in opts, opts
                result = finish(proc)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            assert_fault_line(result, "read-only file system writing", str(db))
            assert result.out == "", result.out  # no stage line claims success

            # Fixed as an operator would: unmount, check the file system, mount it again.
            unmount(mnt)
            mounted = False
            fsck = subprocess.run(["e2fsck", "-fy", str(image)], capture_output=True, text=True)
            assert fsck.returncode in (0, 1), fsck.stdout + fsck.stderr
            sh("mount", "-o", "loop,errors=remount-ro", str(image), str(mnt))
            mounted = True
            rows, orphans = sqlite_state(db)
            check_consistent(rows, orphans, complete=False)
            kept = sum(r is not None for _u, _s, r, _e in rows)

            again = waikan(home, e, "run")
            assert again.code in (0, 3), again.err
            rows, orphans = sqlite_state(db)
            check_consistent(rows, orphans, complete=True)
            print(f"read-only: fault at {at} stored, {kept} kept after fsck, all {PAGES} after")
    finally:
        if mounted:
            unmount(mnt)


@pytest.fixture(scope="module")
def own_pg() -> Iterator[PgServer]:
    """A server of this module's own: ALTER SYSTEM must not reach other tests' databases."""
    with throwaway_pg("waikan-pg-ro-") as server:
        yield server


def pg_admin(server: PgServer, sql: str) -> None:
    dsn = f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as con:
        con.execute("set default_transaction_read_only = off")
        con.execute(sql)  # type: ignore[arg-type]
        con.execute("select pg_reload_conf()")


def pg_dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def pg_state(url: str) -> tuple[Rows, int]:
    with psycopg.connect(pg_dsn(url)) as con:
        rows = [(u, s, r, bool(e)) for u, s, r, e in con.execute(ROWS_SQL).fetchall()]
        row = con.execute(ORPHANS_SQL).fetchone()
    assert row is not None
    return rows, int(row[0])


def pg_count(url: str, sql: str = STORED_SQL) -> Callable[[], int]:
    def count() -> int:
        try:
            with psycopg.connect(pg_dsn(url)) as con:
                row = con.execute(sql).fetchone()  # type: ignore[arg-type]
        except psycopg.errors.UndefinedTable:  # the run is migrating the schema still
            return 0
        return int(row[0]) if row else 0

    return count


def pg_read_only_during(
    server: PgServer, url: str, proc: subprocess.Popen[str], sql: str
) -> tuple[int, Result]:
    """Once ``sql`` counts 30 rows, set the server read-only; the run's result."""
    try:
        at = wait_for(pg_count(url, sql), 30, proc)
        pg_admin(server, "alter system set default_transaction_read_only = on")
        return at, finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        pg_admin(server, "alter system reset default_transaction_read_only")


POSTS_SQL = "select count(*) from posts"


@pytest.mark.slow
def test_postgresql_read_only_mid_run_then_resume(tmp_path: Path, own_pg: PgServer) -> None:
    url = own_pg.new_database()
    home = tmp_path / "ws"
    words = ("read-only database writing", url.split("@")[1], "read-only transaction")
    with site() as (_srv, llm, feed):
        e = env(llm, WAIKAN_STORE_URL=url)
        add_source(home, e, feed)
        # 1. While fetching (pages and raw responses).
        at, result = pg_read_only_during(own_pg, url, start_run(home, e), STORED_SQL)
        assert_fault_line(result, *words)
        rows, orphans = pg_state(url)
        check_consistent(rows, orphans, complete=False)
        kept = sum(r is not None for _u, _s, r, _e in rows)
        fetched = waikan(home, e, "fetch")  # resume the fetch only: nothing summarized yet
        assert fetched.code in (0, 3), fetched.err
        rows, orphans = pg_state(url)
        check_consistent(rows, orphans, complete=True)
        assert pg_count(url, POSTS_SQL)() == 0

        # 2. While summarizing: the fault is one line, not one per article left.
        llm.delay = 0.1
        at_post, result = pg_read_only_during(own_pg, url, start_run(home, e), POSTS_SQL)
        assert_fault_line(result, *words)
        llm.delay = 0
        posts = pg_count(url, POSTS_SQL)()
        assert at_post <= posts < PAGES
        again = waikan(home, e, "run")
        assert again.code in (0, 3), again.err
        rows, orphans = pg_state(url)
        check_consistent(rows, orphans, complete=True)
        with psycopg.connect(pg_dsn(url)) as con:
            left = con.execute("select count(*) from articles where status = 'extracted'")
            assert left.fetchone() == (0,), "articles left unsummarized"
            dup = con.execute("select count(*) - count(distinct article_id) from posts")
            assert dup.fetchone() == (0,), "an article posted twice"
        print(
            f"PostgreSQL read-only: fetch fault at {at} stored ({kept} kept), "
            f"summarize fault at {at_post} posts ({posts} kept), all {PAGES} after"
        )


SITE_PAGES = 12


def tree(root: Path) -> dict[str, bytes]:
    """Every file of a built site but the build's own records (they hold timestamps)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".waikan-build")
    }


@pytest.mark.slow
def test_site_build_on_full_then_read_only_disk(tmp_path: Path) -> None:
    """Site files are renamed into place: a fault leaves whole files only, a rebuild fixes."""
    home, pages, mnt = tmp_path / "ws", tmp_path / "pages", tmp_path / "disk"
    pages.mkdir()
    for i, page in enumerate(corpus_pages(SITE_PAGES + 1)):
        (pages / f"p{i:02}.html").write_bytes(page)
    e = _CLEAN | {"WAIKAN_SITE_IMAGES": "false"}  # extractive summaries: no model needed
    extra = pages / f"p{SITE_PAGES:02}.html"
    held = extra.rename(tmp_path / extra.name)  # added later, to make the site change
    for args in (("add", str(pages)), ("summarize",)):
        got = waikan(home, e, *args)
        assert got.code in (0, 3), got.err
    ref = tmp_path / "ref"
    assert waikan(home, e, "build", "--out", str(ref)).code == 0
    mnt.mkdir()
    sh("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt))
    try:
        out = mnt / "site"
        full = waikan(home, e, "build", "--out", str(out))
        assert_one_line_error(full)
        assert f"disk full writing {out}/" in full.err, full.err
        written = tree(out)
        assert written and not any(".tmp-" in name for name in written), sorted(written)
        want = tree(ref)
        assert all(want[name] == data for name, data in written.items()), "a half-written file"
        sh("mount", "-o", "remount,size=64m", str(mnt))
        assert waikan(home, e, "build", "--out", str(out)).code == 0
        assert tree(out) == want

        # A read-only remount (nothing holds the disk between builds), then a changed site.
        sh("mount", "-o", "remount,ro", str(mnt))
        for args in (("add", str(held)), ("summarize",)):
            got = waikan(home, e, *args)
            assert got.code in (0, 3), got.err
        refused = waikan(home, e, "build", "--out", str(out))
        assert_one_line_error(refused)
        # The build checks up front that it can write there ("cannot write the site into").
        assert str(out) in refused.err, refused.err
        assert "read-only file system" in refused.err.lower(), refused.err
        assert tree(out) == want  # the old site stands as it was
        sh("mount", "-o", "remount,rw", str(mnt))
        assert waikan(home, e, "build", "--out", str(out)).code == 0
        assert waikan(home, e, "build", "--out", str(tmp_path / "ref2")).code == 0
        assert tree(out) == tree(tmp_path / "ref2") != want
        print(f"site: {len(written)} of {len(want)} files whole at disk full, rebuilt after")
    finally:
        unmount(mnt)


# -- make test: a store that refuses writes from the start (no root needed) ----------------

PAGE_A = DATA / "reuters-blinken-wang.html"
PAGE_B = DATA / "teaser-paywall.html"


def listed(waikan: Callable[..., Result], e: dict[str, str] | None = None) -> list[str]:
    got = waikan("list", "--json", env=e)
    assert got.code == 0, got.err
    return got.out.splitlines()


@SQLITE_ONLY  # a read-only SQLite URI and file; the PostgreSQL case is the next test
def test_read_only_sqlite_store_is_one_line_then_resumes(  # type: ignore[no-untyped-def]
    waikan, home: Path
) -> None:
    assert waikan("add", str(PAGE_A)).code == 0
    ro = {"WAIKAN_STORE_URL": f"sqlite:///file:{home / 'waikan.db'}?mode=ro&uri=true"}
    refused = waikan("add", str(PAGE_B), env=ro)
    assert_one_line_error(refused)
    assert "read-only database writing" in refused.err, refused.err
    assert "attempt to write a readonly database" in refused.err, refused.err
    with closing(sqlite3.connect(home / "waikan.db")) as c:
        assert c.execute("select count(*) from articles").fetchone() == (1,)
    again = waikan("add", str(PAGE_B))
    assert again.code in (0, 3), again.err
    assert len(listed(waikan)) == 2


def test_read_only_postgresql_store_is_one_line_then_resumes(  # type: ignore[no-untyped-def]
    waikan, pg_server: PgServer, pg_url: str, tmp_path: Path
) -> None:
    password = "pg-pass-5e2a"  # trust auth ignores it; the error must not print it
    url = pg_url.replace("://postgres@", f"://postgres:{password}@")
    assert password in url
    e = {"WAIKAN_STORE_URL": url, "WAIKAN_SITE_IMAGES": "false"}
    name = pg_url.rsplit("/", 1)[1]
    second = tmp_path / "second.html"
    second.write_bytes(corpus_pages(1)[0])
    for page in (PAGE_A, second):  # two articles: a fault must not be reported per article
        assert waikan("add", str(page), env=e).code == 0
    # Per database: new sessions of this test's database only are read-only.
    pg_admin(pg_server, f'alter database "{name}" set default_transaction_read_only = on')
    try:
        refused = [waikan("add", str(PAGE_B), env=e), waikan("summarize", env=e)]
    finally:
        pg_admin(pg_server, f'alter database "{name}" reset default_transaction_read_only')
    for result in refused:
        assert_one_line_error(result)
        assert len(result.err.splitlines()) == 1, result.err
        masked = url.replace(password, "***")
        assert f"read-only database writing {masked}" in result.err, result.err
        assert password not in result.err, result.err
        assert "read-only transaction" in result.err, result.err
    with psycopg.connect(pg_dsn(pg_url)) as con:
        assert con.execute("select count(*) from articles").fetchone() == (2,)
        assert con.execute("select count(*) from summaries").fetchone() == (0,)
    again = [waikan("add", str(PAGE_B), env=e), waikan("summarize", env=e)]
    assert all(r.code in (0, 3) for r in again), [r.err for r in again]
    assert len(listed(waikan, e)) == 3
    with psycopg.connect(pg_dsn(pg_url)) as con:
        assert con.execute("select count(*) from posts").fetchone() == (2,)
