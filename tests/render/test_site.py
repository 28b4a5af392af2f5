"""``waikan build``: the static site, its feeds, incremental builds and bad input.

Real SQLite workspaces, the real CLI, real files; the browser tests are in
test_site_browser.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import feedparser
import pytest
from lxml import etree
from lxml import html as lxml_html
from tests.conftest import DATA, assert_one_line_error
from tests.render.site_support import BASE_URL, add_post, workspace
from tests.servers.pages import PageServer

from waikan.models import Status
from waikan.render import search
from waikan.render.site import build_site, site_posts

NBSP = "\u00a0"


def _build(home: Path, **settings: str):  # type: ignore[no-untyped-def]
    ws = workspace(home, **settings)
    try:
        return build_site(ws)
    finally:
        ws.close()


def _mtimes(site: Path) -> dict[str, int]:
    return {
        str(p.relative_to(site)): p.stat().st_mtime_ns
        for p in site.rglob("*")
        if p.is_file() and not p.name.startswith(".waikan-build.")
    }


def _age_all(site: Path) -> None:
    """Push every file's mtime back, so a rewrite shows even within the same clock tick."""
    for p in site.rglob("*"):
        if p.is_file():
            os.utime(p, ns=(1_000_000_000, 1_000_000_000))


def test_seed_post_page_layout_feeds_and_sitemap(waikan, home: Path) -> None:  # type: ignore[no-untyped-def]
    env = {"WAIKAN_LLM_BACKEND": "extractive", "WAIKAN_SITE_IMAGES": "false"}
    assert waikan("add", str(DATA / "reuters-blinken-wang.html"), env=env).code == 0
    assert waikan("summarize", env=env).code == 0
    ws = workspace(home)
    for n in range(2, 5):
        add_post(ws, n, source="The Guardian" if n % 2 else "BBC News")
    ws.close()
    built = waikan("--set", f"site.base_url={BASE_URL}", "build", env=env)
    assert built.code == 0, built.err
    site = home / "site"

    page = (site / "posts" / "1.html").read_text(encoding="utf-8")
    tree = lxml_html.fromstring(page)
    # The seed's fields, in the seed's order.
    texts = [
        tree.xpath("string(//a[@class='channel'])"),
        tree.xpath("string(//h1)"),
        tree.xpath("string(//p[@class='meta'])"),
        tree.xpath("string(//section[@class='summary']/p[1])"),
        tree.xpath("string(//p[@class='timestamp'])"),
        tree.xpath("string(//figcaption)"),
        tree.xpath("string(//section[@class='original']/p[1])"),
    ]
    assert texts[0] == "外刊"
    assert (
        texts[1] == "Reuters-Blinken Wang meet as US-China gear up towards expected leaders summit"
    )
    assert texts[2] == f"October 27, 2023 {NBSP} 2{NBSP}min {NBSP} 370{NBSP}words"
    assert texts[4] == "2023-10-27T14:03:40Z"
    assert texts[5].endswith("REUTERS/Elizabeth Frantz")
    assert texts[6].startswith("U.S. Secretary of State Antony Blinken")
    at = page.index("<body")
    for text in texts:  # each field found after the one before it
        at = page.index(text.replace("'", "&#39;")[:40], at + 1)
    assert len(tree.xpath("//section[@class='original']/p")) == 8
    # Always a link to the original; absolute canonical and Open Graph from site.base_url.
    (original,) = tree.xpath("//p[@class='source-link']/a/@href")
    assert original.startswith("https://www.reuters.com/world/us/blinken-wang-meet")
    assert tree.xpath("//link[@rel='canonical']/@href") == [f"{BASE_URL}/posts/1.html"]
    assert tree.xpath("//meta[@property='og:url']/@content") == [f"{BASE_URL}/posts/1.html"]
    assert tree.xpath("//meta[@property='og:title']/@content") == [texts[1]]

    # Feeds: valid for feedparser, every post, full summary, links to the post and original.
    for name in ("atom.xml", "rss.xml", "feed.json"):
        assert (site / name).is_file()
    for name in ("atom.xml", "rss.xml"):
        parsed = feedparser.parse((site / name).read_bytes())
        assert not parsed.bozo, (name, parsed.get("bozo_exception"))
        assert len(parsed.entries) == 4
        links = {e.link for e in parsed.entries}
        assert links == {f"{BASE_URL}/posts/{i}.html" for i in range(1, 5)}
    atom = feedparser.parse((site / "atom.xml").read_bytes())
    seed_entry = next(e for e in atom.entries if e.link.endswith("/posts/1.html"))
    assert "Antony Blinken" in seed_entry.content[0].value
    assert any("reuters.com/world" in link.href for link in seed_entry.links)
    other = next(e for e in atom.entries if e.link.endswith("/posts/2.html"))
    assert "这一报道强调了社区合作" in other.content[0].value  # the full summary
    jf = json.loads((site / "feed.json").read_text(encoding="utf-8"))
    assert jf["version"] == "https://jsonfeed.org/version/1.1"
    assert {i["url"] for i in jf["items"]} == {f"{BASE_URL}/posts/{i}.html" for i in range(1, 5)}
    assert any(
        i.get("external_url", "").startswith("https://www.reuters.com/") for i in jf["items"]
    )
    # feedparser 6.0 does not read JSON Feed: check the spec's required members instead.
    assert all(i["id"] and (i["content_html"] or i["content_text"]) for i in jf["items"])
    assert all("这" in i["content_html"] or "U.S." in i["content_html"] for i in jf["items"])

    sitemap = etree.fromstring((site / "sitemap.xml").read_bytes())
    locs = {el.text for el in sitemap.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")}
    assert {f"{BASE_URL}/posts/{i}.html" for i in range(1, 5)} <= locs
    assert f"{BASE_URL}/index.html" in locs and f"{BASE_URL}/sources/bbc-news/index.html" in locs

    # Source and day pages, 404.
    reuters = (site / "sources" / "reuters" / "index.html").read_text(encoding="utf-8")
    assert "posts/1.html" in reuters and "posts/2.html" not in reuters
    day = (site / "days" / "2023-10-27.html").read_text(encoding="utf-8")
    assert "../posts/1.html" in day
    not_found = (site / "404.html").read_text(encoding="utf-8")
    assert f'href="{BASE_URL}/index.html"' in not_found  # works at any depth


def test_pages_are_numbered_from_the_oldest_post(home: Path) -> None:
    ws = workspace(home, **{"site.per_page": "2"})
    for n in range(1, 6):
        add_post(ws, n)
    build_site(ws)
    site = home / "site"
    page1 = (site / "page" / "1.html").read_bytes()
    page2 = (site / "page" / "2.html").read_bytes()
    assert b"posts/1.html" in page1 and b"posts/2.html" in page1
    assert b"posts/3.html" in page2 and b"posts/4.html" in page2
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "posts/5.html" in index and "posts/4.html" in index and "posts/3.html" not in index
    assert 'href="page/2.html"' in index  # the newest page with a post not on the index

    add_post(ws, 6)
    add_post(ws, 7)
    build_site(ws)
    ws.close()
    assert (site / "page" / "1.html").read_bytes() == page1
    assert (site / "page" / "2.html").read_bytes() == page2
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "posts/7.html" in index and "posts/6.html" in index and "posts/5.html" not in index


def test_incremental_build_rewrites_only_what_changes(home: Path) -> None:
    ws = workspace(home, **{"site.per_page": "10"})
    for n in range(1, 31):
        add_post(ws, n, source="BBC News" if n % 3 else "NPR")
    first = build_site(ws)
    site = home / "site"
    assert first.posts == 30
    _age_all(site)
    before = _mtimes(site)

    unchanged = build_site(ws)
    assert unchanged.written == [] and unchanged.rendered_pages == 0
    assert _mtimes(site) == before

    new_id = add_post(ws, 31, source="NPR", published="2024-03-05T10:00:00Z")
    second = build_site(ws)
    ws.close()
    after = _mtimes(site)
    changed = {p for p in after if after[p] != before.get(p)}
    assert set(second.written) == changed
    must = {
        f"posts/{new_id}.html",
        "index.html",
        "page/4.html",  # the 31st post opens a new page
        "page/3.html",  # whose "newer" link now points to page 4
        "sources/npr/index.html",
        "sources/index.html",
        "days/2024-03-05.html",
        "days/index.html",
        "atom.xml",
        "rss.xml",
        "feed.json",
        "sitemap.xml",
        "search/index.js",
    }
    assert must <= changed, must - changed
    allowed_prefixes = ("search/s0/", "sources/npr/page/")
    extra = {p for p in changed - must if not p.startswith(allowed_prefixes)}
    assert extra == set()
    # Old posts, full archive pages, other sources' pages, static files: untouched.
    for keep in ("posts/1.html", "posts/30.html", "page/1.html", "page/2.html", "404.html"):
        assert after[keep] == before[keep]
    assert after["sources/bbc-news/index.html"] == before["sources/bbc-news/index.html"]
    assert after["static/site.css"] == before["static/site.css"]
    assert second.rendered_pages < 20


def test_removed_post_leaves_the_site(home: Path) -> None:
    ws = workspace(home)
    ids = [add_post(ws, n) for n in range(1, 4)]
    build_site(ws)
    site = home / "site"
    assert (site / "posts" / f"{ids[1]}.html").is_file()
    ws.store.set_status(ids[1], Status.REJECTED, "editor")
    report = build_site(ws)
    ws.close()
    assert f"posts/{ids[1]}.html" in report.removed
    assert not (site / "posts" / f"{ids[1]}.html").exists()
    assert f"posts/{ids[1]}.html" not in (site / "index.html").read_text(encoding="utf-8")
    parsed = feedparser.parse((site / "atom.xml").read_bytes())
    assert len(parsed.entries) == 2


def test_site_posts_rule(home: Path) -> None:
    ws = workspace(home)
    ids = [add_post(ws, n) for n in range(1, 7)]
    for article_id, status in zip(
        ids,
        (
            Status.SUMMARIZED,
            Status.APPROVED,
            Status.PUBLISHED,
            Status.NEEDS_REVIEW,
            Status.REJECTED,
            Status.FAILED,
        ),
        strict=True,
    ):
        ws.store.set_status(article_id, status)
    assert [s.article_id for s in site_posts(ws.store)] == ids[:3]
    ws.close()


def test_hostile_fields_are_escaped(home: Path) -> None:
    ws = workspace(home)
    add_post(
        ws,
        1,
        url="https://evil.example/a?x=\"><script>alert('url')</script>",
        title="<script>alert('title')</script> Evil\"><img src=x onerror=alert(1)>",
        source="<b onmouseover=alert('src')>Evil</b>",
        caption="<img src=x onerror=alert('caption')> javascript:alert('cap')",
        paragraphs=("<script>alert('body')</script>", '<a href="javascript:alert(1)">click</a>'),
        image_url="javascript:alert('img')",
    )
    build_site(ws)
    ws.close()
    site = home / "site"
    for path in site.rglob("*.html"):
        tree = lxml_html.fromstring(path.read_bytes())
        for el in tree.iter():
            if not isinstance(el.tag, str):
                continue
            assert not [a for a in el.attrib if a.lower().startswith("on")], (path, el.tag)
            for attr in ("href", "src"):
                value = el.get(attr, "")
                assert not value.strip().lower().startswith("javascript:"), (path, value)
            if el.tag == "script":
                assert el.get("src", "").endswith("static/search.js"), path
            assert el.tag != "img" or el.get("src", "").startswith("../media/")
    page = (site / "posts" / "1.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(&#39;caption&#39;)&gt;" in page
    for name in ("atom.xml", "rss.xml"):
        parsed = feedparser.parse((site / name).read_bytes())
        assert not parsed.bozo
        assert "<script>alert('title')</script>" in parsed.entries[0].title


def test_empty_workspace_builds_a_friendly_site(waikan, home: Path) -> None:  # type: ignore[no-untyped-def]
    result = waikan("--set", f"site.base_url={BASE_URL}", "build")
    assert result.code == 0, result.err
    assert "no posts yet" in result.out
    site = home / "site"
    assert "这里还没有文章" in (site / "index.html").read_text(encoding="utf-8")
    for name in ("atom.xml", "rss.xml"):
        parsed = feedparser.parse((site / name).read_bytes())
        assert not parsed.bozo and parsed.entries == []
    assert json.loads((site / "feed.json").read_text(encoding="utf-8"))["items"] == []
    assert (site / "404.html").is_file() and (site / "search" / "index.js").is_file()


def test_template_syntax_error_names_file_and_line(waikan, home: Path) -> None:  # type: ignore[no-untyped-def]
    ws = workspace(home)
    add_post(ws, 1)
    ws.close()
    user = home / "templates" / "site" / "post.html"
    user.parent.mkdir(parents=True)
    user.write_text('{% extends "site/base.html" %}\n{% block main %}\n{% if %}\n{% endblock %}\n')
    result = waikan("build")
    assert_one_line_error(result)
    assert f"{user}:3:" in result.err and "syntax" in result.err
    assert not (home / "site" / "posts").exists()  # nothing written before the check


def test_template_runtime_error_is_one_line(waikan, home: Path) -> None:  # type: ignore[no-untyped-def]
    ws = workspace(home)
    add_post(ws, 1)
    ws.close()
    user = home / "templates" / "site" / "list.html"
    user.parent.mkdir(parents=True)
    user.write_text(
        '{% extends "site/base.html" %}\n{% block main %}\n{{ no_such.thing }}\n{% endblock %}\n'
    )
    result = waikan("build")
    assert_one_line_error(result)
    assert "list.html" in result.err


def test_user_template_overrides_the_package_one(home: Path) -> None:
    ws = workspace(home)
    add_post(ws, 1)
    user = home / "templates" / "site" / "404.html"
    user.parent.mkdir(parents=True)
    user.write_text('{% extends "site/base.html" %}{% block main %}<p>自定义 404</p>{% endblock %}')
    build_site(ws)
    ws.close()
    assert "自定义 404" in (home / "site" / "404.html").read_text(encoding="utf-8")


def test_output_folder_not_writable(waikan, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ws = workspace(home)
    add_post(ws, 1)
    ws.close()
    a_file = tmp_path / "plain-file"
    a_file.write_text("x")
    result = waikan("build", "--out", str(a_file / "site"))
    assert_one_line_error(result)
    assert "cannot write the site" in result.err

    locked = tmp_path / "locked"
    locked.mkdir()
    mounted = False
    if os.geteuid() == 0:  # root ignores permission bits: a read-only file system is real
        mounted = (
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(locked)],
                capture_output=True,
            ).returncode
            == 0
        )
        target = locked if mounted else Path("/sys/waikan-site")
    else:
        locked.chmod(0o555)
        target = locked
    try:
        result = waikan("build", "--out", str(target))
        assert_one_line_error(result)
        assert "cannot write the site" in result.err
    finally:
        if mounted:
            subprocess.run(["umount", str(locked)], check=False)
        else:
            locked.chmod(0o755)


PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f"
    b"\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)


def _image(data: bytes, ctype: str):  # type: ignore[no-untyped-def]
    def answer(h) -> None:  # type: ignore[no-untyped-def]
        h.send_response(200)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    return answer


def test_lead_images_downloaded_through_the_fetcher(home: Path) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>'
    big = b"\xff\xd8\xff" + b"\0" * 5000
    routes = {
        "/lead.png": _image(PNG, "image/png"),
        "/evil.svg": _image(svg, "image/svg+xml"),
        "/big.jpg": _image(big, "image/jpeg"),
    }
    with PageServer(routes) as server:
        settings = {
            "site.images": "true",
            "fetch.allow_private_networks": "true",
            "site.image_max_bytes": "4096",
        }
        ws = workspace(home, **settings)
        add_post(ws, 1, image_url=f"{server.base}/lead.png")
        add_post(ws, 2, image_url=f"{server.base}/evil.svg")
        add_post(ws, 3, image_url=f"{server.base}/big.jpg")
        report = build_site(ws)
        again = build_site(ws, full=True)
        ws.close()
        hits = list(server.hits)
    site = home / "site"
    tree = lxml_html.fromstring((site / "posts" / "1.html").read_bytes())
    (src,) = tree.xpath("//figure//img/@src")
    assert src.startswith("../media/") and src.endswith(".png")
    assert (site / "posts" / src).resolve().read_bytes() == PNG
    assert tree.xpath("//meta[@property='og:image']/@content")[0].startswith(f"{BASE_URL}/media/")
    for n in (2, 3):
        page = lxml_html.fromstring((site / "posts" / f"{n}.html").read_bytes())
        assert page.xpath("//img") == [] and page.xpath("//figcaption")
    assert len(report.warnings) == 2
    assert any("not a JPEG" in w for w in report.warnings)
    assert any("max_bytes" in w or "larger" in w for w in report.warnings)
    assert hits.count("/lead.png") == 1  # the second build served it from the site
    assert not list((site / "media").glob("*.svg"))
    assert again.posts == 3


def test_private_image_refused_without_the_flag(home: Path) -> None:
    with PageServer({"/lead.png": _image(PNG, "image/png")}) as server:
        ws = workspace(home, **{"site.images": "true"})
        add_post(ws, 1, image_url=f"{server.base}/lead.png")
        report = build_site(ws)
        ws.close()
        assert server.hits == []
    assert any("private address" in w for w in report.warnings)


def test_traditional_variant(home: Path) -> None:
    ws = workspace(home, **{"channel.variant": "zh-Hant-TW"})
    add_post(ws, 1)
    build_site(ws)
    ws.close()
    page = (home / "site" / "posts" / "1.html").read_text(encoding="utf-8")
    assert '<html lang="zh-Hant-TW">' in page
    assert "搜尋" in page and "來源" in page and "搜索" not in page
    index = (home / "site" / "index.html").read_text(encoding="utf-8")
    assert "搜尋" in index


def test_search_index_terms_and_segments() -> None:
    assert search.terms("布林肯会见王毅") == {"布林", "林肯", "肯会", "会见", "见王", "王毅"}
    assert search.terms("Blinken's CAFÉ, 2023") == {"blinken", "s", "cafe", "2023"}
    assert search.terms("王") == {"王"}
    segs = search.segments(2345)
    assert [(s.name, s.count) for s in segs[:2]] == [("b0", 1000), ("b1000", 1000)]
    assert [(s.name, s.count) for s in segs[2:]] == [
        ("s2000", 100),
        ("s2100", 100),
        ("s2200", 100),
        ("s2300", 45),
    ]
    assert all(0 <= search.shard_of(t, 64) < 64 for t in ("布林", "blinken", "x"))


def test_search_files_find_a_post(home: Path) -> None:
    ws = workspace(home)
    add_post(ws, 1, title="Blinken meets Wang Yi", paragraphs_zh=("布林肯会见王毅。",))
    add_post(ws, 2)
    build_site(ws)
    ws.close()
    folder = home / "site" / "search" / "s0"
    for term in ("布林", "林肯", "blinken"):
        shard = folder / f"{search.shard_of(term, search.SMALL_SHARDS)}.js"
        payload = shard.read_text(encoding="utf-8")
        table = json.loads(payload[payload.index(",") + 1 : payload.rindex(")")])
        assert table[term] == [0], term
    docs = (folder / "docs.js").read_text(encoding="utf-8")
    assert "posts/1.html" in docs


@pytest.mark.parametrize("bad", ["0", "x"])
def test_bad_per_page_setting(waikan, bad: str) -> None:  # type: ignore[no-untyped-def]
    result = waikan("--set", f"site.per_page={bad}", "build")
    assert_one_line_error(result)
    assert "site.per_page" in result.err
