"""The desk in a real browser: Playwright driving Debian's headless Chromium.

A destination in ``review`` mode: an unreviewed post stays off the site and
its feeds until an editor approves it in the desk. Screenshots of the queue,
the article view and the dashboard at 1280 px and 390 px land in
``test-artifacts/desk/``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import ROOT
from tests.render.test_site_browser import CHROMIUM, LAUNCH_ARGS
from tests.web.support import PASSWORD, add_post, desk, review_config

from waikan.sources.repo import SourceRepo

ARTIFACTS = ROOT / "test-artifacts" / "desk"
HOSTILE = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


def _until(check: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _on_site(base: str, article_id: int) -> bool:
    page = httpx.get(f"{base}posts/{article_id}.html")
    feed = httpx.get(f"{base}feed.json")
    in_feed = feed.status_code == 200 and f"posts/{article_id}.html" in feed.text
    return page.status_code == 200 and in_feed


def _shots(page: Any, name: str) -> None:
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= width, f"{name} scrolls sideways at {width} px ({wide} px wide)"
    page.set_viewport_size({"width": 1280, "height": 900})


def test_review_in_the_browser(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail("Debian chromium is missing: run make deps-browser")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    home = tmp_path / "ws"
    review_config(home)
    with desk(home, (("ed", "editor"),)) as (server, ws):
        SourceRepo(ws.store).add(
            "https://hostile.example/feed", kind="rss", name=HOSTILE, language="en", settings={}
        )
        first = add_post(ws, 1)
        second = add_post(ws, 2)
        third = add_post(ws, 3)
        hostile = add_post(ws, 4, source=HOSTILE, title=HOSTILE)
        server.rebuilder.request()
        _until(lambda: httpx.get(server.url + "feed.json").status_code == 200, "first build")
        assert not _on_site(server.url, first)  # unreviewed: not on the site, not in feeds

        dialogs: list[str] = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(server.url + "desk/queue")
            assert "/desk/login" in page.url
            page.fill("input[name=name]", "ed")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/desk/queue")
            assert page.locator("tr.item").count() == 4
            _shots(page, "queue")
            page.keyboard.press("j")
            assert page.locator("tr.item.current").count() == 1

            # approve: the post reaches the site and its feeds
            page.goto(f"{server.url}desk/articles/{first}")
            page.click("#approve")
            page.wait_for_url(f"**/desk/articles/{first}?done=approve")
            assert page.inner_text("#status") == "approved"
            _until(lambda: _on_site(server.url, first), "the approved post on the site")

            # edit in a wrong number: the guard finding appears, highlighted
            page.goto(f"{server.url}desk/articles/{second}")
            text = page.input_value("#text")
            assert "两年" in text
            page.fill("#text", text.replace("两年", "十七年"))
            page.click("#save")
            page.wait_for_url(f"**/desk/articles/{second}?done=edit")
            findings = page.locator("li.finding").all_inner_texts()
            assert any("十七年" in f for f in findings), findings
            assert "十七年" in page.locator("mark.finding").all_inner_texts()
            assert page.inner_text("#status") == "needs_review"
            _shots(page, "article")
            assert "十七年" in page.inner_text("table.audit-log .dadd")

            # reject with a reason, keyboard first
            page.goto(f"{server.url}desk/articles/{third}")
            page.keyboard.press("r")
            page.keyboard.type("来源不可靠")
            page.click("#reject")
            page.wait_for_url(f"**/desk/articles/{third}?done=reject")
            assert page.inner_text("#status") == "rejected"
            assert "来源不可靠" in page.inner_text(".meta")

            # script payloads in a source, a title and an edited summary stay text
            page.goto(f"{server.url}desk/articles/{hostile}")
            page.fill("#text", f"摘要里的脚本{HOSTILE}不会执行。")
            page.click("#save")
            page.wait_for_url(f"**/desk/articles/{hostile}?done=edit")
            assert HOSTILE in page.inner_text("section.summary")
            for url in ("desk/queue", "desk/sources", f"desk/articles/{hostile}", "desk/audit"):
                page.goto(server.url + url)
                assert page.evaluate("window.__xss === undefined"), url
            page.goto(server.url + "desk/sources")
            assert HOSTILE in page.inner_text("table.sources")

            page.goto(server.url + "desk/dashboard")
            assert page.locator("figure svg").count() == 7
            _shots(page, "dashboard")
            browser.close()
        assert dialogs == []
    for name in ("queue", "article", "dashboard"):
        for width in (1280, 390):
            assert (ARTIFACTS / f"{name}-{width}.png").stat().st_size > 5000
