"""Synthetic news pages for dedupe tests: one event as many outlets print it."""

from __future__ import annotations

import html
import json
from pathlib import Path


def page(
    *,
    outlet: str,
    url: str,
    headline: str,
    paragraphs: list[str],
    published: str = "2024-03-05T09:00:00Z",
    boilerplate: tuple[str, ...] = (),
) -> str:
    """A NewsArticle page in the usual shape: JSON-LD, og tags, an <article> of <p>s."""
    ld = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": headline,
        "datePublished": published,
        "publisher": {"@type": "Organization", "name": outlet},
    }
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    extra = "\n".join(f"<p>{html.escape(p)}</p>" for p in boilerplate)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{html.escape(headline)} | {html.escape(outlet)}</title>
<link rel="canonical" href="{html.escape(url)}">
<meta property="og:site_name" content="{html.escape(outlet)}">
<meta property="og:title" content="{html.escape(headline)}">
<script type="application/ld+json">{json.dumps(ld)}</script>
</head><body><header><nav><a href="/">Home</a> <a href="/world">World</a></nav></header>
<main><article><h1>{html.escape(headline)}</h1>
{body}
{extra}
</article></main><footer><p>© {html.escape(outlet)} 2024</p></footer></body></html>"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path
