"""Metadata from raw pages: headline, source, dates, authors, language."""

from __future__ import annotations

import json
from pathlib import Path

import lxml.html
import pytest

from waikan.extract.metadata import (
    Metadata,
    extract_metadata,
    jsonld_nodes,
    strip_site_suffix,
)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
SAMPLES = ROOT / "src" / "waikan" / "demo" / "samples"


def _golden() -> list[tuple[Path, Path]]:
    pairs = [(DATA / "reuters-blinken-wang.html", DATA / "reuters-blinken-wang.expected.json")]
    for html in sorted(SAMPLES.glob("*.html")):
        pairs.append((html, DATA / "demo" / f"{html.stem}.expected.json"))
    return [(h, e) for h, e in pairs if h.exists() and e.exists()]


def _page(html: str) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(html)


def _meta(html: str, url: str | None = "https://www.example.com/news/story") -> Metadata:
    return extract_metadata(_page(html), url)


@pytest.mark.parametrize(("html", "expected"), _golden(), ids=lambda p: p.name)
def test_golden_pages(html: Path, expected: Path) -> None:
    want = json.loads(expected.read_text(encoding="utf-8"))
    got = extract_metadata(_page(html.read_text(encoding="utf-8")), None)
    assert got.title == want["title"]
    assert got.source == want["source"]
    assert got.published == want.get("published")
    if "language" in want:
        assert got.language == want["language"]


def test_reuters_published_is_not_modified() -> None:
    page = DATA / "reuters-blinken-wang.html"
    got = extract_metadata(_page(page.read_text(encoding="utf-8")), None)
    assert got.published == "2023-10-27T14:03:40Z"
    assert got.modified is not None and got.modified > got.published
    assert got.authors == ("Humeyra Pamuk", "Simon Lewis")
    assert got.page_type == "NewsArticle"
    assert got.is_accessible_for_free is True


# ------------------------------------------------------------ headline


@pytest.mark.parametrize(
    ("title", "names", "want"),
    [
        ("Blinken meets Wang | Reuters", ["Reuters"], "Blinken meets Wang"),
        ("Pier reopens - BBC News", ["BBC News"], "Pier reopens"),
        ("Beavers return – The Guardian", ["The Guardian"], "Beavers return"),
        ("Beavers return | Environment | The Guardian", ["The Guardian", "Environment"],
         "Beavers return"),
        ("Storm hits coast | CNN", ["CNN"], "Storm hits coast"),
        ("Storm hits coast - Tehran Times", ["tehrantimes"], "Storm hits coast"),
        ("Storm hits coast | Reuters.com", ["Reuters"], "Storm hits coast"),
        ("Reuters: Storm hits the coast again", ["Reuters"], "Storm hits the coast again"),
        # separators inside the headline stay
        ("Biden: 'We will not back down' | AP News", ["AP News"], "Biden: 'We will not back down'"),
        ("Rain - or shine - at the fair", ["Example"], "Rain - or shine - at the fair"),
        ("Storm hits coast", ["CNN"], "Storm hits coast"),
        ("  Storm \n hits   coast  ", [], "Storm hits coast"),
    ],
)
def test_strip_site_suffix(title: str, names: list[str], want: str) -> None:
    assert strip_site_suffix(title, names) == want


def test_h1_wins_over_jsonld_and_og() -> None:
    html = """<html><head><title>SEO title | Site</title>
    <meta property="og:title" content="Og headline">
    <script type="application/ld+json">{"@type":"NewsArticle","headline":"LD headline"}</script>
    </head><body><article><h1> Visible
    headline </h1><p>x</p></article></body></html>"""
    assert _meta(html).title == "Visible headline"


def test_h1_picks_the_article_headline_among_several() -> None:
    html = """<html><head><meta property="og:title" content="Ten things about Happy Valley">
    <meta property="og:site_name" content="Example"></head><body>
    <header><h1>Example</h1></header>
    <h1>Blog</h1>
    <main><article><h1>Ten things about Happy Valley</h1></article></main>
    <aside><h1>Newsletter</h1></aside></body></html>"""
    assert _meta(html).title == "Ten things about Happy Valley"


def test_h1_without_section_label_and_watch_tag() -> None:
    html = """<html><body><article><h1><div class="entry-section"><a>Politics | </a></div>
    <span class="title">Governor vetoes ban</span></h1></article>
    <h1 hidden>Hidden</h1></body></html>"""
    assert _meta(html).title == "Governor vetoes ban"
    html = "<html><body><h1>Singer brings house down at finale [Watch]</h1></body></html>"
    assert _meta(html).title == "Singer brings house down at finale"


def test_no_h1_falls_back_to_og_then_title_with_suffix_stripped() -> None:
    html = """<html><head><title>Healing through art | The Daily World</title>
    <meta property="og:site_name" content="The Daily World">
    <meta property="og:title" content="Healing through art | The Daily World"></head>
    <body><p>text</p></body></html>"""
    assert _meta(html).title == "Healing through art"
    html = """<html><head><title>Export rises 26% - Tehran Times</title></head>
    <body><p>text</p></body></html>"""
    assert _meta(html, "https://www.tehrantimes.com/news/1").title == "Export rises 26%"


def test_no_title_at_all() -> None:
    assert _meta("<html><body><p>Just text</p></body></html>").title is None


# ------------------------------------------------------------ dates


def test_jsonld_datepublished_beats_meta_and_never_modified() -> None:
    html = """<html><head>
    <meta property="article:published_time" content="2023-10-27T15:00:00Z">
    <meta property="article:modified_time" content="2023-10-28T10:00:00Z">
    <script type="application/ld+json">{"@context":"https://schema.org","@type":"NewsArticle",
      "datePublished":"2023-10-27T10:03:40-04:00","dateModified":"2023-10-28T10:00:00Z"}</script>
    </head><body><h1>x</h1></body></html>"""
    got = _meta(html)
    assert got.published == "2023-10-27T14:03:40Z"
    assert got.modified == "2023-10-28T10:00:00Z"


def test_only_modified_gives_no_published() -> None:
    html = """<html><head><meta property="article:modified_time" content="2023-10-28T10:00:00Z">
    </head><body><h1>x</h1><time class="updated" datetime="2023-10-28T10:00:00Z">x</time>
    </body></html>"""
    got = _meta(html)
    assert got.published != "2023-10-28T10:00:00Z"
    assert got.modified == "2023-10-28T10:00:00Z"


def test_og_offset_converted_to_utc() -> None:
    html = """<html><head>
    <meta property="article:published_time" content="2024-04-18T00:30:05+01:00">
    </head><body><h1>x</h1></body></html>"""
    assert _meta(html).published == "2024-04-17T23:30:05Z"


def test_jsonld_time_without_zone_gives_day() -> None:
    html = """<html><head><script type="application/ld+json">
    {"@type":"NewsArticle","datePublished":"2024-02-06T17:55:00"}</script>
    </head><body><h1>x</h1></body></html>"""
    assert _meta(html).published == "2024-02-06"


@pytest.mark.parametrize(
    "meta",
    [
        '<meta name="pubdate" content="2023-12-22T16:09:34Z">',
        '<meta name="parsely-pub-date" content="2023-12-22T16:09:34Z">',
        '<meta name="sailthru.date" content="2023-12-22T16:09:34Z">',
        '<meta name="dc.date" content="2023-12-22T16:09:34Z">',
        '<meta itemprop="datePublished" content="2023-12-22T16:09:34Z">',
    ],
)
def test_other_published_meta(meta: str) -> None:
    html = f"<html><head>{meta}</head><body><h1>x</h1></body></html>"
    assert _meta(html).published == "2023-12-22T16:09:34Z"


def test_time_element_prefers_published_in_article() -> None:
    html = """<html><body>
    <aside><time datetime="2020-01-01T00:00:00Z">old</time></aside>
    <article><h1>x</h1><time class="updated" datetime="2024-03-06">u</time>
    <time datetime="2024-03-05">Tue 5 Mar 2024</time></article></body></html>"""
    assert _meta(html).published == "2024-03-05"


def test_time_text_in_related_cards_is_ignored() -> None:
    html = """<html><body><main><h1>Story</h1><p>text</p>
    <div class="related"><article class="card"><time>16 Feb 2024</time></article></div>
    <script>var data = {"pubDate":"2023-12-22"};</script></main></body></html>"""
    assert _meta(html).published == "2023-12-22"


def test_date_in_named_element() -> None:
    html = """<html><body><h1>Story</h1><dl><dd id="date_posted">December 18, 2023</dd></dl>
    <p>Retrieved February 17, 2024</p></body></html>"""
    assert _meta(html).published == "2023-12-18"


def test_day_only_jsonld_upgraded_by_same_day_instant() -> None:
    html = """<html><head><script type="application/ld+json">
    {"@type":"NewsArticle","datePublished":"2024-02-06 17:55:00"}</script></head>
    <body><article><h1>x</h1><time datetime="2024-02-06 17:55:00 UTC">Feb 6</time>
    </article></body></html>"""
    assert _meta(html).published == "2024-02-06T17:55:00Z"


# ------------------------------------------------------------ JSON-LD shapes


def test_graph_and_lists_and_id_references() -> None:
    html = """<html><head><script type="application/ld+json">[{"@context":"https://schema.org",
    "@graph":[{"@type":"WebSite","@id":"#site","name":"Example Site"},
      {"@type":"Organization","@id":"#org","name":"Example News"},
      {"@type":["NewsArticle"],"headline":"H","datePublished":"2023-10-27T14:03:40Z",
       "author":[{"@id":"#a1"},"Jane Roe"],"publisher":{"@id":"#org"},"inLanguage":"en-GB"},
      {"@type":"Person","@id":"#a1","name":"John Doe"}]}]</script></head>
    <body></body></html>"""
    got = _meta(html, None)
    assert got.title == "H"
    assert got.published == "2023-10-27T14:03:40Z"
    assert got.authors == ("John Doe", "Jane Roe")
    assert got.source == "Example News"
    assert got.language == "en"
    assert got.page_type == "NewsArticle"


def test_related_articles_do_not_win() -> None:
    html = """<html><head><script type="application/ld+json">{"@type":"WebPage",
    "mainEntity":{"@type":"NewsArticle","headline":"Main","datePublished":"2023-10-27"},
    "relatedLink":{"@type":"ItemList","itemListElement":[{"@type":"ListItem","item":
      {"@type":"NewsArticle","headline":"Other","datePublished":"2020-01-01"}}]}}</script>
    </head><body></body></html>"""
    got = _meta(html)
    assert (got.title, got.published) == ("Main", "2023-10-27")


def test_broken_and_hostile_jsonld_is_ignored() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    html = f"""<html><head>
    <script type="application/ld+json">{deep}</script>
    <script type="application/ld+json">{{"@type": "NewsArticle", broken</script>
    <script type="application/ld+json"><!--{{"@type":"NewsArticle","headline":"Ok",
      "datePublished":"2023-10-27T14:03:40Z",}}--></script></head><body></body></html>"""
    got = _meta(html)
    assert got.title == "Ok"
    assert got.published == "2023-10-27T14:03:40Z"


def test_deep_dict_nesting_is_bounded() -> None:
    deep = '{"a":' * 5000 + "1" + "}" * 5000
    assert jsonld_nodes(_page(
        f'<html><head><script type="application/ld+json">{deep}</script></head></html>'
    )) is not None


def test_paywall_flag_and_page_type_from_og() -> None:
    html = """<html><head><script type="application/ld+json">{"@type":"NewsArticle",
    "isAccessibleForFree":"False"}</script></head><body></body></html>"""
    assert _meta(html).is_accessible_for_free is False
    html = '<html><head><meta property="og:type" content="website"></head><body></body></html>'
    assert _meta(html).page_type == "website"


# ------------------------------------------------------------ source, authors, language


def test_source_from_domain_map_and_canonical() -> None:
    html = """<html><head><link rel="canonical" href="https://www.npr.org/2023/12/22/x">
    </head><body><h1>x</h1></body></html>"""
    assert _meta(html, None).source == "NPR"
    assert _meta("<html><body></body></html>", "https://www.bbc.co.uk/news/x").source == "BBC News"
    assert _meta("<html><body></body></html>", "https://unknown.example/x").source is None


def test_og_site_name_beats_domain_map() -> None:
    html = '<html><head><meta property="og:site_name" content="AP News"></head></html>'
    assert _meta(html, "https://apnews.com/article/x").source == "AP News"


def test_meta_authors_and_language() -> None:
    html = """<html lang="en-US"><head><meta name="author" content="By Jane Roe">
    </head><body></body></html>"""
    got = _meta(html)
    assert got.authors == ("Jane Roe",)
    assert got.language == "en"
    html = '<html><head><meta property="og:locale" content="fr_FR"></head></html>'
    assert _meta(html).language == "fr"


def test_extract_does_not_modify_tree() -> None:
    html = """<html><head><title>T</title></head><body><h1>H</h1>
    <time>not a date</time><p>x</p></body></html>"""
    tree = _page(html)
    before = lxml.html.tostring(tree)
    extract_metadata(tree, None)
    assert lxml.html.tostring(tree) == before


def test_zoneless_jsonld_time_upgraded_by_matching_zoned_meta() -> None:
    html = """<html><head><script type="application/ld+json">
    {"@type":"NewsArticle","datePublished":"2023-12-22T23:30:00"}</script>
    <meta property="article:published_time" content="2023-12-23T04:30:00Z">
    </head><body><h1>x</h1></body></html>"""
    assert _meta(html).published == "2023-12-23T04:30:00Z"


def test_zoneless_time_not_upgraded_by_a_different_instant() -> None:
    html = """<html><head><script type="application/ld+json">
    {"@type":"NewsArticle","datePublished":"2023-12-22T23:30:00"}</script>
    <meta property="article:published_time" content="2023-12-22T10:07:00Z">
    </head><body><h1>x</h1></body></html>"""
    assert _meta(html).published == "2023-12-22"


@pytest.mark.parametrize(
    ("h1", "want"),
    [
        ("Let kids be kids | Editorial", "Let kids be kids"),
        ("Opinion | Republicans follow Trump", "Republicans follow Trump"),
        ("Review | Analysis", "Review | Analysis"),
        ("Video games | the best of 2023", "Video games | the best of 2023"),
    ],
)
def test_rubric_around_headline(h1: str, want: str) -> None:
    assert _meta(f"<html><body><h1>{h1}</h1></body></html>").title == want


def test_hostile_page_sizes_stay_fast() -> None:
    import time

    h1s = "".join(f"<h1>{'b' * 390}{i}</h1>" for i in range(5000))
    og = f"<meta property='og:title' content='{'a' * 300}'>"
    html = f"<html><head>{og}</head><body>{h1s}</body></html>"
    tree = _page(html)
    start = time.monotonic()
    extract_metadata(tree, None)
    assert time.monotonic() - start < 10


def test_logo_h1_with_long_site_name_is_skipped() -> None:
    html = """<html><head><meta property="og:site_name" content="The Sydney Morning Herald Online">
    <meta property="og:title" content="Floods cut off towns in the north"></head><body>
    <header><h1>The Sydney Morning Herald Online</h1></header><p>x</p></body></html>"""
    assert _meta(html).title == "Floods cut off towns in the north"
