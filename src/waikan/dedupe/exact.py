"""Exact duplicates: the same page under another URL spelling, or the same normalized body.

The body hash is the store's own ``articles.body_sha256``
(:func:`waikan.store.body_sha256`: whitespace and case folded), so the same
text served under two URLs is recognised without hashing anything again.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from waikan.dedupe.urls import canonicalize
from waikan.store import body_sha256

__all__ = ["body_sha256", "url_key"]


def url_key(url: str) -> str:
    """The key two copies of one page share.

    :func:`waikan.dedupe.urls.canonicalize` (tracking parameters, AMP
    variants, ports, case) is what the store keys articles by; two stored
    rows can still be one page served over ``http`` and ``https``, with and
    without ``www.``, or with a trailing slash, so those are folded here too.
    """
    try:
        canon = canonicalize(url)
        parts = urlsplit(canon)
    except ValueError:
        return url
    if parts.scheme not in ("http", "https"):
        return canon
    host = parts.netloc.lower().removeprefix("www.")
    path = parts.path.rstrip("/") or "/"
    return urlunsplit(("https", host, path, parts.query, ""))
