"""The built site in a real browser: Playwright driving Debian's headless Chromium.

The site is built by the real CLI from the seed page (summary from a loopback
OpenAI-compatible server, lead photo from a loopback image server) plus a
hostile article, then served over loopback HTTP. Screenshots land in
``test-artifacts/site/``.
"""

from __future__ import annotations

import re
import struct
import unicodedata
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import DATA, ROOT, SEED, SEED_SUMMARY_LINE, run_inproc
from tests.render.site_support import BASE_URL, SiteServer, add_post, workspace
from tests.servers.openai_server import FakeLLM
from tests.servers.pages import PageServer

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "site"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HOSTILE_TITLE = "<script>alert('title')</script> Evil\"><img src=x onerror=alert('t2')>"
HOSTILE_CAPTION = "<img src=x onerror=alert('caption')> javascript:alert('cap')"
HOSTILE_BODY = (
    "<script>alert('body')</script> The hostile body paragraph stays text.",
    "<a href=\"javascript:alert('link')\">click</a> <svg onload=alert('svg')>",
)
HOSTILE_SUMMARY = (
    "这篇报道描述了一次恶意注入测试<script>alert('summary')</script>，内容应当以纯文本显示。",
    "报道指出，javascript:alert('zh') 这样的链接不会被执行。",
    "报道还提到<img src=x onerror=alert('zh2')>这样的图片标签只会显示为文字。",
    "这一报道强调了转义的重要性。",
)


def png(width: int, height: int) -> bytes:
    """A real PNG (a solid colour), so the lead photo has a size in the screenshots."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + b"\x2a\x5d\x8c" * width
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(row * height, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def seed_summary() -> list[str]:
    return SEED.read_text(encoding="utf-8").split("\n")[SEED_SUMMARY_LINE].split(" ")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("browser-site")
    home = tmp / "ws"
    image = png(1200, 800)

    def serve_png(h: Any) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "image/png")
        h.send_header("Content-Length", str(len(image)))
        h.end_headers()
        h.wfile.write(image)

    with PageServer({"/lead.png": serve_png}) as images:
        page = (DATA / "reuters-blinken-wang.html").read_text(encoding="utf-8")
        page = re.sub(
            r"https://www\.reuters\.com/resizer/v2/[^\"\s]+", f"{images.base}/lead.png", page
        )
        seed_page = tmp / "reuters-blinken-wang.html"
        seed_page.write_text(page, encoding="utf-8")
        with FakeLLM(api_key="sk-browser", model="m", answer="\n\n".join(seed_summary())) as llm:
            env = {
                "WAIKAN_HOME": str(home),
                "WAIKAN_CHANNEL_NAME": "真相集中营",
                "WAIKAN_LLM_BASE_URL": llm.url,
                "WAIKAN_LLM_MODEL": "m",
                "WAIKAN_LLM_API_KEY": "sk-browser",
                "WAIKAN_SITE_BASE_URL": BASE_URL,
                "WAIKAN_FETCH_ALLOW_PRIVATE_NETWORKS": "true",
            }
            added = run_inproc(["add", str(seed_page)], env)
            assert added.code == 0, added.err
            assert run_inproc(["summarize"], env).code == 0
        ws = workspace(home, **{"channel.name": "真相集中营"})
        for n in range(2, 6):
            add_post(ws, n, source="BBC News")
        hostile = add_post(
            ws,
            6,
            url="https://evil.example/a?x=\"><script>alert('url')</script>",
            title=HOSTILE_TITLE,
            source="<b onmouseover=alert('src')>Evil</b>",
            caption=HOSTILE_CAPTION,
            paragraphs=HOSTILE_BODY,
            image_url="javascript:alert('img')",
            paragraphs_zh=HOSTILE_SUMMARY,
        )
        ws.close()
        built = run_inproc(["build"], env)
        assert built.code == 0, built.err
        assert images.hits.count("/lead.png") == 1

    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: run `make deps-browser` (apt-get chromium)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with SiteServer(home / "site") as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield {"url": server.url, "browser": browser, "home": home, "hostile": hostile}
        finally:
            browser.close()


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split())


def _no_horizontal_scroll(page: Any) -> None:
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"horizontal scroll of {overflow}px"


@pytest.mark.parametrize("width", [390, 1280])
def test_post_page_shows_the_seed_fields_in_order(site: dict[str, Any], width: int) -> None:
    seed_lines = SEED.read_text(encoding="utf-8").split("\n")
    context = site["browser"].new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(site["url"] + "posts/1.html")
    text = _norm(page.inner_text("body"))
    # Channel, title, meta, the 4 summary paragraphs, timestamp, caption, 8 body paragraphs.
    wanted = [seed_lines[0], seed_lines[2], seed_lines[4], *seed_summary(), *seed_lines[8:9]]
    wanted += [seed_lines[9]] + [ln for ln in seed_lines[11:] if ln]
    at = -1
    for line in wanted:
        found = text.find(_norm(line), at + 1)
        assert found > at, f"not found in order: {line[:60]!r}"
        at = found
    assert page.inner_text("p.meta") == seed_lines[4]  # NBSPs survive into the page
    # The lead image is lazy and decoded asynchronously: wait until it has loaded.
    page.locator("figure img").scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelector('figure img').complete", timeout=15_000)
    assert page.evaluate("() => document.querySelector('figure img').naturalWidth") == 1200
    assert page.evaluate("() => document.fonts.check('16px \"Noto Sans CJK SC\"', '布林肯')")
    page.screenshot(path=str(ARTIFACTS / f"post-{width}.png"), full_page=True)
    _no_horizontal_scroll(page)
    page.goto(site["url"] + "index.html")
    assert "真相集中营" in page.inner_text("header")
    page.screenshot(path=str(ARTIFACTS / f"index-{width}.png"), full_page=True)
    _no_horizontal_scroll(page)
    context.close()
    assert (ARTIFACTS / f"post-{width}.png").stat().st_size > 10_000


def test_dark_mode_follows_the_system(site: dict[str, Any]) -> None:
    colors = {}
    for scheme in ("light", "dark"):
        context = site["browser"].new_context(color_scheme=scheme)
        page = context.new_page()
        page.goto(site["url"] + "posts/1.html")
        colors[scheme] = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        if scheme == "dark":
            page.screenshot(path=str(ARTIFACTS / "post-dark.png"))
        context.close()
    assert colors["light"] != colors["dark"]


@pytest.mark.parametrize("query", ["布林肯", "Blinken", "blinken wang"])
def test_search_finds_the_seed_post(site: dict[str, Any], query: str) -> None:
    page = site["browser"].new_page()
    page.goto(site["url"] + "search.html?q=" + query)
    page.wait_for_function("() => document.documentElement.hasAttribute('data-search-done')")
    hrefs = page.eval_on_selector_all("#search-results a", "els => els.map(e => e.href)")
    assert site["url"] + "posts/1.html" in hrefs
    assert site["url"] + "posts/2.html" not in hrefs
    page.close()


def test_search_by_typing_and_no_results(site: dict[str, Any]) -> None:
    page = site["browser"].new_page()
    page.goto(site["url"] + "search.html")
    page.fill("#q", "王毅")
    page.click("button[type=submit]")
    page.wait_for_function("() => document.documentElement.hasAttribute('data-search-done')")
    assert page.locator("#search-results li").count() == 1
    page.goto(site["url"] + "search.html?q=zzzqqq")
    page.wait_for_function("() => document.documentElement.hasAttribute('data-search-done')")
    assert page.locator("#search-results li").count() == 0
    assert "没有找到" in page.inner_text("#search-status")
    page.close()


def test_search_works_from_a_file_url(site: dict[str, Any]) -> None:
    page = site["browser"].new_page()
    page.goto((site["home"] / "site" / "search.html").as_uri() + "?q=Blinken")
    page.wait_for_function("() => document.documentElement.hasAttribute('data-search-done')")
    assert page.locator("#search-results li").count() == 1
    page.close()


def test_hostile_article_renders_as_text_and_runs_nothing(site: dict[str, Any]) -> None:
    dialogs: list[str] = []
    page = site["browser"].new_page()
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    hostile = site["hostile"]
    page.goto(site["url"] + f"posts/{hostile}.html")
    page.wait_for_load_state("load")
    body = page.inner_text("body")
    for payload in (
        "<script>alert('title')</script>",
        "<img src=x onerror=alert('caption')>",
        "<script>alert('body')</script>",
        "<script>alert('summary')</script>",
        "<b onmouseover=alert('src')>Evil</b>",
    ):
        assert payload in body, payload
    assert page.evaluate("() => document.scripts.length") == 0
    handlers = "[onerror],[onload],[onmouseover],[onclick]"
    assert page.evaluate(f"() => document.querySelectorAll('{handlers}').length") == 0
    assert page.evaluate("() => document.querySelectorAll('img').length") == 0
    hrefs = page.eval_on_selector_all("a", "els => els.map(e => e.getAttribute('href'))")
    assert not [h for h in hrefs if h.strip().lower().startswith("javascript:")]
    page.screenshot(path=str(ARTIFACTS / "hostile-post.png"), full_page=True)
    for path in ("index.html", "sources/index.html", "search.html?q=alert"):
        page.goto(site["url"] + path)
        page.wait_for_load_state("load")
        if path.startswith("search"):
            page.wait_for_function(
                "() => document.documentElement.hasAttribute('data-search-done')"
            )
            assert page.locator("#search-results li").count() >= 1
            assert "<script>alert('title')</script>" in page.inner_text("#search-results")
        page.locator("a").first.hover()
        assert page.evaluate(f"() => document.querySelectorAll('{handlers}').length") == 0
    page.close()
    assert dialogs == []
