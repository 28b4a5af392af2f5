"""Sources: where new article URLs come from (SPEC §2.1).

A source has a kind: ``rss``, ``atom``, ``jsonfeed`` and ``sitemap`` are
listings polled over HTTP; ``warc`` (a WARC file, e.g. CC-NEWS) and ``dir``
(a folder of saved pages) hold the pages themselves and need no network;
``opml`` is a list of feeds, imported as one source each. :func:`parse_listing`
turns a fetched listing into :class:`Item` rows, whatever its kind.
"""

from __future__ import annotations

from waikan.sources.listing import (
    KINDS,
    LISTING_KINDS,
    Item,
    Listing,
    parse_listing,
    sniff_kind,
)

__all__ = ["KINDS", "LISTING_KINDS", "Item", "Listing", "parse_listing", "sniff_kind"]
