"""A hand-edited source row the code cannot use costs that source, never the run (issue S4).

Real CLI (``waikan fetch``, ``waikan run`` as a process, ``waikan sources list/remove``)
on a real SQLite file and a real PostgreSQL database, feeds and pages on loopback.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event
from tests.conftest import PG_MODE, assert_one_line_error, run_proc
from tests.servers.feeds import Served, ago, corpus_pages, routes_for, rss
from tests.servers.pages import PageServer

from waikan.sources.listing import Item
from waikan.sources.repo import SourceRecord, SourceRepo, read_settings, usable
from waikan.store import open_store

ENV = {
    "WAIKAN_FETCH_ALLOW_PRIVATE_NETWORKS": "true",
    "WAIKAN_FETCH_HOST_DELAY": "0",
    "WAIKAN_SOURCES_EVERY": "0.01",  # due again after a second: `waikan run` polls them
}
# pg mode maps the SQLite URL to PostgreSQL, whose json type refuses such a row.
NOT_JSON = pytest.mark.skipif(
    PG_MODE,
    reason="PostgreSQL's json type refuses invalid JSON and NaN/Infinity: "
    "such a row exists only in a SQLite file",
)
HAND_EDITED = "UPDATE sources SET settings = '\"hand-edited\"' WHERE id = 2"


def _sql(url: str, sql: str) -> list[tuple[object, ...]]:
    store = open_store(url)
    try:
        with store.engine.begin() as c:
            result = c.exec_driver_sql(sql)
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        store.close()


def _statuses(waikan, env: dict[str, str]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    listed = waikan("list", "--json", env=env)
    assert listed.code == 0, listed.err
    rows = [json.loads(line) for line in listed.out.splitlines()]
    return {r["url"].rsplit("/", 1)[1]: r["status"] for r in rows}


def _sources(waikan, env: dict[str, str]) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    listed = waikan("sources", "list", "--json", env=env)
    assert listed.code == 0, listed.err
    return [json.loads(line) for line in listed.out.splitlines()]


def _errors(err: str) -> list[str]:
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if line.strip()]


def _two_sources(waikan, srv: PageServer, env: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """Source 1 lists g0 and g1, source 2 lists b0; both taken as discovered articles."""
    pages = corpus_pages(4, offset=40)
    srv.routes.update(routes_for({"/g0": pages[0], "/g1": pages[1], "/g2": pages[2]}))
    srv.routes["/b0"] = routes_for({"/b0": pages[3]})["/b0"]
    good = [(f"{srv.base}/g{i}", f"Good {i}", ago(i + 1)) for i in range(2)]
    srv.routes["/good.xml"] = Served(rss(good), "application/rss+xml")
    srv.routes["/bad.xml"] = Served(rss([(f"{srv.base}/b0", "Bad 0", ago(1))]), "text/xml")
    for feed in ("good", "bad"):
        added = waikan("sources", "add", f"{srv.base}/{feed}.xml", "--backfill", "5", env=env)
        assert added.code == 0, added.err


def test_a_broken_source_is_one_line_and_everything_else_runs(  # type: ignore[no-untyped-def]
    waikan, home, store_url: str
) -> None:
    env = ENV | {"WAIKAN_STORE_URL": store_url}
    with PageServer({}) as srv:
        _two_sources(waikan, srv, env)
        _sql(store_url, HAND_EDITED)
        broken = 'source 2: settings is not a JSON object: "hand-edited"; skipped'

        # sources list shows it, marked, so the operator can see and remove it
        listed = waikan("sources", "list", env=env)
        assert listed.code == 0, listed.err
        assert [ln.split("\t")[0] for ln in listed.out.splitlines()] == ["1", "2"]
        assert listed.out.splitlines()[1].endswith(
            'broken: settings is not a JSON object: "hand-edited"'
        )
        as_json = _sources(waikan, env)
        assert [s["broken"] for s in as_json] == [
            None,
            'settings is not a JSON object: "hand-edited"',
        ]

        # waikan fetch: one line for source 2, exit 1 (a source failed); source 1's pages stored
        fetched = waikan("fetch", env=env)
        assert fetched.code == 1, fetched.err
        lines = _errors(fetched.err)
        assert len(lines) == 1 and lines[0].startswith(f"waikan: error: {broken}"), lines
        assert "waikan sources remove 2" in lines[0]
        got = _statuses(waikan, env)
        assert got == {"g0": "extracted", "g1": "extracted", "b0": "discovered"}, got

        # waikan run (the cron path, a real process): the same one line, every stage runs
        time.sleep(1.5)  # both sources due again
        srv.routes["/good.xml"].set(rss([(f"{srv.base}/g2", "Good 2", ago(0.1))]), '"v2"')
        ran = run_proc(["--home", str(home), "run"], env)
        assert ran.code == 1, ran.err
        lines = _errors(ran.err)
        assert len(lines) == 1 and lines[0].startswith(f"waikan: error: fetch: {broken}"), lines
        stages = [ln.split(":")[0] for ln in ran.out.splitlines()]
        assert stages == ["fetch", "dedupe", "summarize", "publish"], ran.out
        got = _statuses(waikan, env)
        assert got["g2"] not in ("discovered", "failed") and got["b0"] == "discovered", got
        assert srv.hits.count("/bad.xml") == 1  # the first poll (add); never since

        # nothing rewrote the operator's row
        assert _sql(store_url, "SELECT CAST(settings AS TEXT) FROM sources WHERE id = 2") == [
            ('"hand-edited"',)
        ]

        # removing it works; its waiting article is fetched now, without a source
        removed = waikan("sources", "remove", "2", env=env)
        assert removed.code == 0 and removed.out.startswith("removed source 2: "), removed
        assert [s["id"] for s in _sources(waikan, env)] == [1]
        again = waikan("fetch", env=env)
        assert again.code == 0 and not again.err, again.err
        assert _statuses(waikan, env)["b0"] == "extracted"


# Valid JSON that overflows to a float infinity: PostgreSQL's json keeps it as text too.
OVERFLOWING = [
    ("settings", "'{\"every\": 1e400}'", "settings.every is not a finite number: Infinity"),
    ("settings", "'{\"max_age\": -1e400}'", "settings.max_age is not a finite number: -Infinity"),
]
CORRUPTIONS = [
    ("settings", "'[1, 2]'", "settings is not a JSON object: [1, 2]"),
    ("settings", "'5'", "settings is not a JSON object: 5"),
    ("settings", '\'{"every": "hourly"}\'', 'settings.every has the wrong type: "hourly"'),
    ("settings", "'{\"max_items\": 0}'", "settings.max_items is below 1: 0"),
    ("settings", '\'{"tags": ["a", 3]}\'', "settings.tags is not a list of strings"),
    ("settings", '\'{"body_policy": "half"}\'', "settings.body_policy is not one of"),
    ("settings", '\'{"exclude_regex": "(a"}\'', "settings.exclude_regex: invalid RE2 pattern"),
    # Numbers out of range: each crashed the poll (dates and timedelta overflow) as a traceback.
    ("settings", "'{\"every\": 1e12}'", "settings.every is above 5256000: 1000000000000.0"),
    ("settings", "'{\"max_age\": 1e9}'", "settings.max_age is above 87600: 1000000000.0"),
    *OVERFLOWING,
    ("kind", "'bogus'", "kind 'bogus' is not a source type"),
    ("url", "''", "url is empty"),
    ("url", "'feeds.example.com/rss'", "url is not an http(s) URL: feeds.example.com/rss"),
]
# Not JSON (broken, or Python's NaN/Infinity extensions): only SQLite's text column holds them.
NOT_JSON_ROWS = [
    ("settings", "'{\"every\": 5,'", 'settings is not valid JSON: {"every": 5,'),
    ("settings", "'{\"every\": NaN}'", "settings.every is not a finite number: NaN"),
    ("settings", "'{\"every\": Infinity}'", "settings.every is not a finite number: Infinity"),
    ("settings", "'{\"max_age\": -Infinity}'", "settings.max_age is not a finite number"),
]


@pytest.mark.parametrize(
    ("backend", "column", "value", "message"),
    [("sqlite", *c) for c in CORRUPTIONS]
    + [pytest.param("sqlite", *c, marks=NOT_JSON) for c in NOT_JSON_ROWS]
    # PostgreSQL's own URL in either mode: JSON non-objects, and non-finite numbers.
    + [("pg", *c) for c in CORRUPTIONS[:2] + OVERFLOWING],
)
def test_each_kind_of_corrupt_row_costs_only_its_source(  # type: ignore[no-untyped-def]
    waikan,
    tmp_path,
    request: pytest.FixtureRequest,
    backend: str,
    column: str,
    value: str,
    message: str,
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'w.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    env = ENV | {"WAIKAN_STORE_URL": url}
    with PageServer({}) as srv:
        _two_sources(waikan, srv, env)
        _sql(url, f"UPDATE sources SET {column} = {value} WHERE id = 2")
        fetched = waikan("fetch", "--now", env=env)
        assert fetched.code == 1, fetched.err
        lines = _errors(fetched.err)
        assert len(lines) == 1 and lines[0].startswith(f"waikan: error: source 2: {message}"), lines
        assert _statuses(waikan, env) == {"g0": "extracted", "g1": "extracted", "b0": "discovered"}
        listed = _sources(waikan, env)[1]
        assert str(listed["broken"]).startswith(message), listed
        assert waikan("sources", "remove", "2", env=env).code == 0


@pytest.mark.parametrize(
    ("raw", "settings", "broken"),
    [
        (None, {}, None),  # SQL NULL
        ("null", {}, None),  # JSON null, as SQLAlchemy stores a Python None
        ('{"every": 5, "paused": true, "x": 1}', {"every": 5, "paused": True, "x": 1}, None),
        ('{"every": true}', {"every": True}, "settings.every has the wrong type: true"),
        ('{"priority": 1.5}', {"priority": 1.5}, "settings.priority has the wrong type: 1.5"),
        ('{"paused": 1}', {"paused": 1}, "settings.paused has the wrong type: 1"),
        ('{"every": 5256000, "max_age": 87600}', {"every": 5256000, "max_age": 87600}, None),
        ('{"priority": -1000000, "first_n": 1}', {"priority": -1000000, "first_n": 1}, None),
        ('{"every": 0.001}', {"every": 0.001}, "settings.every is below 0.01: 0.001"),
        ('{"backfill": 1000001}', {"backfill": 1000001}, "settings.backfill is above 1000000"),
        ('{"max_items": 10000000}', {"max_items": 10000000}, "settings.max_items is above 1000000"),
        ('{"first_n": 99999999}', {"first_n": 99999999}, "settings.first_n is above 1000000"),
        ('{"priority": -1000001}', {"priority": -1000001}, "settings.priority is below -1000000"),
        (f'{{"priority": {10**400}}}', {"priority": 10**400}, "settings.priority is above 1000000"),
        ('{"every": 1e400}', {"every": float("inf")}, "settings.every is not a finite number"),
    ],
)
def test_read_settings(raw: str | None, settings: dict[str, object], broken: str | None) -> None:
    """Unknown keys pass (the desk's ``paused``, later versions'); a bool is not a number."""
    got, why = read_settings(raw)
    assert got == settings
    assert why == broken if why is None or broken is None else why.startswith(broken), why


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("WAIKAN_SOURCES_EVERY", "1e12", "sources.every: '1e12' (maximum 5256000)"),
        ("WAIKAN_SOURCES_EVERY", "nan", "sources.every: 'nan' (expected a finite number)"),
        ("WAIKAN_SOURCES_MAX_AGE", "inf", "sources.max_age: 'inf' (expected a finite number)"),
        ("WAIKAN_SOURCES_MAX_AGE", "1e9", "sources.max_age: '1e9' (maximum 87600)"),
        ("WAIKAN_SOURCES_MAX_ITEMS", "10000000", "sources.max_items: '10000000' (maximum"),
    ],
)
def test_a_default_out_of_range_is_a_config_error(  # type: ignore[no-untyped-def]
    waikan, variable: str, value: str, message: str
) -> None:
    """[sources] defaults had no upper bound (nor refused NaN): every poll then crashed."""
    got = waikan("fetch", env=ENV | {variable: value})
    assert_one_line_error(got)
    assert got.err.startswith(f"waikan: error: invalid value for {message}"), got.err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--every", "1e12", "1000000000000.0 is not in the range 0.01<=x<=5256000"),
        ("--every", "nan", "'nan' is not a finite number"),
        ("--every", "inf", "inf is not in the range"),
        ("--max-age", "1e9", "1000000000.0 is not in the range 0<=x<=87600"),
        ("--max-age", "nan", "'nan' is not a finite number"),
        ("--backfill", "1000001", "1000001 is not in the range 0<=x<=1000000"),
        ("--max-items", "10000000", "10000000 is not in the range 1<=x<=1000000"),
        ("--first-n", "10000000", "10000000 is not in the range 1<=x<=1000000"),
        ("--priority", "-10000000", "-10000000 is not in the range -1000000<=x<=1000000"),
    ],
)
def test_sources_add_refuses_what_a_row_may_not_hold(  # type: ignore[no-untyped-def]
    waikan, option: str, value: str, message: str
) -> None:
    """The options take the bounds of :func:`read_settings`: no way to add a broken source."""
    got = waikan("sources", "add", "http://127.0.0.1:9/feed.xml", f"{option}={value}", env=ENV)
    assert got.code == 2 and "Traceback" not in got.err, got.err
    assert f"Invalid value for '{option}': {message}" in got.err, got.err
    assert _sources(waikan, ENV) == []


def test_a_paused_broken_source_is_quiet_unless_named(  # type: ignore[no-untyped-def]
    waikan, tmp_path
) -> None:
    """Paused by its operator: runs skip it without a line; ``sources list`` still shows it."""
    env = ENV | {"WAIKAN_STORE_URL": f"sqlite:///{tmp_path / 'w.db'}"}
    with PageServer({}) as srv:
        _two_sources(waikan, srv, env)
        paused = """'{"paused": true, "every": "hourly"}'"""
        _sql(env["WAIKAN_STORE_URL"], f"UPDATE sources SET settings = {paused} WHERE id = 2")
        for args in (("fetch",), ("fetch", "--now")):
            fetched = waikan(*args, env=env)
            assert fetched.code == 0 and not _errors(fetched.err), (args, fetched.err)
        assert _statuses(waikan, env) == {"g0": "extracted", "g1": "extracted", "b0": "discovered"}
        assert _sources(waikan, env)[1]["broken"] == 'settings.every has the wrong type: "hourly"'
        named = waikan("fetch", "--source", "2", env=env)
        assert named.code == 1, named.err
        lines = _errors(named.err)
        assert len(lines) == 1 and lines[0].startswith("waikan: error: source 2: settings.every")
        assert srv.hits.count("/bad.xml") == 1  # its first poll (add) only


def _repo_with_sources(tmp_path: Path, n: int) -> SourceRepo:
    """``n`` polled sources sharing filter settings, next due in an hour."""
    repo = SourceRepo(open_store(f"sqlite:///{tmp_path / 'w.db'}"))
    settings = {"include_regex": r"\bmarkets?\b", "exclude": ["sport"], "every": 60}
    for i in range(n):
        src = repo.add(
            f"https://s{i}.example/feed.xml",
            kind="rss",
            name=None,
            language=None,
            settings=settings,
        )
        repo.record_poll(
            src,
            taken=[Item(f"https://s{i}.example/a")],
            skipped=[],
            etag=None,
            last_modified=None,
            status="ok",
            every_minutes=10 if src.id == 3 else 60,
            source_name=None,
        )
    return repo


def test_a_run_reads_each_source_row_once_and_validates_each_text_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fetch stage read and validated every row three times (RE2 compiles each time)."""
    import waikan.sources.filters as filters
    import waikan.sources.repo as repo_module

    repo = _repo_with_sources(tmp_path, 30)
    with repo.engine.begin() as c:
        # broken JSON that either backend holds (pg mode runs this on PostgreSQL)
        c.exec_driver_sql("""UPDATE sources SET settings = '{"every": "x"}' WHERE id = 7""")
        c.exec_driver_sql(
            """UPDATE sources SET settings = '{"every": "x", "paused": true}' WHERE id = 9"""
        )
    everything = {s.id: s for s in repo.all()}  # what the stage reads once (validated here)
    records, compiled = [], []
    real_record, real_compile = repo_module._record, filters._compile

    def record(row: object) -> SourceRecord:
        records.append(row)
        return real_record(row)

    def compile_(*args: str) -> object:
        compiled.append(args)
        return real_compile(*args)

    monkeypatch.setattr(repo_module, "_record", record)
    monkeypatch.setattr(filters, "_compile", compile_)
    # due(): SQL picks the due rows; of the others only the broken ones become records
    due = repo.due(datetime.now(UTC) + timedelta(minutes=30))
    assert [s.id for s in due] == [3, 7, 9] and len(records) == 3
    errors: list[int] = []
    assert [s.id for s in usable(due, lambda s: errors.append(s.id))] == [3]
    assert errors == [7]  # 9 is paused: quiet
    assert [s.id for s in usable(due, lambda s: errors.append(s.id), named=True)] == [3]
    assert errors == [7, 7, 9]
    # discovered(): with the sources in hand, no source is read again
    statements: list[str] = []
    event.listen(repo.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    waiting = repo.discovered(everything)
    assert len(statements) == 1 and "sources" not in statements[0].split("FROM")[1]
    assert sorted(d.source_id or 0 for d in waiting) == [i for i in range(1, 31) if i not in (7, 9)]
    # reading every row again compiles no pattern: the same text was validated before
    records.clear()
    assert [s.broken is not None for s in repo.all()].count(True) == 2
    assert len(records) == 30 and compiled == []
    repo.store.close()


def test_a_worker_fetch_task_leaves_a_broken_sources_article_waiting(
    pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A fetch task sent before the row was hand-edited: one warning, the article waits."""
    from waikan.config import load
    from waikan.queue import tasks
    from waikan.workspace import Workspace

    ws = Workspace(load(tmp_path, env={"WAIKAN_STORE_URL": pg_url} | ENV))
    try:
        repo = SourceRepo(ws.store)
        src = repo.add(
            "http://127.0.0.1:9/feed.xml", kind="rss", name=None, language=None, settings={}
        )
        (article,) = repo.record_poll(
            src,
            taken=[Item("http://127.0.0.1:9/a", "A")],
            skipped=[],
            etag=None,
            last_modified=None,
            status="ok",
            every_minutes=15,
            source_name=None,
        )
        _sql(pg_url, """UPDATE sources SET settings = '{"first_n": 0}'""")
        with caplog.at_level("WARNING", logger="waikan.queue.tasks"):
            assert tasks.fetch(ws, article) == "broken"
        assert [r.getMessage() for r in caplog.records] == [
            f"article {article}: source {src.id}: settings.first_n is below 1: 0; skipped until "
            f"the row is fixed or removed (waikan sources remove {src.id})"
        ]
        got = ws.store.article(article)
        assert got is not None and got.status == "discovered" and not got.reason, got
    finally:
        if tasks._fetchers is not None:  # the worker process's fetcher, made by the task
            _pid, _store, loop, fetcher, turns = tasks._fetchers
            loop.run_until_complete(fetcher.aclose())
            loop.close()
            turns.close()
            tasks._fetchers = None
        ws.close()
