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
from importlib.resources import files
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
from waikan.pipeline import post_from
from waikan.render import feeds, search
from waikan.render._files import write_bytes, write_if_changed
from waikan.render.images import Fetcher, Images, config_fetcher, is_http
from waikan.render.post import day_of, meta_line, timestamp, title_line
from waikan.store import PostStamp, Store
from waikan.workspace import Workspace

__all__ = ["SITE_STATUSES", "BuildReport", "build_site", "site_posts"]

FORMAT = "1"  # bump when the output changes in ways the keys cannot see
MANIFEST = ".waikan-build.json"
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


def site_posts(store: Store) -> list[PostStamp]:
    """The posts the site and its feeds show, oldest post first.

    SPEC §2: approved and published posts; in ``auto`` review mode (the only
    mode so far) a summarized post counts as approved at once. The review-mode
    switch changes this one function.
    """
    return store.post_stamps(SITE_STATUSES)


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
        )
        stamps = site_posts(self.ws.store)
        self.report.posts = len(stamps)
        pages = self.plan(stamps, static)

        old = {} if self.full else self._read_manifest()
        existing = self._existing_files() if old else set()
        dirty = []
        for page in pages:
            entry = old.get(page.name)
            if entry is None or entry[0] != page.key or not existing.issuperset(entry[1]):
                dirty.append(page)
        needed = sorted({i for page in dirty for i in page.ids})
        posts = self._load_posts(needed)

        manifest: dict[str, tuple[str, list[str]]] = {}
        fresh = {page.name for page in dirty}
        for page in pages:
            if page.name not in fresh:
                manifest[page.name] = old[page.name]
                self.report.unchanged += len(old[page.name][1])
                continue
            produced = page.render(posts)
            self.report.rendered_pages += 1
            for rel, data in produced.items():
                raw = data.encode("utf-8") if isinstance(data, str) else data
                if write_if_changed(self.out / rel, raw):
                    self.report.written.append(rel)
                else:
                    self.report.unchanged += 1
            manifest[page.name] = (page.key, sorted(produced))
        self._remove_stale(old, manifest)
        if dirty or self.report.removed or len(manifest) != len(old):
            self._write_manifest(manifest)
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

    def _read_manifest(self) -> dict[str, tuple[str, list[str]]]:
        """The last build's pages: name → (key, files); empty when absent or from elsewhere."""
        try:
            data = json.loads((self.out / MANIFEST).read_text(encoding="utf-8"))
            if data.get("format") != FORMAT or data.get("site") != self.site_fp:
                return {}  # other templates or settings: every page changes anyway
            keys, files = data["keys"], data["files"]
            return {name: (key, files.get(name) or [name]) for name, key in keys.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}

    def _write_manifest(self, pages: Mapping[str, tuple[str, list[str]]]) -> None:
        # A page whose only file is its name (every post page) stores no file list.
        data = {
            "format": FORMAT,
            "site": self.site_fp,
            "keys": {name: key for name, (key, _files) in pages.items()},
            "files": {name: files for name, (_key, files) in pages.items() if files != [name]},
        }
        write_bytes(self.out / MANIFEST, json.dumps(data, separators=(",", ":")).encode())

    def _existing_files(self) -> set[str]:
        found: set[str] = set()
        cut = len(str(self.out)) + 1
        for folder, _dirs, names in os.walk(self.out):
            prefix = (folder[cut:] + "/") if len(folder) >= cut else ""
            found.update(prefix + n for n in names)
        return found

    def _remove_stale(
        self,
        old: Mapping[str, tuple[str, list[str]]],
        new: Mapping[str, tuple[str, list[str]]],
    ) -> None:
        keep = {f for _key, produced in new.values() for f in produced}
        for _key, produced in old.values():
            for rel in produced:
                if rel in keep:
                    continue
                keep.add(rel)  # once
                path = self.out / rel
                try:
                    path.unlink()
                    self.report.removed.append(rel)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise RenderError(f"cannot remove {path}: {exc.strerror}") from None

    def _load_posts(self, ids: Sequence[int]) -> dict[int, Post]:
        if not ids:
            return {}
        return {
            article.id: post_from(self.config, article, summary)
            for article, summary in self.ws.store.post_records(ids)
        }

    # -- the plan: every page with its key --
    def plan(self, stamps: list[PostStamp], static: Mapping[str, bytes]) -> list[Page]:
        fp = {s.article_id: _fp(s) for s in stamps}
        slugs = source_slugs(s.source_name or "" for s in stamps)
        pages: list[Page] = []

        static_files = {f"static/{name}": data for name, data in static.items()}
        pages.append(Page("static", self.site_fp, (), lambda _p: dict(static_files)))

        for s in stamps:
            pages.append(self._post_page(s, fp[s.article_id], slugs))

        pages += self._listing("", self.ui["latest"], stamps, fp, depth=0)

        by_source: dict[str, list[PostStamp]] = defaultdict(list)
        for s in stamps:
            by_source[s.source_name or ""].append(s)
        rows = []
        for name, members in sorted(by_source.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            label = name or self.ui["unknown_source"]
            folder = f"sources/{slugs[name]}/"
            pages += self._listing(folder, label, members, fp, depth=2)
            rows.append((label, f"{slugs[name]}/index.html", len(members)))
        pages.append(self._sources_index(rows))

        by_day: dict[str, list[PostStamp]] = defaultdict(list)
        for s in stamps:
            if (when := day_of(s.published)) is not None:
                by_day[when.isoformat()].append(s)
        for day, members in by_day.items():
            pages.append(self._day_page(day, members, fp))
        pages.append(self._days_index({d: len(m) for d, m in by_day.items()}))

        pages.append(self._simple("search.html", "site/search.html", depth=0))
        pages.append(self._not_found())
        pages.append(self._feeds(stamps, fp))
        pages += self._search(stamps, fp)
        html_pages = [p.name for p in pages if p.name.endswith(".html") and p.name != "404.html"]
        pages.append(self._sitemap(html_pages))
        return pages

    def _post_page(self, s: PostStamp, fp: str, slugs: Mapping[str, str]) -> Page:
        path = f"posts/{s.article_id}.html"
        slug = slugs[s.source_name or ""]

        def render(posts: Mapping[int, Post]) -> dict[str, str | bytes]:
            post = posts[s.article_id]
            day = day_of(post.published)
            image = self.images.local(post.image_url)
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
    ) -> list[Page]:
        """``{folder}index.html`` (newest) and ``{folder}page/K.html`` numbered from the oldest."""
        n, total = self.per_page, len(stamps)
        count = (total + n - 1) // n
        pages = []
        newest = list(reversed(stamps[-n:]))
        older = f"page/{(total - n - 1) // n + 1}.html" if total > n else None
        pages.append(
            self._list_page(f"{folder}index.html", depth, title, newest, fp, older, None, None)
        )
        for k in range(1, count + 1):
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

    def _search(self, stamps: Sequence[PostStamp], fp: Mapping[int, str]) -> list[Page]:
        segs = search.segments(len(stamps))
        pages = []
        for seg in segs:
            members = tuple(s.article_id for s in stamps[seg.start : seg.start + seg.count])

            def render(
                posts: Mapping[int, Post], seg: search.Segment = seg, ids: tuple[int, ...] = members
            ) -> dict[str, str | bytes]:
                return dict(search.segment_files(seg, [self._doc(posts[i]) for i in ids]))

            key = _key(search.FORMAT, self.site_fp, seg.name, *(fp[i] for i in members))
            pages.append(Page(f"search/{seg.name}", key, members, render))
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

    def _sitemap(self, html_pages: Sequence[str]) -> Page:
        if not self.base:
            self.report.warnings.append(
                "site.base_url is not set: sitemap.xml left out, feeds use relative links"
            )
            return Page("sitemap", _key("no-sitemap"), (), lambda _p: {})
        urls = [self.absolute(p) for p in html_pages]

        def render(_posts: Mapping[int, Post]) -> dict[str, str | bytes]:
            return {"sitemap.xml": feeds.sitemap(urls)}

        return Page("sitemap", _key(self.site_fp, *urls), (), render)


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
