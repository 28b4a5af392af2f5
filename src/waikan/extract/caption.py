"""The lead photo: its caption (credit included, one line) and image URL.

trafilatura drops ``<figure>``/caption nodes, so this reads the raw tree.
The lead photo is the first real ``<figure>`` of the article body (SPEC
§2.3); logos, avatars, icons and thumbnails of related stories are skipped.
A credit printed apart from the caption is joined to it with one space
(SPEC §1), and the screen-reader or gallery labels pages put around captions
("Image caption,", "Item 1 of 2", "Purchase Licensing Rights") are dropped.
"""

from __future__ import annotations

import html
import itertools
import re
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.html

from waikan.extract.metadata import jsonld_nodes, normalize_space, visible_text

__all__ = ["join_caption", "lead_photo"]

_CREDIT_CLASS = re.compile(
    r"credit|copyright|photographer|attribution|image-source|source|creator", re.I
)
_CAPTION_CLASS = re.compile(r"caption|cutline|image-?desc|media-?desc|photo-?desc|legend", re.I)
_SKIP_FIGURE = re.compile(
    r"logo|avatar|author|byline|icon|sprite|badge|emoji|related|recommend|promo|teaser|"
    r"newsletter|advert|sponsor|social|share|profile|headshot|mugshot",
    re.I,
)
_MEDIA_CLASS = re.compile(
    r"video|player|tweet|twitter|instagram|youtube|tiktok|podcast|audio|"
    r"(?:social|html|iframe)-?embed",
    re.I,
)
_AD_CAPTION = re.compile(
    r"subscri(?:be|ption)|newsletter|sign up|affiliate|reader-supported|sponsored", re.I
)
_SKIP_BLOCK = re.compile(
    r"related|recommend|promo|teaser|newsletter|advert|sponsor|avatar|"
    r"author-?(?:bio|box|card|info|image|photo|profile)|byline-?(?:image|photo|avatar)|"
    r"more-?stories|most-?popular|trending|comments",
    re.I,
)
_SKIP_SRC = re.compile(
    r"logo|avatar|/icons?/|icon[-_.]|sprite|placeholder|blank\.|spacer|pixel\.|1x1", re.I
)
_LABELS = re.compile(
    r"^\s*\d+\s*of\s*\d+|\b\d+\s*of\s*\d+\s*$|^\s*Enlarge\b(?:\s*/)?|\.\.\.\s*\[\+\]|"
    r"\b(?:(?:Item|Image|Photo|Slide|Picture)\s+\d+\s+of\s+\d+|"
    r"Purchase Licensing Rights|Acquire Licensing Rights|"
    r"Image caption,|Image source,|Media caption,|Caption:|hide caption|toggle caption|"
    r"Enlarge this image|Open image in gallery|Expand image|Read More|"
    r", opens new tab)",
    re.I,
)
_GLUED_CREDIT = re.compile(r"(?<=[^\s(])\((?=(?:AP|AFP|Reuters|Getty|EPA)\b|Photo|Image|Credit)")
# "errors.Google": a credit span set apart by CSS margin only
_GLUED_SENTENCE = re.compile(r"(?<=[a-z]{2}[.!?])(?=[A-Z][a-z])")
_CHROME = frozenset({"nav", "footer", "aside", "header"})
_MIN_SIDE = 150
_IMG_TAGS = ("img", "source", "amp-img", "progressive-image", "image")
_SRC_ATTRS = ("src", "data-src", "data-original", "data-lazy-src", "data-url", "data-hi-res-src")


def _cls(el: lxml.html.HtmlElement) -> str:
    attrs = ("class", "id", "data-testid", "itemprop")
    return " ".join(filter(None, (el.get(a) for a in attrs)))


def _clean(text: str) -> str:
    if "&" in text:
        text = html.unescape(text)  # double-escaped entities ("&amp;nbsp;") in CMS captions
    text = _LABELS.sub(" ", text)
    text = _GLUED_CREDIT.sub(" (", text)
    text = _GLUED_SENTENCE.sub(" ", text)
    text = normalize_space(text)
    text = re.sub(r"\(\s+", "(", re.sub(r"\s+\)", ")", text))
    return text.strip(" ,;|")


def join_caption(caption: str | None, credit: str | None) -> str | None:
    """One line: the caption, then the credit after one space (unless already in it)."""
    cap = _clean(caption or "")
    cred = _clean(credit or "")
    if cred and cred.casefold() not in cap.casefold():
        cap = f"{cap} {cred}" if cap else cred
    return cap or None


def _http(url: str | None, base: str | None) -> str | None:
    if not url:
        return None
    url = url.strip()
    if url.startswith("data:"):
        return None
    try:
        full = urljoin(base, url) if base else url
        scheme = urlsplit(full).scheme.lower()
    except ValueError:  # "http://[::1" and other malformed URLs
        return None
    return full if scheme in ("http", "https") else None


def _srcset_best(srcset: str) -> str | None:
    best: tuple[float, str] | None = None
    for item in srcset.split(","):
        bits = item.strip().split()
        if not bits:
            continue
        size = 0.0
        if len(bits) > 1:
            try:
                size = float(bits[1].rstrip("wxWX"))
            except ValueError:
                size = 0.0
        if best is None or size > best[0]:
            best = (size, bits[0])
    return best[1] if best else None


def _usable(src: str) -> bool:
    low = src.lower()
    if low.startswith("data:") or low.split("?")[0].endswith(".svg"):
        return False
    return not _SKIP_SRC.search(low)


def _img_src(img: lxml.html.HtmlElement) -> str | None:
    """The real source of a possibly lazy-loaded <img> (placeholders skipped)."""
    for attr in _SRC_ATTRS:
        value = (img.get(attr) or "").strip()
        if value and _usable(value):
            return value
    for attr in ("srcset", "data-srcset"):
        value = img.get(attr)
        best = _srcset_best(value) if value else None
        if best and _usable(best):
            return best
    return None


def _too_small(img: lxml.html.HtmlElement) -> bool:
    for attr in ("width", "height"):
        value = (img.get(attr) or "").strip().removesuffix("px")
        if value.isdigit() and 0 < int(value) < _MIN_SIDE:
            return True
    return False


def _figure_image(fig: lxml.html.HtmlElement) -> str | None:
    """The figure's photo source, or None when it is not a real photo."""
    for img in fig.iter(*_IMG_TAGS):
        if img.tag == "source":
            best = _srcset_best(img.get("srcset") or img.get("data-srcset") or "")
            if best and _usable(best):
                return best
            continue
        src = _img_src(img)
        if src and not _too_small(img):
            return src
    for ns in fig.iter("noscript"):
        try:
            inner = lxml.html.fragment_fromstring(ns.text or "", create_parent="div")
        except Exception:  # lxml raises several kinds on junk; it is only a fallback
            continue
        for img in inner.iter("img"):
            src = _img_src(img)
            if src:
                return src
    return None


def _parts_in(box: lxml.html.HtmlElement, whole: bool) -> tuple[str, str]:
    """(caption, credit) inside ``box``; ``whole``: the box itself is the caption."""
    credits = [
        el for el in box.iter()
        if isinstance(el.tag, str) and el is not box and _CREDIT_CLASS.search(_cls(el))
        and not _CAPTION_CLASS.search(el.get("class") or "")
    ]
    # keep only outermost credit elements
    credit_set = set(credits)
    credits = [c for c in credits if not any(a in credit_set for a in c.iterancestors())]
    credit_text = " ".join(filter(None, (visible_text(c) for c in credits)))

    def is_credit(el: lxml.html.HtmlElement) -> bool:
        return el in credit_set

    containers = [box] if whole else list(box.iter("figcaption")) or [
        el for el in box.iter()
        if isinstance(el.tag, str) and el is not box and el.tag not in ("img", "picture")
        and _CAPTION_CLASS.search(el.get("class") or "")
    ]
    caption_text = ""
    for container in containers:
        if container in credit_set:
            continue
        text = visible_text(container, is_credit)
        if text:
            caption_text = text
            break
    return caption_text, credit_text


def _nearby_captions(fig: lxml.html.HtmlElement) -> list[lxml.html.HtmlElement]:
    """Caption elements printed just after the figure or its wrapper (hero layouts)."""
    found: list[lxml.html.HtmlElement] = []
    node: lxml.html.HtmlElement | None = fig
    for _ in range(2):
        if node is None:
            break
        for n, sib in enumerate(node.itersiblings()):
            if n >= 3 or not isinstance(sib.tag, str):
                break
            if next(sib.iter("img"), None) is not None:
                break
            if sib.tag == "figcaption" or _CAPTION_CLASS.search(sib.get("class") or ""):
                found.append(sib)
        node = node.getparent()
    return found


def _meta_caption(fig: lxml.html.HtmlElement) -> tuple[str, str]:
    """schema.org microdata inside the figure (``<meta itemprop="description">``)."""
    caption = credit = ""
    for meta in fig.iter("meta"):
        prop = (meta.get("itemprop") or "").lower()
        value = normalize_space(meta.get("content"))
        if not caption and prop in ("caption", "description"):
            caption = value
        elif not credit and prop in ("author", "copyrightholder", "credittext", "creator"):
            credit = value
    return caption, credit


def _caption_parts(fig: lxml.html.HtmlElement) -> tuple[str, str]:
    """(caption, credit) printed in or around a figure."""
    caption, credit = _parts_in(fig, whole=False)
    if caption or credit:
        return caption, credit
    for box in _nearby_captions(fig):
        caption, credit = _parts_in(box, whole=box.tag == "figcaption")
        if caption or credit:
            return caption, credit
    return _meta_caption(fig)


def _article_root(tree: lxml.html.HtmlElement) -> lxml.html.HtmlElement:
    """The element holding the story: the <article>/<main> with the h1, else the body."""
    h1 = next(iter(tree.iter("h1")), None)
    if h1 is not None:
        # the innermost <article>/<main> around the headline that holds a figure
        # (some pages wrap only the header in an <article>)
        for anc in h1.iterancestors():
            if anc.tag in ("article", "main") and next(anc.iter("figure"), None) is not None:
                return anc
    for tag in ("article", "main"):
        for el in tree.iter(tag):
            if next(el.iter("p"), None) is not None:
                return el
    body = tree.find(".//body")
    return body if body is not None else tree


def _in_chrome(el: lxml.html.HtmlElement, root: lxml.html.HtmlElement) -> bool:
    """Inside navigation, a site header, a sidebar or a related-stories block."""
    for anc in el.iterancestors():
        if anc is root:
            return False
        tag = anc.tag if isinstance(anc.tag, str) else ""
        if tag in ("nav", "footer", "aside"):
            return True
        if tag == "header" and next(anc.iter("h1"), None) is None:
            return True
        if _SKIP_BLOCK.search(_cls(anc)):
            return True
    return False


def _figures(tree: lxml.html.HtmlElement, limit: int = 8) -> list[lxml.html.HtmlElement]:
    """The first ``limit`` candidate figures of the story (of the whole body if it has none)."""
    root = _article_root(tree)
    inside = (f for f in root.iter("figure") if not _in_chrome(f, root))
    figs = list(itertools.islice(inside, limit))
    if not figs and root.tag != "body":
        body = tree.find(".//body")
        if body is not None:
            anywhere = (f for f in body.iter("figure") if not _in_chrome(f, body))
            figs = list(itertools.islice(anywhere, limit))
    return figs


def _is_media_player(fig: lxml.html.HtmlElement) -> bool:
    """A video, audio or social embed: its poster image is not a photo with a caption."""
    if _MEDIA_CLASS.search(_cls(fig)):
        return True
    for el in fig.iterdescendants():
        if el.tag in ("video", "iframe", "audio", "object"):
            return True
        if isinstance(el.tag, str) and re.search(r"video|player", el.get("class") or "", re.I):
            return True
    return False


def _jsonld_photo(tree: lxml.html.HtmlElement, base: str | None) -> tuple[str | None, str | None]:
    for _, obj in jsonld_nodes(tree):
        types = obj.get("@type")
        names = types if isinstance(types, list) else [types]
        if not any(isinstance(t, str) and ("Article" in t or "Posting" in t) for t in names):
            continue
        image: Any = obj.get("image")
        for item in image if isinstance(image, list) else [image]:
            if isinstance(item, dict):
                caption = item.get("caption") or item.get("description")
                src = item.get("url") or item.get("contentUrl")
                if isinstance(caption, str) and caption.strip() and isinstance(src, str):
                    return join_caption(caption, None), _http(src, base)
        return None, None
    return None, None


def _base_url(tree: lxml.html.HtmlElement, url: str | None) -> str | None:
    base = tree.find(".//base")
    href = str(base.get("href") or "") if base is not None else ""
    if href:
        try:
            return urljoin(url, href) if url else href
        except ValueError:
            return None
    if url:
        return url
    for link in tree.iter("link"):
        if (link.get("rel") or "").lower() == "canonical" and link.get("href"):
            return str(link.get("href"))
    return None


def lead_photo(tree: lxml.html.HtmlElement, url: str | None) -> tuple[str | None, str | None]:
    """(caption with credit, absolute image URL) of the lead photo, (None, None) if none."""
    base = _base_url(tree, url)
    for fig in _figures(tree):
        if _SKIP_FIGURE.search(_cls(fig)) or _is_media_player(fig):
            continue
        src = _figure_image(fig)
        if src is None:
            continue
        image = _http(src, base)
        if image is None:
            continue
        caption, credit = _caption_parts(fig)
        if _AD_CAPTION.search(caption):
            continue
        return join_caption(caption, credit), image
    return _jsonld_photo(tree, base)
