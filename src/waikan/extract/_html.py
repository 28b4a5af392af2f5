"""Byte-level guards, charset detection and parsing: the only place HTML enters lxml.

Pages come from the open web, so every step assumes hostile input: binary
data is refused with a one-line error, charsets are guessed in the order a
browser trusts them (BOM, then ``<meta charset>``, then the bytes
themselves), and the tree is parsed exactly once.
"""

from __future__ import annotations

import codecs
import re

import lxml.html
from charset_normalizer import from_bytes
from lxml import etree

from waikan.errors import ExtractError

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")
# Magic numbers of formats that are sometimes served as text/html by mistake.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "a PDF document"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
)
_CONTROL = bytes([*range(0x00, 0x09), *range(0x0E, 0x20)])
_SNIFF = 4096


def check_not_binary(data: bytes) -> None:
    """Raise ExtractError for data no browser would render as a page."""
    head = data[:_SNIFF]
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise ExtractError(f"not an HTML document ({what})")
    if any(head.startswith(bom) for bom, _ in _BOMS):
        return  # UTF-16/32 text legitimately contains NUL bytes
    controls = len(head) - len(head.translate(None, _CONTROL))
    if b"\x00" in head or controls > len(head) // 10:
        raise ExtractError("not an HTML document (binary data)")


def decode(data: bytes) -> str:
    """Bytes to text: BOM, then a declared charset that decodes cleanly, then a guess."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    declared = _META_CHARSET.search(data[:_SNIFF * 4])
    if declared:
        name = declared.group(1).decode("ascii", "ignore").lower()
        if name in {"iso-8859-1", "latin-1", "latin1", "us-ascii", "ascii"}:
            name = "cp1252"  # what browsers do (WHATWG Encoding): smart quotes survive
        try:
            return data.decode(name)
        except (LookupError, UnicodeDecodeError):
            pass  # pages lie about their charset often enough: fall through to the bytes
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    best = from_bytes(data[: 256 * 1024]).best()
    encoding = best.encoding if best is not None else "utf-8"
    return data.decode(encoding, errors="replace")


def parse(text: str) -> lxml.html.HtmlElement | None:
    """Parse once; None when there is no document at all.

    The text is re-encoded to UTF-8 bytes so that lxml never sees a
    conflicting ``<?xml encoding?>`` declaration (it refuses those in str input).
    """
    text = _XML_DECL.sub("", text, count=1)
    if not text.strip():
        return None
    parser = lxml.html.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True)
    try:
        tree = lxml.html.document_fromstring(text.encode("utf-8", "replace"), parser=parser)
    except (etree.ParserError, ValueError):
        return None
    return tree if isinstance(tree, lxml.html.HtmlElement) else None


def text_of(el: etree._Element) -> str:
    """Visible text of an element with whitespace collapsed."""
    return " ".join("".join(el.itertext()).split())
