"""Lead photo: caption and credit as one line, absolute image URL."""

from __future__ import annotations

import json
from pathlib import Path

import lxml.html
import pytest

from waikan.extract.caption import join_caption, lead_photo

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
SAMPLES = ROOT / "src" / "waikan" / "demo" / "samples"


def _golden() -> list[tuple[Path, Path]]:
    pairs = [(DATA / "reuters-blinken-wang.html", DATA / "reuters-blinken-wang.expected.json")]
    for html in sorted(SAMPLES.glob("*.html")):
        pairs.append((html, DATA / "demo" / f"{html.stem}.expected.json"))
    return [(h, e) for h, e in pairs if h.exists() and e.exists()]


def _photo(html: str, url: str | None = "https://www.example.com/news/a/story"
           ) -> tuple[str | None, str | None]:
    return lead_photo(lxml.html.fromstring(html), url)


@pytest.mark.parametrize(("html", "expected"), _golden(), ids=lambda p: p.name)
def test_golden_captions(html: Path, expected: Path) -> None:
    want = json.loads(expected.read_text(encoding="utf-8"))
    caption, image = lead_photo(lxml.html.fromstring(html.read_text(encoding="utf-8")), None)
    assert caption == want.get("caption")
    if caption is not None:
        assert image is not None and image.startswith(("http://", "https://"))


@pytest.mark.parametrize(
    ("caption", "credit", "want"),
    [
        ("Blinken meets Wang.", "REUTERS/Elizabeth Frantz",
         "Blinken meets Wang. REUTERS/Elizabeth Frantz"),
        ("Farmers at work.", "(AP Photo/Daniel Mwangi)",
         "Farmers at work. (AP Photo/Daniel Mwangi)"),
        ("A beaver.", "Photograph: Mark Hollis/PA", "A beaver. Photograph: Mark Hollis/PA"),
        ("Image caption, Crowds queued", "Image source, Getty Images",
         "Crowds queued Getty Images"),
        ("  Caption \n text ", None, "Caption text"),
        (None, "REUTERS/X", "REUTERS/X"),
        ("Caption. REUTERS/X", "REUTERS/X", "Caption. REUTERS/X"),
        ("Item 1 of 2 Caption text", "Purchase Licensing Rights", "Caption text"),
        ("Enlarge / The Milky Way.", "bulbs", "The Milky Way. bulbs"),
        ("Police tape in Toronto.&nbsp;Tuesday", None, "Police tape in Toronto. Tuesday"),
        ("Florida State players pose.(AP Photo/Erik Verduzco, File)", None,
         "Florida State players pose. (AP Photo/Erik Verduzco, File)"),
        (None, None, None),
        ("", "  ", None),
    ],
)
def test_join_caption(caption: str | None, credit: str | None, want: str | None) -> None:
    assert join_caption(caption, credit) == want


def test_caption_and_credit_in_separate_spans() -> None:
    html = """<html><body><main><article><h1>H</h1>
    <figure><img src="/img/a.jpg" width="1200" height="800">
    <figcaption><span>Blinken meets Wang.</span><span class="credit">REUTERS/Elizabeth Frantz
    </span></figcaption></figure>
    <div class="controls"><span>Item 1 of 2</span><a>Purchase Licensing Rights</a></div>
    <p>Body.</p></article></main></body></html>"""
    caption, image = _photo(html)
    assert caption == "Blinken meets Wang. REUTERS/Elizabeth Frantz"
    assert image == "https://www.example.com/img/a.jpg"


def test_credit_outside_figcaption_and_bbc_labels() -> None:
    html = """<html><body><article><h1>H</h1>
    <figure><div><img src="https://ichef.example/p.jpg">
      <span class="image-copyright"><span class="visually-hidden">Image source, </span>Getty Images
      </span>
    </div><figcaption><span class="visually-hidden">Image caption, </span>Crowds queued</figcaption>
    </figure><p>Body</p></article></body></html>"""
    assert _photo(html) == ("Crowds queued Getty Images", "https://ichef.example/p.jpg")


def test_skips_logos_avatars_and_tiny_images() -> None:
    html = """<html><body><article><h1>H</h1>
    <figure class="author-avatar"><img src="/a.jpg"><figcaption>Jane</figcaption></figure>
    <figure><img src="/static/logo.png"><figcaption>Logo</figcaption></figure>
    <figure><img src="/px.jpg" width="1" height="1"><figcaption>Pixel</figcaption></figure>
    <figure><img src="data:image/gif;base64,R0lG" data-src="/real.jpg">
    <figcaption>The real photo.</figcaption></figure>
    </article></body></html>"""
    assert _photo(html) == ("The real photo.", "https://www.example.com/real.jpg")


def test_related_story_figures_are_not_the_lead() -> None:
    html = """<html><body><article><h1>H</h1><p>Body without photo.</p>
    <div class="related-stories"><figure><img src="/r.jpg"><figcaption>Other</figcaption>
    </figure></div></article><aside><figure><img src="/s.jpg"></figure></aside></body></html>"""
    assert _photo(html) == (None, None)


def test_srcset_and_picture_sources() -> None:
    html = """<html><body><article><h1>H</h1><figure><picture>
    <source srcset="/s-480.jpg 480w, /s-1200.jpg 1200w"><img alt="x"></picture>
    <figcaption>Caption</figcaption></figure></article></body></html>"""
    assert _photo(html) == ("Caption", "https://www.example.com/s-1200.jpg")


def test_only_http_images() -> None:
    html = """<html><body><article><h1>H</h1><figure><img src="javascript:alert(1)">
    <figcaption>Caption</figcaption></figure></article></body></html>"""
    assert _photo(html) == (None, None)


def test_figure_without_caption_gives_url_only() -> None:
    html = """<html><body><article><h1>H</h1><figure><img src="/p.jpg"></figure>
    </article></body></html>"""
    assert _photo(html) == (None, "https://www.example.com/p.jpg")


def test_jsonld_image_fallback() -> None:
    html = """<html><head><script type="application/ld+json">{"@type":"NewsArticle",
    "image":{"@type":"ImageObject","url":"https://cdn.example/p.jpg",
    "caption":"A caption. (AP Photo/X Y)"}}</script></head><body><h1>H</h1></body></html>"""
    assert _photo(html, None) == ("A caption. (AP Photo/X Y)", "https://cdn.example/p.jpg")


def test_no_photo() -> None:
    assert _photo("<html><body><h1>H</h1><p>Text</p></body></html>") == (None, None)


def test_layout_classes_mentioning_author_do_not_hide_the_photo() -> None:
    html = """<html><body><main><div class="a-article-grid a-article-author-grid">
    <h1>H</h1><figure class="Article-thumbnail"><img src="/p.jpg">
    <figcaption>Caption <span class="credit">Credit</span></figcaption></figure>
    </div></main></body></html>"""
    assert _photo(html) == ("Caption Credit", "https://www.example.com/p.jpg")


def test_video_figure_is_not_the_lead_photo() -> None:
    html = """<html><body><article><h1>H</h1>
    <figure class="lead-video"><img src="/poster.jpg"><figcaption>Watch (1:39)</figcaption></figure>
    <figure><img src="/p.jpg"><figcaption>Photo caption</figcaption></figure>
    </article></body></html>"""
    assert _photo(html) == ("Photo caption", "https://www.example.com/p.jpg")


def test_caption_printed_after_the_hero_figure() -> None:
    html = """<html><body><article><h1>H</h1><section><div class="media">
    <figure><picture><img src="/p.jpg" width="2500" height="1667"></picture></figure></div>
    <figcaption class="caption"><span>Ryan Minor in 1999.</span><span class="caption__source">
    Larry Goren / AP</span></figcaption></section></article></body></html>"""
    assert _photo(html) == ("Ryan Minor in 1999. Larry Goren / AP", "https://www.example.com/p.jpg")


def test_microdata_caption_and_amp_img() -> None:
    html = """<html><body><article><h1>H</h1><figure itemprop="image">
    <meta itemprop="description" content="A forensic composite.">
    <meta itemprop="author" content="(Image: DNASolves.com)">
    <amp-img src="https://i2.example/a.jpg" width="615" height="400"></amp-img></figure>
    </article></body></html>"""
    assert _photo(html) == ("A forensic composite. (Image: DNASolves.com)", "https://i2.example/a.jpg")
