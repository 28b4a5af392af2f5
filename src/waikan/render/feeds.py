"""Atom, RSS 2.0, JSON Feed 1.1 and the sitemap, built as data and serialized.

Feeds are written with ElementTree and ``json`` rather than templates so that
every piece of source text is escaped by the serializer, never by hand, and
characters XML 1.0 forbids (control characters in scraped pages) are dropped
first: one stray ``\\x0b`` would make a whole feed unreadable.
"""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import cached_property
from xml.sax.saxutils import escape as xml_escape

from waikan.models import Post
from waikan.render.post import meta_line, title_line

_XML_BAD = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
ATOM_NS = "http://www.w3.org/2005/Atom"
EPOCH = "1970-01-01T00:00:00Z"


def clean(text: str | None) -> str:
    return _XML_BAD.sub("", text or "")


@dataclass(frozen=True)
class FeedInfo:
    title: str
    home: str  # absolute (or site-relative) URL of index.html
    self_base: str  # prefix for the feeds' own URLs
    lang: str


@dataclass(frozen=True)
class Item:
    post: Post
    url: str  # the post's page on the site
    updated: str  # ``YYYY-MM-DDTHH:MM:SSZ``

    # Computed once per item, whichever of the three feeds asks first.
    @cached_property
    def title(self) -> str:
        return title_line(self.post)

    @cached_property
    def html(self) -> str:
        return content_html(self.post)

    @cached_property
    def text(self) -> str:
        return content_text(self.post)

    @property
    def published(self) -> str:
        """Publication instant for feeds; a date-only day becomes its midnight UTC."""
        p = self.post.published
        if p and len(p) == 10:
            return f"{p}T00:00:00Z"
        return p or self.updated


def content_html(post: Post) -> str:
    """The full summary as HTML (escaped), then the meta line and a link to the original."""
    parts = []
    if post.title_zh:
        parts.append(f"<p><strong>{html.escape(post.title_zh)}</strong></p>")
    parts += [f"<p>{html.escape(p)}</p>" for p in post.summary]
    parts.append(f"<p>{html.escape(meta_line(post))}</p>")
    if post.url:
        parts.append(f'<p><a href="{html.escape(post.url)}">原文 / Original</a></p>')
    return clean("\n".join(parts))


def content_text(post: Post) -> str:
    lines = [*([post.title_zh] if post.title_zh else []), *post.summary, meta_line(post)]
    if post.url:
        lines.append(post.url)
    return clean("\n\n".join(lines))


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k: clean(v) for k, v in attrs.items()})
    if text is not None:
        el.text = clean(text)
    return el


def _xml(root: ET.Element) -> str:
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def atom(info: FeedInfo, items: Sequence[Item]) -> str:
    feed = ET.Element("feed", {"xmlns": ATOM_NS, "xml:lang": info.lang})
    _sub(feed, "title", info.title)
    _sub(feed, "id", info.home)
    _sub(feed, "link", rel="alternate", type="text/html", href=info.home)
    _sub(feed, "link", rel="self", type="application/atom+xml", href=info.self_base + "atom.xml")
    _sub(feed, "updated", max((i.updated for i in items), default=EPOCH))
    _sub(feed, "generator", "waikan")
    for item in items:
        post = item.post
        entry = _sub(feed, "entry")
        _sub(entry, "title", item.title)
        _sub(entry, "id", item.url)
        _sub(entry, "link", rel="alternate", type="text/html", href=item.url)
        if post.url:
            _sub(entry, "link", rel="related", type="text/html", href=post.url)
        _sub(entry, "published", item.published)
        _sub(entry, "updated", item.updated)
        if post.source:
            _sub(_sub(entry, "author"), "name", post.source)
        else:
            _sub(_sub(entry, "author"), "name", info.title)
        _sub(entry, "summary", item.text, type="text")
        _sub(entry, "content", item.html, type="html")
    return _xml(feed)


def _rfc822(iso: str) -> str:
    return format_datetime(datetime.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC))


def rss(info: FeedInfo, items: Sequence[Item]) -> str:
    root = ET.Element("rss", {"version": "2.0", "xmlns:atom": ATOM_NS})
    channel = _sub(root, "channel")
    _sub(channel, "title", info.title)
    _sub(channel, "link", info.home)
    _sub(channel, "description", info.title)
    _sub(channel, "language", info.lang)
    _sub(
        channel,
        "atom:link",
        href=info.self_base + "rss.xml",
        rel="self",
        type="application/rss+xml",
    )
    if items:
        _sub(channel, "lastBuildDate", _rfc822(max(i.updated for i in items)))
    for item in items:
        post = item.post
        el = _sub(channel, "item")
        _sub(el, "title", item.title)
        _sub(el, "link", item.url)
        _sub(el, "guid", item.url, isPermaLink="true")
        _sub(el, "pubDate", _rfc822(item.published))
        if post.source:
            _sub(el, "category", post.source)
        _sub(el, "description", item.html)
        if post.url:
            _sub(el, "source", info.title, url=item.url)
    return _xml(root)


def json_feed(info: FeedInfo, items: Sequence[Item]) -> str:
    data = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": clean(info.title),
        "home_page_url": info.home,
        "feed_url": info.self_base + "feed.json",
        "language": info.lang,
        "items": [
            {
                "id": item.url,
                "url": item.url,
                **({"external_url": item.post.url} if item.post.url else {}),
                "title": clean(item.title),
                "content_html": item.html,
                "content_text": item.text,
                "date_published": item.published,
                "date_modified": item.updated,
                **({"tags": [clean(item.post.source)]} if item.post.source else {}),
            }
            for item in items
        ],
    }
    return json.dumps(data, ensure_ascii=False, indent=1) + "\n"


def sitemap(urls: Sequence[str]) -> str:
    # Tens of thousands of one-element entries: plain escaped strings beat a tree, and
    # escaping them joined (one call, not one per URL) when no URL holds a newline.
    joined = "\n".join(urls)
    if joined.count("\n") == len(urls) - 1:
        locs = xml_escape(clean(joined)).split("\n") if urls else []
    else:
        locs = [xml_escape(clean(u)) for u in urls]
    rows = f"<url><loc>{'</loc></url><url><loc>'.join(locs)}</loc></url>" if locs else ""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{rows}</urlset>\n'
    )
