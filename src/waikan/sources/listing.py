"""Listings (feeds and sitemaps) into items: RSS 0.9x/1.0/2.0 and Atom (feedparser),
JSON Feed, news sitemaps and sitemap indexes.

Parsers take bytes already size-capped by the fetcher and raise
:class:`~waikan.errors.InputError` with a one-line reason for anything that
is not a listing (an HTML page, broken XML, a JSON document of another kind).
"""

from __future__ import annotations

import calendar
import gzip
import io
import json
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from waikan.errors import InputError

__all__ = [
    "KINDS",
    "LISTING_KINDS",
    "Item",
    "Listing",
    "parse_date",
    "parse_listing",
    "sniff_kind",
]

LISTING_KINDS = ("rss", "atom", "jsonfeed", "sitemap")
KINDS = (*LISTING_KINDS, "warc", "dir", "opml")

_XML_ROOT = re.compile(rb"<(?!\?|!)([A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)")
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html[\s>])", re.I | re.S)
_FEED_LINK = re.compile(rb"""<link[^>]+type=["']application/(?:rss|atom)\+xml["'][^>]*>""", re.I)
_HREF = re.compile(rb"""href=["']([^"']+)["']""", re.I)


@dataclass(frozen=True)
class Item:
    """One entry of a listing: the article URL and what the listing says about it."""

    url: str
    title: str | None = None
    summary: str | None = None
    published: datetime | None = None


@dataclass
class Listing:
    kind: str
    title: str | None
    items: list[Item] = field(default_factory=list)
    children: list[Item] = field(default_factory=list)  # sitemaps named by a sitemap index


def parse_date(text: str | None) -> datetime | None:
    """A W3C / RFC 3339 date or datetime as an aware UTC datetime (a bare day: midnight UTC)."""
    if not text:
        return None
    text = text.strip()
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _strip(data: bytes) -> bytes:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.lstrip()


def gunzip_capped(data: bytes, max_bytes: int, what: str) -> bytes:
    """Decompress a ``.xml.gz`` sitemap without letting a bomb past ``max_bytes``."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
            out = gz.read(max_bytes + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{what}: broken gzip data: {exc}") from None
    if len(out) > max_bytes:
        raise InputError(f"{what}: over fetch.max_feed_bytes ({max_bytes:,}) once decompressed")
    return out


def sniff_kind(data: bytes) -> str:
    """``rss``, ``atom``, ``jsonfeed``, ``sitemap``, ``opml``, ``html`` or ``unknown``."""
    head = _strip(data[:8192])
    if head.startswith((b"{", b"[")):
        try:
            doc = json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError):
            return "unknown"
        version = doc.get("version") if isinstance(doc, dict) else None
        if isinstance(version, str) and "jsonfeed.org" in version:
            return "jsonfeed"
        return "unknown"
    if _HTML_START.match(head):
        return "html"
    pos = 0
    while True:
        m = _XML_ROOT.search(head, pos)
        if m is None:
            return "unknown"
        name = m.group(2).decode("ascii", "replace").lower()
        if name in ("rss", "rdf"):
            return "rss"
        if name == "feed":
            return "atom"
        if name in ("urlset", "sitemapindex"):
            return "sitemap"
        if name == "opml":
            return "opml"
        if name == "html":
            return "html"
        return "unknown"


def feed_links(page: bytes) -> list[bytes]:
    """``<link rel=alternate type=application/rss+xml href=…>`` of an HTML page."""
    return [h.group(1) for tag in _FEED_LINK.findall(page[:200_000]) if (h := _HREF.search(tag))]


def parse_listing(data: bytes, *, url: str, kind: str = "auto") -> Listing:
    """Parse a fetched listing; ``kind`` ``auto`` sniffs it from the bytes."""
    if data[:2] == b"\x1f\x8b":
        data = gunzip_capped(data, 50 * 1024 * 1024, url)
    found = sniff_kind(data)
    if found == "html":
        hint = ""
        links = feed_links(data)
        if links:
            hint = f" (it links to the feed {links[0].decode('utf-8', 'replace')})"
        raise InputError(f"{url}: is an HTML page, not a feed or sitemap{hint}")
    if found in ("unknown", "opml"):
        what = (
            "an OPML list: use waikan sources import-opml"
            if found == "opml"
            else ("not a feed or sitemap (RSS, Atom, JSON Feed, sitemap)")
        )
        raise InputError(f"{url}: {what}")
    if kind not in ("auto", found) and {kind, found} != {"rss", "atom"}:
        raise InputError(f"{url}: expected {kind}, got {found}")
    if found == "jsonfeed":
        return _json_feed(data, url)
    if found == "sitemap":
        return _sitemap(data, url)
    return _feedparser(data, url, found)


def _feedparser(data: bytes, url: str, kind: str) -> Listing:
    import feedparser

    try:
        parsed: Any = feedparser.parse(data, sanitize_html=False, resolve_relative_uris=False)
    except Exception as exc:  # feedparser raises e.g. UnicodeDecodeError on hostile bytes
        raise InputError(f"{url}: malformed feed: {type(exc).__name__}") from None
    entries = parsed.get("entries") or []
    items = []
    for entry in entries:
        link = entry.get("link") or _alternate(entry)
        if not link or "\x00" in link:  # no page has a NUL in its address (&#0; in XML)
            continue
        stamp = entry.get("published_parsed") or entry.get("updated_parsed")
        published = (
            datetime.fromtimestamp(calendar.timegm(stamp), UTC) if stamp is not None else None
        )
        items.append(
            Item(
                url=str(link).strip(),
                title=_text(entry.get("title")),
                summary=_text(entry.get("summary")),
                published=published,
            )
        )
    if parsed.get("bozo") and not items:  # a broken feed that still yields links is read
        reason = parsed.get("bozo_exception")
        detail = str(reason).splitlines()[0] if reason else "unreadable"
        raise InputError(f"{url}: malformed feed: {detail}")
    title = _text(parsed.get("feed", {}).get("title"))
    return Listing(kind, title, items)


def _alternate(entry: Any) -> str | None:
    for link in entry.get("links") or ():
        if link.get("rel", "alternate") == "alternate" and link.get("href"):
            return str(link["href"])
    guid = entry.get("id")
    if isinstance(guid, str) and guid.startswith(("http://", "https://")):
        return guid
    return None


def _text(value: Any) -> str | None:
    """Whitespace folded; NUL (feedparser decodes ``&#0;``) dropped: PostgreSQL refuses it."""
    if not isinstance(value, str):
        return None
    value = " ".join(value.replace("\x00", "").split())
    return value or None


def _json_feed(data: bytes, url: str) -> Listing:
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InputError(f"{url}: malformed JSON Feed: {exc}") from None
    raw_items = doc.get("items")
    if not isinstance(raw_items, list):
        raise InputError(f"{url}: malformed JSON Feed: no items list")
    items = []
    for entry in raw_items:
        if not isinstance(entry, dict):
            continue
        link = entry.get("url") or entry.get("external_url")
        if not isinstance(link, str) or not link.strip() or "\x00" in link:
            continue
        summary = entry.get("summary") or entry.get("content_text")
        items.append(
            Item(
                url=link.strip(),
                title=_text(entry.get("title")),
                summary=_text(summary) if isinstance(summary, str) else None,
                published=parse_date(str(entry.get("date_published") or "") or None),
            )
        )
    return Listing("jsonfeed", _text(doc.get("title")), items)


_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False, recover=False
)


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _child_text(node: Any, *names: str) -> str | None:
    for child in node.iter():
        if _local(child.tag) in names and child.text and child.text.strip():
            return str(child.text.strip())
    return None


def _sitemap(data: bytes, url: str) -> Listing:
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise InputError(f"{url}: malformed sitemap: {exc}") from None
    listing = Listing("sitemap", None)
    index = _local(root.tag) == "sitemapindex"
    for node in root:
        if _local(node.tag) not in ("url", "sitemap"):
            continue
        loc = _child_text(node, "loc")
        if not loc:
            continue
        published = parse_date(_child_text(node, "publication_date")) or parse_date(
            _child_text(node, "lastmod")
        )
        item = Item(url=loc, title=_text(_child_text(node, "title")), published=published)
        (listing.children if index else listing.items).append(item)
    return listing


def newest_first(items: Iterable[Item]) -> list[Item]:
    """Items with a date newest first, then undated ones in listing order."""
    listed = list(items)
    dated = sorted((i for i in listed if i.published), key=lambda i: i.published, reverse=True)  # type: ignore[arg-type, return-value]
    return dated + [i for i in listed if i.published is None]
