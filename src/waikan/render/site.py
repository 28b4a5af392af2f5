"""The static site: post pages in the seed's layout, listings, feeds, sitemap, search.

A build first *plans* every page as a name, a key and the posts it needs.
The key hashes everything the page shows (the posts' revisions, the
templates, the settings), so an incremental build compares keys with the
manifest of the previous build and renders only the pages whose key moved;
it loads only the posts those pages need. Files are written only when their
bytes differ, so unchanged files keep their mtime.

Listings are numbered from the oldest post (``page/1.html`` holds the
first ``per_page`` posts ever built), so a new post never renumbers them;
``index.html`` shows the newest posts.

Every field from a source reaches the HTML through Jinja's autoescape, and
links from a source are kept only when they are http(s).
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import re
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from itertools import repeat
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemBytecodeCache,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
)

from waikan.config import Config
from waikan.errors import RenderError
from waikan.models import Post, Status
from waikan.pipeline import post_from, variant_glossary
from waikan.render import feeds, search
from waikan.render._files import Writer, write_bytes
from waikan.render.images import Fetcher, Images, config_fetcher, is_http
from waikan.render.post import day_of, meta_line, timestamp, title_line
from waikan.store import PostStamp, Store
from waikan.workspace import Workspace

__all__ = ["SITE_STATUSES", "BuildReport", "build_site", "site_posts"]

FORMAT = "2"  # bump when the output changes in ways the keys cannot see
MANIFEST = ".waikan-build.json"
JOURNAL = ".waikan-build.log"  # what each build changed since the base file, a line each
JOURNAL_LINES = 200  # then a new base file
JOURNAL_POSTS = 500  # a build that changed more posts writes a new base file
# Rows are stamped before they commit: look again at what changed shortly before the mark.
MARGIN = timedelta(seconds=10)
IMAGE_TRIES = 3  # builds that try a failed lead image before only --full tries again
STATE_COLUMNS = (
    "id",
    "post",
    "revision",
    "summary",
    "status",
    "source",
    "published",
    "updated",
    "day",
)
SITE_STATUSES = (Status.SUMMARIZED.value, Status.APPROVED.value, Status.PUBLISHED.value)
TEMPLATES = (
    "site/base.html",
    "site/post.html",
    "site/list.html",
    "site/sources.html",
    "site/days.html",
    "site/search.html",
    "site/404.html",
)
STATIC = ("site.css", "search.js")


def site_statuses(ws: Workspace) -> tuple[str, ...]:
    """SPEC §2: approved and published posts; in ``auto`` review mode a summarized
    post counts as approved at once, but not when every destination waits for an
    editor (``review`` mode)."""
    from waikan.publish.review import editor_gate

    if editor_gate(ws):
        return tuple(s for s in SITE_STATUSES if s != Status.SUMMARIZED.value)
    return SITE_STATUSES


def site_posts(store: Store, statuses: Sequence[str] = SITE_STATUSES) -> list[PostStamp]:
    """The posts the site and its feeds show, oldest post first (see :func:`site_statuses`)."""
    return store.post_stamps(statuses)


# -- interface strings: the site's own words, per script ----------------------------

UI: dict[str, dict[str, str]] = {
    "zh-Hans": {
        "lang": "zh-Hans",
        "latest": "最新文章",
        "older": "← 更早",
        "newer": "更新 →",
        "sources": "来源",
        "days": "日期",
        "search": "搜索",
        "feeds": "订阅",
        "original": "原文",
        "read_original": "阅读原文",
        "summary": "中文摘要",
        "page": "第 {n} 页",
        "count": "{n} 篇",
        "empty": "这里还没有文章。添加并摘要文章后重新运行 waikan build。",
        "not_found": "找不到这个页面。",
        "home": "返回首页",
        "placeholder": "搜索标题、摘要和原文",
        "no_results": "没有找到相关文章。",
        "results": "找到 {n} 篇文章",
        "searching": "正在搜索…",
        "needs_js": "搜索需要启用 JavaScript。",
        "unknown_source": "其他来源",
        "date_fmt": "{y}年{m}月{d}日",
    },
    "zh-Hant": {
        "lang": "zh-Hant",
        "latest": "最新文章",
        "older": "← 更早",
        "newer": "更新 →",
        "sources": "來源",
        "days": "日期",
        "search": "搜尋",
        "feeds": "訂閱",
        "original": "原文",
        "read_original": "閱讀原文",
        "summary": "中文摘要",
        "page": "第 {n} 頁",
        "count": "{n} 篇",
        "empty": "這裡還沒有文章。加入並摘要文章後重新執行 waikan build。",
        "not_found": "找不到這個頁面。",
        "home": "返回首頁",
        "placeholder": "搜尋標題、摘要和原文",
        "no_results": "沒有找到相關文章。",
        "results": "找到 {n} 篇文章",
        "searching": "正在搜尋…",
        "needs_js": "搜尋需要啟用 JavaScript。",
        "unknown_source": "其他來源",
        "date_fmt": "{y}年{m}月{d}日",
    },
}


def ui_for(variant: str) -> dict[str, str]:
    ui = dict(UI["zh-Hant" if variant.startswith("zh-Hant") else "zh-Hans"])
    ui["lang"] = variant if variant.startswith("zh-Hant") else "zh-Hans"
    return ui


# -- plan ------------------------------------------------------------------------------

Render = Callable[[Mapping[int, Post]], dict[str, str | bytes]]


@dataclass(slots=True)
class Page:
    name: str
    key: str
    ids: tuple[int, ...]
    render: Render


@dataclass
class BuildReport:
    out: Path
    posts: int
    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    rendered_pages: int = 0
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _key(*parts: object) -> str:
    joined = "\x1f".join(map(str, parts)).encode("utf-8")
    return hashlib.sha1(joined, usedforsecurity=False).hexdigest()[:20]


def _fp(s: PostStamp) -> str:
    return f"{s.article_id}.{s.post_id}.{s.revision}.{s.summary_id}.{s.updated}"


class _Fingerprints(dict[int, str]):
    """Post fingerprints, computed on first use: a small build needs only a few."""

    def __init__(self, by_id: Mapping[int, PostStamp]) -> None:
        super().__init__()
        self.by_id = by_id

    def __missing__(self, article_id: int) -> str:
        found = self[article_id] = _fp(self.by_id[article_id])
        return found


class _Layout:
    """One list of posts indexed the ways a plan needs, built once per list and build."""

    def __init__(self, stamps: Sequence[PostStamp], days: Mapping[int, str | None]) -> None:
        self.stamps = stamps
        self.days = days
        self.by_id = {s.article_id: s for s in stamps}
        self.ids = list(self.by_id)
        self.by_source: dict[str, list[PostStamp]] = defaultdict(list)
        self.by_day: dict[str, list[PostStamp]] = defaultdict(list)
        for s in stamps:
            self.by_source[s.source_name or ""].append(s)
            if day := days.get(s.article_id):
                self.by_day[day].append(s)
        self.slugs = source_slugs(self.by_source)


@dataclass(slots=True)
class State:
    """What the last build saw, kept in ``.waikan-build.json``: enough to plan the next.

    ``stamps`` are its posts (oldest first) with their ``days``; ``files`` lists the
    files of each page that writes more than the file of its name; ``total`` counts
    the files of the whole site.
    """

    mark: datetime  # rows changed at or after this are looked at again
    stamps: list[PostStamp]
    days: dict[int, str | None]
    files: dict[str, list[str]]
    total: int
    images: dict[int, int] = field(default_factory=dict)  # post → failed image downloads
    gen: str = ""  # the base file's id, repeated by each journal line
    lines: int = 0  # journal lines read
    broken: bool = False  # the journal ended in a line that did not parse


def _encoded(values: list[Any]) -> dict[str, list[Any]]:
    """A column of few distinct values as a table of them and an index per row."""
    table = list(dict.fromkeys(values))
    where = {v: n for n, v in enumerate(table)}
    return {"values": table, "rows": [where[v] for v in values]}


def _decoded(column: Any) -> list[Any]:
    if isinstance(column, dict):
        table = column["values"]
        return [table[n] for n in column["rows"]]
    return list(column)


def _diff(old: Sequence[PostStamp], new: Sequence[PostStamp]) -> set[int]:
    """Posts added, removed or changed between two lists."""
    before = {s.article_id: s for s in old}
    after = {s.article_id: s for s in new}
    changed = before.keys() ^ after.keys()
    changed.update(i for i, s in after.items() if i in before and before[i] != s)
    return changed


def _days(
    stamps: Sequence[PostStamp], old: State | None, changed: set[int] | None
) -> dict[int, str | None]:
    """Each post's publication day; parsed again only for the posts that changed."""

    def day(s: PostStamp) -> str | None:
        found = day_of(s.published)
        return found.isoformat() if found else None

    if old is None or changed is None:
        return {s.article_id: day(s) for s in stamps}
    days = dict(old.days)
    now = {s.article_id: s for s in stamps} if changed else {}
    for i in changed:
        if i in now:
            days[i] = day(now[i])
        else:
            days.pop(i, None)
    return days


def _first_diff(a: Sequence[int], b: Sequence[int]) -> int:
    """The first position where two lists differ (the shorter length if one extends the other)."""
    m = min(len(a), len(b))
    if a[:m] == b[:m]:
        return m
    return next(i for i in range(m) if a[i] != b[i])


def _positions(ids: list[int], wanted: set[int]) -> list[int]:
    if len(wanted) <= 8:
        return [ids.index(i) for i in wanted if i in ids]
    return [n for n, i in enumerate(ids) if i in wanted]


def _listing_names(folder: str, total: int, per_page: int) -> list[str]:
    count = (total + per_page - 1) // per_page
    return [f"{folder}index.html", *(f"{folder}page/{k}.html" for k in range(1, count + 1))]


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:60] or "s-" + hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:8]


def source_slugs(names: Iterable[str]) -> dict[str, str]:
    """A stable, unique folder name per source name (``BBC News`` → ``bbc-news``)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in sorted(set(names)):
        slug = slugify(name)
        if slug in taken:
            slug += "-" + hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:6]
        taken.add(slug)
        out[name] = slug
    return out


def shown_paragraphs(post: Post) -> tuple[str, ...]:
    """The original's paragraphs as the source's body policy allows (SPEC §2.1)."""
    policy = str(post.meta.get("body_policy") or "full")
    if policy == "none":
        return ()
    if policy == "first_n":
        n = post.meta.get("body_first_n", 3)
        return post.paragraphs[: n if isinstance(n, int) else 3]
    return post.paragraphs


def snippet(post: Post, limit: int = 160) -> str:
    """The summary's opening for listings; an excerpt's label alone says nothing."""
    parts = [p.strip() for p in post.summary if p.strip()]
    if parts and len(parts[0]) < 30 and len(parts) > 1:
        parts = [parts[0] + parts[1]]
    text = parts[0] if parts else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _rel(depth: int) -> str:
    return "../" * depth


# -- templates -----------------------------------------------------------------------


def template_env(home: Path) -> Environment:
    """Package templates, overridable file by file from ``HOME/templates/site/``.

    Compiled templates are cached under ``HOME/cache/templates`` (keyed by their
    source), since compiling costs more than an incremental build renders.
    """
    loader = ChoiceLoader(
        [FileSystemLoader(str(home / "templates")), PackageLoader("waikan.render", "templates")]
    )
    cache = None
    try:
        folder = home / "cache" / "templates"
        folder.mkdir(parents=True, exist_ok=True)
        cache = FileSystemBytecodeCache(str(folder))
    except OSError:
        pass  # a read-only workspace still builds, only slower
    return Environment(
        loader=loader,
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        bytecode_cache=cache,
    )


def _template_error(exc: Exception, name: str) -> RenderError:
    if isinstance(exc, jinja2.TemplateSyntaxError):
        where = exc.filename or exc.name or name
        return RenderError(f"{where}:{exc.lineno}: template syntax error: {exc.message}")
    if isinstance(exc, jinja2.TemplateNotFound):
        return RenderError(f"template not found: {exc.name}")
    # A runtime error inside a template: name the template file and line it happened on.
    for frame, lineno in reversed(list(traceback.walk_tb(exc.__traceback__))):
        filename = frame.f_code.co_filename
        if filename.endswith(".html") and "templates" in filename:
            return RenderError(f"{filename}:{lineno}: template error: {exc}")
    return RenderError(f"template {name}: {type(exc).__name__}: {exc}")


def load_templates(env: Environment) -> tuple[dict[str, jinja2.Template], str]:
    """Compile every template up front (a syntax error stops the build before any write)."""
    compiled = {}
    digest = hashlib.sha1(usedforsecurity=False)
    for name in TEMPLATES:
        try:
            compiled[name] = env.get_template(name)
            assert env.loader is not None
            source, filename, _ = env.loader.get_source(env, name)
        except jinja2.TemplateError as exc:
            raise _template_error(exc, name) from None
        digest.update(f"{name}\0{filename}\0{source}\0".encode())
    return compiled, digest.hexdigest()


def load_static(home: Path) -> dict[str, bytes]:
    out = {}
    for name in STATIC:
        user = home / "templates" / "static" / name
        try:
            out[name] = (
                user.read_bytes()
                if user.is_file()
                else files("waikan.render").joinpath("static", name).read_bytes()
            )
        except OSError as exc:
            raise RenderError(f"cannot read static file {name}: {exc}") from None
    return out


# -- the builder -----------------------------------------------------------------------


class SiteBuilder:
    def __init__(
        self,
        ws: Workspace,
        out: Path,
        *,
        full: bool = False,
        fetcher: Fetcher | None = None,
    ) -> None:
        self.ws = ws
        self.statuses = site_statuses(ws)
        self.config: Config = ws.config
        self.out = out
        self.full = full
        cfg = self.config
        self.per_page = int(cfg["site.per_page"])
        self.feed_items = int(cfg["site.feed_items"])
        base = str(cfg["site.base_url"]).strip()
        self.base = base.rstrip("/") + "/" if base else ""
        self.channel = str(cfg["channel.name"])
        self.ui = ui_for(str(cfg["channel.variant"]))
        self.report = BuildReport(out=out, posts=0)
        self._cards: dict[int, dict[str, Any]] = {}
        self._no_image: set[int] = set()  # posts whose lead image could not be fetched
        if fetcher is None and bool(cfg["site.images"]):
            fetcher = config_fetcher(cfg)
        self.images = Images(out, fetcher if bool(cfg["site.images"]) else None, [])

    # -- helpers for templates and keys --
    def absolute(self, path: str) -> str:
        return self.base + path

    def _common(self, depth: int, path: str) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "ui": self.ui,
            "root": _rel(depth),
            "canonical": self.absolute(path) if self.base else None,
            "og": None,
            "search_root": _rel(depth),
        }

    def _render(self, name: str, **context: Any) -> str:
        try:
            return self.templates[name].render(**context)
        except RenderError:
            raise
        except Exception as exc:  # any template failure: one line naming the file
            raise _template_error(exc, name) from None

    def _date(self, day: str) -> str:
        y, m, d = day.split("-")
        return self.ui["date_fmt"].format(y=int(y), m=int(m), d=int(d))

    def card(self, post: Post, root: str) -> dict[str, Any]:
        """A post as listings show it; computed once per build, whatever pages show it."""
        found = self._cards.get(post.id)
        if found is None:
            found = self._cards[post.id] = {
                "title_line": title_line(post),
                "title_zh": post.title_zh,
                "meta": meta_line(post),
                "snippet": snippet(post),
                "source": post.source,
            }
        return {**found, "url": f"{root}posts/{post.id}.html"}

    # -- build --
    def build(self) -> BuildReport:
        # A build allocates tens of thousands of small objects and frees no cycles:
        # the cyclic collector would only walk them again and again.
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._build()
        finally:
            if enabled:
                gc.enable()

    def _build(self) -> BuildReport:
        started = time.perf_counter()
        self._prepare_out()
        env = template_env(self.ws.home)
        self.templates, template_digest = load_templates(env)
        static = load_static(self.ws.home)
        cfg = self.config
        self.site_fp = _key(
            FORMAT,
            template_digest,
            *(hashlib.sha1(b, usedforsecurity=False).hexdigest() for b in static.values()),
            *(
                cfg[n]
                for n in (
                    "channel.name",
                    "channel.variant",
                    "channel.reading_wpm",
                    "site.base_url",
                    "site.per_page",
                    "site.feed_items",
                    "site.images",
                )
            ),
            # Which statuses the site shows: the last build's post list holds only those.
            *self.statuses,
        )
        if not self.base:
            self.report.warnings.append(
                "site.base_url is not set: sitemap.xml left out, feeds use relative links"
            )
        store = self.ws.store
        # Taken before reading the store: whatever commits later is newer than the mark.
        looked = datetime.now(UTC)
        old = None if self.full else self._read_state()
        found = self._changes(old) if old is not None else None
        if found is None:
            stamps = site_posts(store, self.statuses)
            changed = None if old is None else _diff(old.stamps, stamps)
        else:
            stamps, changed = found
        days = _days(stamps, old, changed)
        self.report.posts = len(stamps)

        old_keys: dict[str, str] = {}
        now = _Layout(stamps, days)
        # Posts whose lead image failed last time: their pages try again (a few times).
        retry = set()
        if old is not None and self.images.fetcher is not None:
            retry = {
                f"posts/{i}.html"
                for i, tries in old.images.items()
                if tries < IMAGE_TRIES and i in now.by_id
            }
        if old is None or changed is None:
            pages = self.plan(now, static, None)
        else:
            then = _Layout(old.stamps, old.days)
            want = self.candidates(then, now, changed)
            if want is not None:
                want.update(retry)
            old_keys = {p.name: p.key for p in self.plan(then, static, want)}
            pages = self.plan(now, static, want)
        dirty = [
            page for page in pages if page.name in retry or old_keys.get(page.name) != page.key
        ]
        posts = self._load_posts(sorted({i for page in dirty for i in page.ids}))

        files = dict(old.files) if old is not None else {}
        total = old.total if old is not None else 0
        stale: list[str] = []
        with Writer() as writer:
            for page in dirty:
                produced = page.render(posts)
                self.report.rendered_pages += 1
                for rel, data in produced.items():
                    raw = data.encode("utf-8") if isinstance(data, str) else data
                    writer.put(rel, self.out / rel, raw)
                if page.name in old_keys:
                    had = files.get(page.name, [page.name])
                    total -= len(had)
                    stale += had
                made = sorted(produced)
                total += len(made)
                if made == [page.name]:
                    files.pop(page.name, None)
                else:
                    files[page.name] = made
        self.report.written += writer.written
        gone = old_keys.keys() - {page.name for page in pages}
        for name in gone:
            had = files.pop(name, [name])
            total -= len(had)
            stale += had
        self._remove_stale(stale, files, pages)
        self.report.unchanged = total - len(self.report.written)
        rendered = {page.name for page in dirty}
        images = {
            i: tries
            for i, tries in (old.images if old is not None else {}).items()
            if i in now.by_id and f"posts/{i}.html" not in rendered
        }
        for i in self._no_image:
            images[i] = (old.images.get(i, 0) if old is not None else 0) + 1
        if dirty or self.report.removed or old is None or changed:
            state = State(looked - MARGIN, stamps, days, files, total, images)
            touched = {page.name for page in dirty} | gone
            self._write_state(state, old, changed, touched)
        self.report.warnings.extend(self.images.warnings)
        self.report.seconds = time.perf_counter() - started
        return self.report

    def _prepare_out(self) -> None:
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            probe = self.out / ".waikan-write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise RenderError(
                f"cannot write the site into {self.out}: {exc.strerror or exc}"
            ) from None

    # -- the last build's state --
    def _read_state(self) -> State | None:
        """The last build's state; None when absent, damaged or from other templates/settings.

        The state is a base file plus a journal of the builds since, one JSON line
        each; a line that does not parse (a build stopped while appending it) ends
        the journal there, and the next write starts a new base.
        """
        try:
            data = json.loads((self.out / MANIFEST).read_text(encoding="utf-8"))
            if data.get("format") != FORMAT or data.get("site") != self.site_fp:
                return None  # other templates or settings: every page changes anyway
            cols = data["posts"]
            columns = [_decoded(cols[name]) for name in STATE_COLUMNS]
            if len({len(c) for c in columns}) > 1:
                return None
            stamps = list(map(tuple.__new__, repeat(PostStamp), zip(*columns[:8], strict=True)))
            days = dict(zip(columns[0], columns[8], strict=True))
            files = {str(k): [str(f) for f in v] for k, v in data["files"].items()}
            mark = datetime.fromisoformat(data["mark"])
            images = {int(k): int(v) for k, v in data.get("images", {}).items()}
            state = State(mark, stamps, days, files, int(data["total"]), images, str(data["gen"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError):
            return None
        try:
            lines = (self.out / JOURNAL).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return state
        except (OSError, ValueError):
            lines = [""]
        by_id: dict[int, PostStamp] | None = None
        for line in lines:
            try:
                entry = json.loads(line)
                if entry["gen"] != state.gen:
                    raise ValueError("a journal of another base")
                if by_id is None:
                    by_id = {s.article_id: s for s in state.stamps}
                for row in entry["set"]:
                    by_id[row[0]] = tuple.__new__(PostStamp, row[:8])
                    days[row[0]] = row[8]
                for i in entry["del"]:
                    by_id.pop(i, None)
                    days.pop(i, None)
                for name, made in entry["files"].items():
                    if made is None:
                        files.pop(name, None)
                    else:
                        files[name] = [str(f) for f in made]
                state.images = {int(k): int(v) for k, v in entry["images"].items()}
                state.mark = datetime.fromisoformat(entry["mark"])
                state.total = int(entry["total"])
                state.lines += 1
            except (ValueError, KeyError, TypeError, AttributeError, IndexError):
                state.broken = True
                break
        if by_id is not None:
            state.stamps = sorted(by_id.values(), key=lambda s: s.post_id)
        return state

    def _write_state(
        self, state: State, old: State | None, changed: set[int] | None, touched: set[str]
    ) -> None:
        """Append this build's changes to the journal; now and then, a new base instead."""
        journal = self.out / JOURNAL
        if (
            old is not None
            and changed is not None
            and not old.broken
            and old.lines < JOURNAL_LINES
            and len(changed) <= JOURNAL_POSTS
        ):
            now = {s.article_id: s for s in state.stamps}
            entry = {
                "gen": old.gen,
                "mark": state.mark.isoformat(),
                "total": state.total,
                "set": [[*now[i], state.days.get(i)] for i in sorted(changed) if i in now],
                "del": sorted(i for i in changed if i not in now),
                "files": {name: state.files.get(name) for name in sorted(touched)},
                "images": {str(i): tries for i, tries in state.images.items()},
            }
            line = json.dumps(entry, separators=(",", ":"), ensure_ascii=False) + "\n"
            try:
                with journal.open("a", encoding="utf-8") as fh:
                    fh.write(line)
                return
            except OSError as exc:
                raise RenderError(f"cannot write {journal}: {exc.strerror or exc}") from None
        # Columns, not rows: ten thousand posts load and dump several times faster.
        cols: list[Any] = [list(c) for c in zip(*state.stamps, strict=True)] or [
            [] for _ in range(8)
        ]
        cols.append([state.days.get(i) for i in cols[0]])
        for n in (4, 5, 8):  # status, source, day: a few values, each repeated often
            cols[n] = _encoded(cols[n])
        data = {
            "format": FORMAT,
            "site": self.site_fp,
            "gen": os.urandom(8).hex(),  # ties the journal lines to this base
            "mark": state.mark.isoformat(),
            "total": state.total,
            "posts": dict(zip(STATE_COLUMNS, cols, strict=True)),
            # A page whose only file is its name (every post page) stores no file list.
            "files": state.files,
            "images": {str(i): tries for i, tries in state.images.items()},
        }
        write_bytes(self.out / MANIFEST, json.dumps(data, separators=(",", ":")).encode())
        try:
            journal.unlink(missing_ok=True)
        except OSError as exc:
            raise RenderError(f"cannot remove {journal}: {exc.strerror or exc}") from None

    def _changes(self, old: State) -> tuple[list[PostStamp], set[int]] | None:
        """The posts now, from the last build's list and the rows changed since it looked.

        None when the count disagrees (rows committed under an older time, or deleted):
        the caller then reads the whole list.
        """
        store = self.ws.store
        by_id = {s.article_id: s for s in old.stamps}
        changed: set[int] = set()
        for s in store.post_changes(old.mark):
            prev = by_id.get(s.article_id)
            if s.status in self.statuses:
                if prev != s:
                    by_id[s.article_id] = s
                    changed.add(s.article_id)
            elif prev is not None:
                del by_id[s.article_id]
                changed.add(s.article_id)
        if store.post_count(self.statuses) != len(by_id):
            return None
        if not changed:
            return old.stamps, changed
        return sorted(by_id.values(), key=lambda s: s.post_id), changed

    def _remove_stale(
        self, stale: Sequence[str], files: Mapping[str, list[str]], pages: Sequence[Page]
    ) -> None:
        """Delete the files the pages that changed or went no longer produce."""
        if not stale:
            return
        keep = {f for produced in files.values() for f in produced}
        keep.update(page.name for page in pages if page.name not in files)
        for rel in dict.fromkeys(stale):
            if rel in keep:
                continue
            path = self.out / rel
            try:
                path.unlink()
                self.report.removed.append(rel)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise RenderError(f"cannot remove {path}: {exc.strerror}") from None
            folder = path.parent
            try:
                while folder != self.out and not any(folder.iterdir()):  # a gone source's
                    folder.rmdir()
                    folder = folder.parent
            except OSError:
                pass  # an empty folder left behind is harmless

    def _load_posts(self, ids: Sequence[int]) -> dict[int, Post]:
        if not ids:
            return {}
        names = variant_glossary(self.ws)  # user glossary entries' regional forms
        return {
            article.id: post_from(self.config, article, summary, names)
            for article, summary in self.ws.store.post_records(ids)
        }

    # -- which pages an incremental build looks at --
    def candidates(self, old: _Layout, now: _Layout, changed: set[int]) -> set[str] | None:
        """Every page that may differ between the last build's posts and these.

        A superset: the caller still compares keys. None when a source's folder
        name moved (a new source took its slug), so every page must be looked at.
        """
        if any(old.slugs[k] != now.slugs[k] for k in old.slugs.keys() & now.slugs.keys()):
            return None
        want = {"feeds", "sitemap", "search/index", "sources/index.html", "days/index.html"}
        if not changed:
            return want
        want.update(f"posts/{i}.html" for i in changed)
        want |= self._family("", old.ids, now.ids, changed)
        names = {
            (layout.by_id[i].source_name or "")
            for layout in (old, now)
            for i in changed
            if i in layout.by_id
        }
        for name in names:
            slug = now.slugs.get(name) or old.slugs[name]
            lo = [s.article_id for s in old.by_source.get(name, ())]
            ln = [s.article_id for s in now.by_source.get(name, ())]
            want |= self._family(f"sources/{slug}/", lo, ln, changed)
        for i in changed:
            for day in (old.days.get(i), now.days.get(i)):
                if day:
                    want.add(f"days/{day}.html")
        first = _first_diff(old.ids, now.ids)
        spots = _positions(old.ids, changed) + _positions(now.ids, changed)
        for total in (len(old.ids), len(now.ids)):
            for seg in search.segments(total):
                end = seg.start + seg.size
                if end > first or any(seg.start <= i < end for i in spots):
                    want.add(f"search/{seg.name}")
        return want

    def _family(self, folder: str, lo: list[int], ln: list[int], changed: set[int]) -> set[str]:
        """Candidate pages of one listing: the index, pages from the first moved post on,
        both last pages (their links), and the pages of changed posts."""
        n = self.per_page
        out = {f"{folder}index.html"}
        count_old, count_new = -(-len(lo) // n), -(-len(ln) // n)
        numbers = set(range(_first_diff(lo, ln) // n + 1, max(count_old, count_new) + 1))
        numbers.update((count_old, count_new))
        numbers.update(i // n + 1 for i in _positions(lo, changed) + _positions(ln, changed))
        out.update(f"{folder}page/{k}.html" for k in numbers if k > 0)
        return out

    # -- the plan: every page (or every wanted page) with its key --
    def plan(
        self, layout: _Layout, static: Mapping[str, bytes], want: set[str] | None
    ) -> list[Page]:
        def ok(name: str) -> bool:
            return want is None or name in want

        stamps, by_id, slugs = layout.stamps, layout.by_id, layout.slugs
        fp = _Fingerprints(by_id)
        pages: list[Page] = []

        if ok("static"):
            static_files = {f"static/{name}": data for name, data in static.items()}
            pages.append(Page("static", self.site_fp, (), lambda _p: dict(static_files)))

        if want is None:
            chosen: Iterable[PostStamp] = stamps
        else:
            wanted = (int(n[6:-5]) for n in want if n.startswith("posts/"))
            chosen = [by_id[i] for i in wanted if i in by_id]
        for s in chosen:
            pages.append(self._post_page(s, fp[s.article_id], slugs))

        pages += self._listing("", self.ui["latest"], stamps, fp, 0, ok)

        folders = None if want is None else {n.split("/")[1] for n in want if n[:8] == "sources/"}
        rows = []
        ordered = sorted(layout.by_source.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        for name, members in ordered:
            label = name or self.ui["unknown_source"]
            if folders is None or slugs[name] in folders:
                folder = f"sources/{slugs[name]}/"
                pages += self._listing(folder, label, members, fp, 2, ok)
            rows.append((label, f"{slugs[name]}/index.html", len(members)))
        if ok("sources/index.html"):
            pages.append(self._sources_index(rows))

        by_day = layout.by_day
        for day, members in by_day.items():
            if ok(f"days/{day}.html"):
                pages.append(self._day_page(day, members, fp))
        if ok("days/index.html"):
            pages.append(self._days_index({d: len(m) for d, m in by_day.items()}))

        if ok("search.html"):
            pages.append(self._simple("search.html", "site/search.html", depth=0))
        if ok("404.html"):
            pages.append(self._not_found())
        if ok("feeds"):
            pages.append(self._feeds(stamps, fp))
        pages += self._search(stamps, fp, ok)
        if ok("sitemap"):
            listed = [(f"sources/{slugs[name]}/", len(members)) for name, members in ordered]
            pages.append(self._sitemap(layout, listed))
        return pages

    def _post_page(self, s: PostStamp, fp: str, slugs: Mapping[str, str]) -> Page:
        path = f"posts/{s.article_id}.html"
        slug = slugs[s.source_name or ""]

        def render(posts: Mapping[int, Post]) -> dict[str, str | bytes]:
            post = posts[s.article_id]
            day = day_of(post.published)
            image = self.images.local(post.image_url)
            if image is None and self.images.fetcher is not None and is_http(post.image_url):
                self._no_image.add(post.id)
            ctx = self._common(1, path)
            original = post.url if is_http(post.url) else None
            summary0 = post.summary[0] if post.summary else ""
            ctx.update(
                post=post,
                title_line=title_line(post),
                meta=meta_line(post),
                timestamp=timestamp(post),
                paragraphs=shown_paragraphs(post),
                image=f"../{image}" if image else None,
                original=original,
                source_url=f"../sources/{slug}/index.html",
                source_label=post.source or self.ui["unknown_source"],
                day_url=f"../days/{day.isoformat()}.html" if day else None,
                day_label=self._date(day.isoformat()) if day else None,
                og={
                    "title": title_line(post),
                    "description": summary0[:200],
                    "url": self.absolute(path) if self.base else None,
                    "image": self.absolute(image) if image and self.base else None,
                    "type": "article",
                },
            )
            out: dict[str, str | bytes] = {path: self._render("site/post.html", **ctx)}
            if image:
                out[image] = (self.out / image).read_bytes()
            return out

        return Page(path, f"{fp}/{slug}", (s.article_id,), render)

    def _listing(
        self,
        folder: str,
        title: str,
        stamps: Sequence[PostStamp],
        fp: Mapping[int, str],
        depth: int,
        ok: Callable[[str], bool],
    ) -> list[Page]:
        """``{folder}index.html`` (newest) and ``{folder}page/K.html`` numbered from the oldest."""
        n, total = self.per_page, len(stamps)
        count = (total + n - 1) // n
        pages = []
        newest = list(reversed(stamps[-n:]))
        older = f"page/{(total - n - 1) // n + 1}.html" if total > n else None
        if ok(f"{folder}index.html"):
            pages.append(
                self._list_page(f"{folder}index.html", depth, title, newest, fp, older, None, None)
            )
        for k in range(1, count + 1):
            if not ok(f"{folder}page/{k}.html"):
                continue
            chunk = list(reversed(stamps[(k - 1) * n : k * n]))
            prev = f"{k - 1}.html" if k > 1 else None
            nxt = f"{k + 1}.html" if k < count else "../index.html"
            heading = f"{title} · {self.ui['page'].format(n=k)}"
            pages.append(
                self._list_page(
                    f"{folder}page/{k}.html", depth + 1, heading, chunk, fp, prev, nxt, k
                )
            )
        return pages

    def _list_page(
        self,
        path: str,
        depth: int,
        heading: str,
        stamps: Sequence[PostStamp],
        fp: Mapping[int, str],
        older: str | None,
        newer: str | None,
        number: int | None,
    ) -> Page:
        ids = tuple(s.article_id for s in stamps)

        def render(posts: Mapping[int, Post]) -> dict[str, str | bytes]:
            ctx = self._common(depth, path)
            root = ctx["root"]
            ctx.update(
                heading=heading,
                cards=[self.card(posts[i], root) for i in ids],
                older=older,
                newer=newer,
                number=number,
                is_home=path == "index.html",
            )
            return {path: self._render("site/list.html", **ctx)}

        key = _key(self.site_fp, "list", path, heading, older, newer, *(fp[i] for i in ids))
        return Page(path, key, ids, render)

    def _sources_index(self, rows: Sequence[tuple[str, str, int]]) -> Page:
        path = "sources/index.html"

        def render(_posts: Mapping[int, Post]) -> dict[str, str | bytes]:
            ctx = self._common(1, path)
            ctx.update(rows=rows)
            return {path: self._render("site/sources.html", **ctx)}

        return Page(path, _key(self.site_fp, path, json.dumps(rows)), (), render)

    def _day_page(self, day: str, stamps: Sequence[PostStamp], fp: Mapping[int, str]) -> Page:
        path = f"days/{day}.html"
        ids = tuple(s.article_id for s in reversed(stamps))

        def render(posts: Mapping[int, Post]) -> dict[str, str | bytes]:
            ctx = self._common(1, path)
            ctx.update(
                heading=self._date(day),
                cards=[self.card(posts[i], "../") for i in ids],
                older=None,
                newer=None,
                number=None,
                is_home=False,
            )
            return {path: self._render("site/list.html", **ctx)}

        return Page(path, _key(self.site_fp, path, *(fp[i] for i in ids)), ids, render)

    def _days_index(self, counts: Mapping[str, int]) -> Page:
        path = "days/index.html"
        rows = [(self._date(d), f"{d}.html", n) for d, n in sorted(counts.items(), reverse=True)]

        def render(_posts: Mapping[int, Post]) -> dict[str, str | bytes]:
            ctx = self._common(1, path)
            ctx.update(rows=rows)
            return {path: self._render("site/days.html", **ctx)}

        return Page(path, _key(self.site_fp, path, json.dumps(rows)), (), render)

    def _simple(self, path: str, template: str, depth: int) -> Page:
        def render(_posts: Mapping[int, Post]) -> dict[str, str | bytes]:
            return {path: self._render(template, **self._common(depth, path))}

        return Page(path, _key(self.site_fp, path), (), render)

    def _not_found(self) -> Page:
        """Served for any missing path, at any depth: its links start at the site root."""
        path = "404.html"

        def render(_posts: Mapping[int, Post]) -> dict[str, str | bytes]:
            ctx = self._common(0, path)
            ctx.update(root=self.base or "/", canonical=None)
            return {path: self._render("site/404.html", **ctx)}

        return Page(path, _key(self.site_fp, path), (), render)

    def _feeds(self, stamps: Sequence[PostStamp], fp: Mapping[int, str]) -> Page:
        chosen = list(reversed(stamps[-self.feed_items :]))
        ids = tuple(s.article_id for s in chosen)
        updated = {s.article_id: s.updated[:19] + "Z" for s in chosen}
        info = feeds.FeedInfo(
            title=self.channel,
            home=self.absolute("index.html") if self.base else "index.html",
            self_base=self.base,
            lang=self.ui["lang"],
        )

        def render(posts: Mapping[int, Post]) -> dict[str, str | bytes]:
            items = [
                feeds.Item(posts[i], self.absolute(f"posts/{i}.html"), updated[i]) for i in ids
            ]
            return {
                "atom.xml": feeds.atom(info, items),
                "rss.xml": feeds.rss(info, items),
                "feed.json": feeds.json_feed(info, items),
            }

        return Page("feeds", _key(self.site_fp, "feeds", *(fp[i] for i in ids)), ids, render)

    def _search(
        self, stamps: Sequence[PostStamp], fp: Mapping[int, str], ok: Callable[[str], bool]
    ) -> list[Page]:
        segs = search.segments(len(stamps))
        pages = []
        for seg in segs:
            if not ok(f"search/{seg.name}"):
                continue
            members = tuple(s.article_id for s in stamps[seg.start : seg.start + seg.count])

            def render(
                posts: Mapping[int, Post], seg: search.Segment = seg, ids: tuple[int, ...] = members
            ) -> dict[str, str | bytes]:
                return dict(search.segment_files(seg, [self._doc(posts[i]) for i in ids]))

            key = _key(search.FORMAT, self.site_fp, seg.name, *(fp[i] for i in members))
            pages.append(Page(f"search/{seg.name}", key, members, render))
        if ok("search/index"):
            meta = search.meta_file(segs)
            pages.append(Page("search/index", _key(meta), (), lambda _p: dict(meta)))
        return pages

    def _doc(self, post: Post) -> search.Doc:
        day = day_of(post.published)
        text = "\n".join(
            [
                title_line(post),
                post.title_zh or "",
                *post.summary,
                post.caption or "",
                *shown_paragraphs(post),
            ]
        )
        return search.Doc(
            url=f"posts/{post.id}.html",
            title=title_line(post),
            date=self._date(day.isoformat()) if day else "",
            snippet=snippet(post, 140),
            text=text,
        )

    def _sitemap(self, layout: _Layout, folders: Sequence[tuple[str, int]]) -> Page:
        """Every HTML page but 404; keyed by what decides the page names, not by them."""
        if not self.base:  # the build warns once
            return Page("sitemap", _key("no-sitemap"), (), lambda _p: {})
        ids = ",".join(map(str, layout.ids))
        days = list(layout.by_day)

        def render(_posts: Mapping[int, Post]) -> dict[str, str | bytes]:
            html = [f"posts/{i}.html" for i in layout.ids]
            html += _listing_names("", len(layout.ids), self.per_page)
            for folder, count in folders:
                html += _listing_names(folder, count, self.per_page)
            html.append("sources/index.html")
            html += [f"days/{day}.html" for day in days]
            html += ["days/index.html", "search.html"]
            return {"sitemap.xml": feeds.sitemap([self.base + p for p in html])}

        key = _key(self.site_fp, "sitemap", ids, *(f"{f}{n}" for f, n in folders), *days)
        return Page("sitemap", key, (), render)


def site_dir(ws: Workspace, out: str | Path | None = None) -> Path:
    chosen = Path(out) if out is not None else Path(str(ws.config["site.path"]))
    return chosen if chosen.is_absolute() else (Path.cwd() / chosen if out else ws.home / chosen)


def build_site(
    ws: Workspace,
    out: str | Path | None = None,
    *,
    full: bool = False,
    fetcher: Fetcher | None = None,
) -> BuildReport:
    """Render the site of ``ws`` into ``out`` (default ``HOME/site``); see the module doc."""
    return SiteBuilder(ws, site_dir(ws, out), full=full, fetcher=fetcher).build()
