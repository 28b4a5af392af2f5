"""OPML import and export of the source list (OPML 2.0, as feed readers write it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

from lxml import etree

from waikan.errors import InputError

__all__ = ["OpmlFeed", "parse_opml", "write_opml"]

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False, recover=False
)


@dataclass(frozen=True)
class OpmlFeed:
    url: str
    title: str | None
    tags: tuple[str, ...] = ()
    language: str | None = None


def parse_opml(data: bytes, where: str) -> list[OpmlFeed]:
    """Every outline with an ``xmlUrl``; enclosing outlines' titles and ``category`` become tags."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise InputError(f"{where}: not an OPML file (invalid XML: {exc})") from None
    if not isinstance(root.tag, str) or root.tag.lower() != "opml":
        raise InputError(f"{where}: not an OPML file (root element is <{root.tag}>)")
    body = root.find("body")
    if body is None:
        raise InputError(f"{where}: not an OPML file (no <body>)")
    feeds: list[OpmlFeed] = []

    def walk(node: etree._Element, folders: tuple[str, ...]) -> None:
        for outline in node:
            if not isinstance(outline.tag, str) or outline.tag.lower() != "outline":
                continue
            title = (outline.get("title") or outline.get("text") or "").strip() or None
            url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
            if url:
                cats = tuple(
                    c.strip().strip("/")
                    for c in (outline.get("category") or "").split(",")
                    if c.strip().strip("/")
                )
                feeds.append(
                    OpmlFeed(
                        url, title, tuple(dict.fromkeys(folders + cats)), outline.get("language")
                    )
                )
            walk(outline, folders + ((title,) if title and not url else ()))

    walk(body, ())
    return feeds


def write_opml(feeds: Sequence[OpmlFeed], title: str = "waikan sources") -> bytes:
    """An OPML 2.0 document listing ``feeds``; tags go to the ``category`` attribute."""
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title
    etree.SubElement(head, "dateCreated").text = format_datetime(datetime.now(UTC))
    body = etree.SubElement(root, "body")
    for feed in feeds:
        attrs = {"type": "rss", "text": feed.title or feed.url, "xmlUrl": feed.url}
        if feed.title:
            attrs["title"] = feed.title
        if feed.tags:
            attrs["category"] = ",".join(feed.tags)
        if feed.language:
            attrs["language"] = feed.language
        etree.SubElement(body, "outline", attrs)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
