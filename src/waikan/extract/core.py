"""Orchestration of extraction: one page in, one :class:`~waikan.models.Extracted` out.

The stages run top to bottom, each on what the previous one left:

1. cap the bytes, refuse binary data, decode (BOM, meta charset, guess);
2. parse once with lxml;
3. metadata and lead photo, read before trafilatura drops figures;
4. body paragraphs from trafilatura's structured output;
5. waikan's boilerplate rules (dateline, trailers, bylines, related blocks);
6. quality gates (not_article, paywalled, too_short) and the language.
"""

from __future__ import annotations

import py3langid

from waikan.errors import ExtractError
from waikan.extract import _html
from waikan.extract.body import declared_blocks, prefer_declared, trafilatura_blocks
from waikan.extract.boilerplate import clean_blocks
from waikan.extract.caption import lead_photo
from waikan.extract.metadata import Metadata, extract_metadata
from waikan.extract.quality import (
    NOT_ARTICLE,
    TOO_LARGE,
    link_share,
    page_signals,
    reject_reason,
)
from waikan.models import Extracted

DEFAULT_MIN_WORDS = 120
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
_LANGID_CHARS = 3000


def _too_big(html: bytes | str, max_bytes: int) -> bool:
    if isinstance(html, bytes):
        return len(html) > max_bytes
    if len(html) > max_bytes:
        return True
    # a str of n characters is at most 4n UTF-8 bytes: only encode when it could matter
    return len(html) * 4 > max_bytes and len(html.encode("utf-8", "surrogatepass")) > max_bytes


def _language(meta_language: str | None, text: str) -> str | None:
    if meta_language:
        return meta_language
    if not text.strip():
        return None
    lang, _ = py3langid.classify(text[:_LANGID_CHARS])
    return str(lang)


def extract(
    html: bytes | str,
    *,
    url: str | None = None,
    source_name: str | None = None,
    min_words: int = DEFAULT_MIN_WORDS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Extracted:
    """Extract one page; raises ExtractError only for data that is not a document at all."""
    # 1. bytes: cap before anything else touches them (a 50 MB page costs ~1 GB to parse)
    if _too_big(html, max_bytes):
        return Extracted(None, source_name, None, None, (), url=url, reject_reason=TOO_LARGE)
    if isinstance(html, bytes):
        _html.check_not_binary(html)
        text = _html.decode(html)
    else:
        if "\x00" in html[:4096]:
            raise ExtractError("not an HTML document (binary data)")
        text = html

    # 2. parse once
    tree = _html.parse(text)
    if tree is None:
        return Extracted(None, source_name, None, None, (), url=url, reject_reason=NOT_ARTICLE)

    # 3. what the page says about itself, and its lead photo, before trafilatura runs
    meta: Metadata = extract_metadata(tree, url)
    caption, image_url = lead_photo(tree, url)
    signals = page_signals(tree)

    # 4. body paragraphs
    raw = trafilatura_blocks(tree, url)

    # 5. waikan's boilerplate rules
    blocks = clean_blocks(raw, title=meta.title, authors=meta.authors)
    # a story served only in JSON-LD (script-rendered page): trafilatura found teasers instead
    declared_raw = declared_blocks(meta.article_body)
    if declared_raw:
        declared = clean_blocks(declared_raw, title=meta.title, authors=meta.authors)
        if prefer_declared(blocks, declared):
            raw, blocks = declared_raw, declared

    # 6. quality gates and language
    paragraphs = tuple(b.text for b in blocks)
    reason = reject_reason(
        blocks, signals, min_words=min_words, raw=raw, linked=lambda: link_share(tree, blocks)
    )
    if reason == NOT_ARTICLE:
        paragraphs = ()  # an index page or live blog has no article body to claim
    return Extracted(
        title=meta.title,
        source=source_name or meta.source,
        published=meta.published,
        caption=caption,
        paragraphs=paragraphs,
        language=_language(meta.language, " ".join(paragraphs)),
        url=url,
        modified=meta.modified,
        authors=meta.authors,
        image_url=image_url,
        reject_reason=reason,
    )
