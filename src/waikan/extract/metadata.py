"""Article metadata: headline, source name, dates, authors, language.

Read from the parsed page *before* trafilatura cleans it: trafilatura's own
title is often the SEO ``<title>`` with a site suffix, and its date is
day-level and sometimes the modified date (docs NOTES). Sources are tried in
order of trust (SPEC §2.3): JSON-LD, OpenGraph / ``article:*`` meta,
``<time datetime>``, htmldate. The headline is the visible ``<h1>`` because
that is what readers see (and what the gold sets hold).
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any
from urllib.parse import urlsplit

import lxml.html

from waikan.extract.dates import local_time, normalize_date
from waikan.extract.domains import registrable_label, source_for_url

__all__ = [
    "Metadata",
    "extract_metadata",
    "jsonld_nodes",
    "normalize_space",
    "strip_site_suffix",
    "visible_text",
]

JsonObj = dict[str, Any]

_MAX_JSON_CHARS = 2_000_000
_MAX_NODES = 5_000
_MAX_DEPTH = 40
_MAX_HEADINGS = 50  # hostile pages can hold thousands; each costs a fuzzy match

_ARTICLE_TYPES = frozenset(
    t.casefold()
    for t in (
        "Article", "NewsArticle", "ReportageNewsArticle", "AnalysisNewsArticle",
        "OpinionNewsArticle", "ReviewNewsArticle", "BackgroundNewsArticle",
        "AskPublicNewsArticle", "SatiricalArticle", "ScholarlyArticle", "TechArticle",
        "BlogPosting", "LiveBlogPosting", "SocialMediaPosting", "Report",
        "AdvertiserContentArticle", "MedicalScholarlyArticle", "Review",
    )
)

_PUBLISHED_META = (
    "article:published_time", "og:article:published_time", "article:published",
    "og:published_time", "published_time", "article.published", "datepublished",
    "article_date_original", "parsely-pub-date", "sailthru.date", "pubdate", "publishdate",
    "publish-date", "publish_date", "publication_date", "date.release", "og:pubdate",
    "dc.date.issued", "dcterms.issued", "dc.date.created", "dcterms.created", "dc.date",
    "dcterms.date", "cxenseparse:recs:publishtime", "date", "article.created",
    "originalpublicationdate", "displaydate",
)
_MODIFIED_META = (
    "article:modified_time", "og:article:modified_time", "og:updated_time",
    "article:modified", "datemodified", "modified_time", "article.updated", "lastmod",
    "last-modified", "dc.date.modified", "dcterms.modified", "sailthru.lastmodified",
)
_AUTHOR_META = ("author", "article:author", "parsely-author", "sailthru.author", "dc.creator",
                "byl", "twitter:creator:name")

_SEPARATORS = re.compile(r"\s+[|\-–—:·•»~/]\s+|\s*[|•»]\s*|:\s+")
_SPACE = re.compile(r"\s+")
_LABEL_CLASS = re.compile(
    r"(?:^|[\s_-])(?:section|kicker|eyebrow|label|category|rubric|flag|overline|tag)s?(?:$|[\s_-])",
    re.I,
)
_TRAILING_TAG = re.compile(
    r"\s*[\[(](?:watch|video|videos|photos?|pictures|pics|gallery|listen|audio|updated?|live)"
    r"[\])]\s*$",
    re.I,
)
_SR_ONLY = re.compile(
    r"visually-?hidden|sr-only|screen-?reader|off-?screen|a11y-hidden|element-invisible", re.I
)
# "Opinion | …", "… | Editorial": a rubric printed with the headline, not part of it
_RUBRIC = (
    r"(?:editorial|opinion|commentary|analysis|column|letters?|review|photos|video|watch|"
    r"podcast|exclusive|breaking|live)"
)
_RUBRIC_EDGE = re.compile(rf"^\s*{_RUBRIC}\s*\|\s+|\s+\|\s*{_RUBRIC}\s*$", re.I)
_SKIP_TEXT_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "button"})


@dataclass(frozen=True)
class Metadata:
    """What the page says about itself (dates normalized per SPEC §1)."""

    title: str | None
    source: str | None
    published: str | None
    modified: str | None
    authors: tuple[str, ...] = ()
    language: str | None = None
    is_accessible_for_free: bool | None = None
    page_type: str | None = None
    # the article's JSON-LD ``articleBody``, raw: a fallback for pages whose text is script-rendered
    article_body: str | None = None


# ---------------------------------------------------------------- helpers


def normalize_space(text: str | None) -> str:
    """Collapse whitespace (NBSP and zero-width spaces included) and trim."""
    if not text:
        return ""
    text = text.replace("\u200b", "").replace("\u200a", " ").replace("\ufeff", "")
    return _SPACE.sub(" ", text).strip()


def _fold(text: str) -> str:
    """Comparison key: NFKC, casefolded, letters and digits only."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in text if ch.isalnum())


_BLOCK_TAGS = frozenset({
    "p", "div", "br", "li", "ul", "ol", "section", "header", "footer", "figure",
    "figcaption", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "tr", "td",
    "dd", "dt", "dl", "address", "small", "cite",
})
_APART_CLASS = re.compile(r"credit|copyright|source|byline|caption", re.I)


def visible_text(
    el: lxml.html.HtmlElement,
    skip: Callable[[lxml.html.HtmlElement], bool] | None = None,
) -> str:
    """Visible text of ``el`` with whitespace normalized.

    Text of inline markup is joined as is ("U.<b>S</b>."), but block elements
    and credit/caption spans are kept apart by a space, since pages often
    print "Caption.</span><span class=credit>REUTERS/…" with no space.
    Scripts, hidden elements and whatever ``skip`` selects are left out.
    """
    parts: list[str] = []
    stack: list[tuple[lxml.html.HtmlElement, bool]] = [(el, False)]
    # iterative walk: (node, closing) so tails come after a node's children
    while stack:
        node, closing = stack.pop()
        if closing:
            tag = node.tag.lower() if isinstance(node.tag, str) else ""
            if tag in _BLOCK_TAGS or _APART_CLASS.search(node.get("class") or ""):
                parts.append(" ")
            if node is not el and node.tail:
                parts.append(node.tail)
            continue
        tag = node.tag.lower() if isinstance(node.tag, str) else ""
        if node is not el and (
            not tag or tag in _SKIP_TEXT_TAGS or _is_hidden(node) or (skip and skip(node))
        ):
            if node.tail:
                parts.append(node.tail)
            continue
        if tag in _BLOCK_TAGS or _APART_CLASS.search(node.get("class") or ""):
            parts.append(" ")
        if node.text:
            parts.append(node.text)
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(node))
    return normalize_space("".join(parts))


def _element_text(el: lxml.html.HtmlElement, skip_labels: bool = False) -> str:
    return visible_text(el, _is_label if skip_labels else None)


def _is_label(el: lxml.html.HtmlElement) -> bool:
    """A section/kicker label printed inside a headline ("Politics | …")."""
    cls = el.get("class") or ""
    return bool(_LABEL_CLASS.search(cls)) and len(el.text_content().split()) <= 4


def _is_hidden(el: lxml.html.HtmlElement) -> bool:
    # aria-hidden text is still on screen (NYT hides captions that repeat the alt text)
    if el.get("hidden") is not None:
        return True
    style = (el.get("style") or "").replace(" ", "").lower()
    if "display:none" in style or "visibility:hidden" in style:
        return True
    return bool(_SR_ONLY.search(el.get("class") or ""))


def _meta_map(tree: lxml.html.HtmlElement) -> dict[str, list[str]]:
    """Meta values by lowercased name/property/itemprop/http-equiv, in page order."""
    out: dict[str, list[str]] = {}
    for el in tree.iter("meta"):
        value = el.get("content")
        if value is None:
            continue
        value = normalize_space(value)
        if not value:
            continue
        for attr in ("property", "name", "itemprop", "http-equiv"):
            key = el.get(attr)
            if key:
                out.setdefault(key.strip().lower(), []).append(value)
    return out


def _first(meta: dict[str, list[str]], keys: Iterable[str]) -> str | None:
    for key in keys:
        values = meta.get(key)
        if values:
            return values[0]
    return None


# ---------------------------------------------------------------- JSON-LD


def _load_json(text: str) -> Any:
    text = text.strip()
    if not text or len(text) > _MAX_JSON_CHARS:
        return None
    text = re.sub(r"^\s*(?:<!--|/\*\s*<!\[CDATA\[\s*\*/|<!\[CDATA\[)", "", text)
    text = re.sub(r"(?:-->|/\*\s*\]\]>\s*\*/|\]\]>)\s*$", "", text).strip()
    for attempt in (text, re.sub(r",\s*([}\]])", r"\1", text)):
        try:
            return json.loads(attempt, strict=False)
        except (ValueError, RecursionError):
            continue
    return None


def jsonld_nodes(tree: lxml.html.HtmlElement) -> list[tuple[int, JsonObj]]:
    """Every JSON-LD object on the page with its nesting depth, breadth-first.

    Items of ``@graph`` and of top-level lists count as top level. The walk is
    iterative and bounded, so hostile nesting cannot raise RecursionError.
    """
    out: list[tuple[int, JsonObj]] = []
    queue: list[tuple[Any, int]] = []
    for script in tree.iter("script"):
        if "ld+json" not in (script.get("type") or "").lower():
            continue
        data = _load_json(script.text or "")
        if data is not None:
            queue.append((data, 0))
    i = 0
    while i < len(queue) and len(out) < _MAX_NODES:
        item, depth = queue[i]
        i += 1
        if depth > _MAX_DEPTH:
            continue
        if isinstance(item, list):
            queue.extend((x, depth) for x in item if isinstance(x, dict | list))
        elif isinstance(item, dict):
            out.append((depth, item))
            for key, value in item.items():
                if isinstance(value, dict | list):
                    queue.append((value, depth if key == "@graph" else depth + 1))
    return out


def _types(obj: JsonObj) -> list[str]:
    value = obj.get("@type")
    values = value if isinstance(value, list) else [value]
    return [v.rsplit("/", 1)[-1] for v in values if isinstance(v, str)]


def _is_article(obj: JsonObj) -> bool:
    return any(t.casefold() in _ARTICLE_TYPES for t in _types(obj))


def _str_value(value: Any) -> str | None:
    """A plain string from a JSON-LD value (string, list of strings, {@value})."""
    if isinstance(value, str):
        return normalize_space(value) or None
    if isinstance(value, list):
        for v in value:
            s = _str_value(v)
            if s:
                return s
    if isinstance(value, dict):
        return _str_value(value.get("@value"))
    return None


def _same_page(obj: JsonObj, url: str | None) -> bool:
    if not url:
        return False
    want = _url_key(url)
    for key in ("url", "mainEntityOfPage", "@id"):
        value = obj.get(key)
        if isinstance(value, dict):
            value = value.get("@id") or value.get("url")
        if isinstance(value, str) and _url_key(value) == want:
            return True
    return False


def _url_key(url: str) -> str:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url
    host = (parts.hostname or "").removeprefix("www.")
    return host + parts.path.rstrip("/")


def _pick_article(nodes: list[tuple[int, JsonObj]], url: str | None) -> JsonObj | None:
    """The page's own article: the shallowest, preferring one that names this URL."""
    articles = [(d, o) for d, o in nodes if _is_article(o)]
    if not articles:
        return None
    best = min(
        articles,
        key=lambda p: (
            p[0],
            not _same_page(p[1], url),
            not (p[1].get("headline") or p[1].get("datePublished")),
        ),
    )
    return best[1]


def _resolve(value: Any, index: dict[str, JsonObj]) -> Any:
    """Follow a bare ``{"@id": …}`` reference to its full node."""
    if isinstance(value, dict) and set(value) <= {"@id", "@type"}:
        ref = value.get("@id")
        if isinstance(ref, str) and ref in index:
            return index[ref]
    return value


# ---------------------------------------------------------------- title


def _site_names(
    meta: dict[str, list[str]], article: JsonObj | None, index: dict[str, JsonObj],
    nodes: list[tuple[int, JsonObj]], url: str | None,
) -> list[str]:
    """Every name the site goes by, for recognizing " | Site" title segments."""
    names: list[str] = []
    publisher = _publisher_name(article, index)
    if publisher:
        names.append(publisher)
    for key in ("og:site_name", "application-name"):
        names.extend(meta.get(key, []))
    for _, obj in nodes:
        if any(t in ("WebSite", "Organization", "NewsMediaOrganization") for t in _types(obj)):
            name = _str_value(obj.get("name"))
            if name:
                names.append(name)
    mapped = source_for_url(url)
    if mapped:
        names.append(mapped)
    label = registrable_label(url)
    if label:
        names.append(label)
    # pages sometimes fill these fields with the headline itself
    return [n for n in names if len(n.split()) <= 6]


def _is_site_segment(segment: str, names: list[str]) -> bool:
    seg = _fold(segment)
    if not seg:
        return True
    for name in names:
        n = _fold(name)
        if not n:
            continue
        if seg == n or seg.removesuffix("com") == n or n.removesuffix("com") == seg:
            return True
        if len(n) >= 4 and len(seg) >= 3 and (n in seg or seg in n):
            return True
        if seg.removeprefix("the") == n.removeprefix("the"):
            return True
    return False


def strip_site_suffix(title: str, names: Iterable[str]) -> str:
    """Remove trailing (and leading) " | Site" segments that name the site.

    A segment is dropped only when it matches a known name of the site (the
    publisher, ``og:site_name``, the domain), so real colons and dashes in
    headlines survive.
    """
    names = [n for n in names if n]
    title = normalize_space(title)
    for _ in range(4):
        matches = list(_SEPARATORS.finditer(title))
        if not matches:
            break
        last = matches[-1]
        head, tail = title[: last.start()].strip(), title[last.end():].strip()
        if head and _is_site_segment(tail, names):
            title = head
            continue
        first = matches[0]
        head, tail = title[: first.start()].strip(), title[first.end():].strip()
        if tail and len(tail.split()) >= 3 and _is_site_segment(head, names):
            title = tail
            continue
        break
    return title


def _similarity(a: str, b: str) -> float:
    fa, fb = _fold(a), _fold(b)
    if not fa or not fb:
        return 0.0
    if fa == fb:
        return 1.0
    return SequenceMatcher(None, fa, fb, autojunk=False).ratio()


def _in_tag(el: lxml.html.HtmlElement, tags: frozenset[str]) -> bool:
    return any(isinstance(a.tag, str) and a.tag.lower() in tags for a in el.iterancestors())


_MAIN_TAGS = frozenset({"article", "main"})
_CHROME_TAGS = frozenset({"nav", "footer", "aside"})


def _clean_headline(text: str) -> str:
    """Drop a "[Watch]" tag and an "Opinion |" rubric around a headline."""
    text = _TRAILING_TAG.sub("", text)
    stripped = _RUBRIC_EDGE.sub("", text).strip()
    return stripped if len(stripped.split()) >= 2 else text


def _headline(
    tree: lxml.html.HtmlElement, refs: list[str], strong: list[str], names: list[str],
) -> str | None:
    """The visible headline: the ``<h1>`` that best matches the declared titles.

    ``refs`` are the page's declared titles (JSON-LD, OpenGraph, ``<title>``),
    ``strong`` the ones that name this story (not ``<title>``). When the best
    ``<h1>`` looks nothing like them but an ``<h2>`` of the story repeats
    them, the ``<h1>`` belongs to something else (a featured story).
    """
    candidates: list[tuple[float, int, str]] = []
    site_keys = {_fold(n) for n in names}
    for pos, h1 in enumerate(itertools.islice(tree.iter("h1"), _MAX_HEADINGS)):
        if _is_hidden(h1) or _in_tag(h1, _CHROME_TAGS):
            continue
        text = _clean_headline(_element_text(h1, skip_labels=True) or _element_text(h1))
        if not text or len(text) > 400:
            continue
        if _fold(text) in site_keys or (
            len(text.split()) <= 4 and _is_site_segment(text, names[:-1] or names)
        ):
            continue  # the site's logo as h1
        sim = max((_similarity(text, r) for r in refs), default=0.0)
        score = sim + (0.15 if _in_tag(h1, _MAIN_TAGS) else 0.0)
        candidates.append((score, -pos, text))
    best = max(candidates) if candidates else None
    if best is None or (strong and best[0] - 0.15 < 0.5):
        for h2 in itertools.islice(tree.iter("h2"), _MAX_HEADINGS):
            if _is_hidden(h2) or _in_tag(h2, _CHROME_TAGS) or not _in_tag(h2, _MAIN_TAGS):
                continue
            text = _element_text(h2, skip_labels=True)
            if text and max((_similarity(text, r) for r in strong), default=0.0) >= 0.9:
                return text
    if best is None:
        return None
    score, _, text = best
    if refs and score < 0.25 and len(text.split()) <= 3:
        return None  # a section name ("World") rather than the story's headline
    return text


# ---------------------------------------------------------------- dates


_OTHER_STORIES = re.compile(
    r"related|recommend|more-?(?:news|stories|publishings)|promo|teaser|card|trending|"
    r"most-?(?:read|popular)|sidebar|widget",
    re.I,
)


def _in_story(el: lxml.html.HtmlElement, page_has_h1: bool) -> bool:
    """Inside the story itself, not a card or list of other stories.

    The nearest ``<article>`` must hold a headline, because pages wrap each
    related-story teaser in an ``<article>`` of its own.
    """
    for anc in el.iterancestors():
        tag = anc.tag if isinstance(anc.tag, str) else ""
        if _OTHER_STORIES.search(anc.get("class") or "") or tag in ("aside", "nav", "footer"):
            return False
        if tag == "article":
            return not page_has_h1 or next(anc.iter("h1"), None) is not None
        if tag == "main":
            return True
    return False


def _time_elements(tree: lxml.html.HtmlElement) -> list[str]:
    """Published dates from ``<time datetime>``/``itemprop`` markup, best first.

    Elements marked as published, or in the article's header, come first;
    ones marked as modified are left out; a ``<time>`` with text only counts
    when it sits in the article, since lists of related stories print dates too.
    """
    found: list[tuple[int, int, str]] = []
    has_h1 = next(tree.iter("h1"), None) is not None
    elements = tree.xpath("//time | //*[@itemprop='datePublished']")[:_MAX_HEADINGS * 4]
    for pos, el in enumerate(elements):
        raw = el.get("datetime") or el.get("content") or ""
        in_main = _in_story(el, has_h1)
        if el.tag == "time" and not raw:
            if not in_main:
                continue
            raw = el.text_content()
        value = normalize_date(raw)
        if not value:
            continue
        hint = " ".join(
            (el.get(a) or "") for a in ("class", "itemprop", "id", "data-testid")
        ).lower()
        parent = el.getparent()
        if parent is not None:
            hint += " " + (parent.get("class") or "").lower()
        if "modif" in hint or "updat" in hint:
            continue
        rank = 0
        if el.get("pubdate") is not None or "datepublished" in hint or "publish" in hint:
            rank -= 4
        if in_main or _in_tag(el, frozenset({"header"})):
            rank -= 1
        if _in_tag(el, _CHROME_TAGS):
            rank += 3
        found.append((rank, pos, value))
    return [value for _, _, value in sorted(found)]


_DATE_HINT = re.compile(
    r"publish|posted|pubdate|post-?date|entry-?date|article-?date|story-?date|dateline|"
    r"byline-?date|date-?line|timestamp",
    re.I,
)
_SCRIPT_DATE = re.compile(
    r"[\"'](?:datePublished|pubDate|publishDate|publish_date|published_at|publishedAt|"
    r"date_published|firstPublished(?:Date|At)?|publicationDate|pub_date|displayDate)[\"']"
    r"\s*:\s*[\"']([^\"']{8,40})[\"']"
)


def _date_text_elements(tree: lxml.html.HtmlElement) -> str | None:
    """A date printed in an element named like a publication date ("date_posted")."""
    for n, el in enumerate(tree.iter()):
        if n > 20_000:
            break
        if not isinstance(el.tag, str) or el.tag in ("script", "style", "meta", "body", "html"):
            continue
        hint = f"{el.get('class') or ''} {el.get('id') or ''}"
        if not _DATE_HINT.search(hint) or re.search(r"modif|updat", hint, re.I):
            continue
        text = normalize_space(el.text_content())
        if not text or len(text) > 100 or re.search(r"updated|modified", text, re.I):
            continue
        value = normalize_date(text)
        if value:
            return value
    return None


def _script_dates(tree: lxml.html.HtmlElement) -> str | None:
    """A publication date in a page's data layer (``"pubDate": "2023-12-22"``)."""
    for script in tree.iter("script"):
        if "ld+json" in (script.get("type") or "").lower():
            continue
        text = script.text or ""
        if len(text) > _MAX_JSON_CHARS:
            continue
        for m in _SCRIPT_DATE.finditer(text):
            value = normalize_date(m.group(1))
            if value:
                return value
    return None


def _htmldate(tree: lxml.html.HtmlElement) -> str | None:
    """htmldate's original date, the last resort (it works on a copy: it prunes the tree).

    Its extensive search runs regexes over the whole text, seconds on a
    huge page, so it only runs on pages of ordinary size.
    """
    try:
        from htmldate import find_date
    except ImportError:  # pragma: no cover - htmldate is a declared dependency
        return None
    extensive = (
        sum(1 for _ in itertools.islice(tree.iter(), _HTMLDATE_MAX_ELEMENTS))
        < _HTMLDATE_MAX_ELEMENTS
        and len(tree.text_content()) < _HTMLDATE_MAX_CHARS
    )
    try:
        found = find_date(
            copy.deepcopy(tree), original_date=True, extensive_search=extensive
        )
    except Exception:  # htmldate raises assorted errors on hostile pages
        return None
    return normalize_date(found) if isinstance(found, str) else None


_HTMLDATE_MAX_ELEMENTS = 15_000
_HTMLDATE_MAX_CHARS = 300_000


def _refine(value: str | None, raw: object, candidates: Iterable[str | None]) -> str | None:
    """Upgrade a day-only date to the instant another published field gives.

    JSON-LD sometimes gives the day, or a time without a zone, while
    ``article:published_time`` or ``<time datetime>`` carries the instant
    with its zone. The candidate must agree with the trusted value: the same
    wall-clock minutes at some UTC offset (whole quarter hours, at most 14 h)
    for a zoneless time, or a UTC time within 14 h of that day for a bare day.
    """
    if not value or len(value) != 10:
        return value
    local = local_time(raw)
    day = dt.datetime.fromisoformat(value)
    for cand in candidates:
        if not cand or len(cand) <= 10:
            continue
        instant = dt.datetime.strptime(cand, "%Y-%m-%dT%H:%M:%SZ")
        if local is not None:
            delta = abs((local - instant).total_seconds())
            if delta <= 14 * 3600 and delta % 900 == 0:
                return cand
        elif day - _FOURTEEN_HOURS <= instant < day + dt.timedelta(days=1) + _FOURTEEN_HOURS:
            return cand
    return value


_FOURTEEN_HOURS = dt.timedelta(hours=14)


def _parsely(meta: dict[str, list[str]]) -> JsonObj:
    raw = _first(meta, ("parsely-page",))
    if not raw:
        return {}
    data = _load_json(raw)
    return data if isinstance(data, dict) else {}


# ---------------------------------------------------------------- the rest


def _authors(article: JsonObj | None, meta: dict[str, list[str]],
             index: dict[str, JsonObj]) -> tuple[str, ...]:
    found: list[str] = []
    if article is not None:
        value = article.get("author") or article.get("creator")
        items = value if isinstance(value, list) else [value]
        for item in items[:20]:
            item = _resolve(item, index)
            name = _str_value(item.get("name")) if isinstance(item, dict) else _str_value(item)
            if name:
                found.append(name)
    if not found:
        for key in _AUTHOR_META:
            found.extend(meta.get(key, []))
            if found:
                break
    out: list[str] = []
    for name in found:
        name = re.sub(r"^by\s+", "", normalize_space(name), flags=re.I)
        if not name or "://" in name or name.startswith("@") or len(name) > 100:
            continue
        if name.casefold() not in {o.casefold() for o in out}:
            out.append(name)
    return tuple(out)


def _language(tree: lxml.html.HtmlElement, meta: dict[str, list[str]],
              article: JsonObj | None) -> str | None:
    values: list[str | None] = [tree.get("lang"), tree.get("xml:lang")]
    values += [_first(meta, ("og:locale", "content-language", "language", "dc.language"))]
    if article is not None:
        values.append(_str_value(article.get("inLanguage")))
    for value in values:
        if not value:
            continue
        primary = re.split(r"[-_\s,;]", value.strip())[0].lower()
        if re.fullmatch(r"[a-z]{2,3}", primary):
            return primary
    return None


def _free(article: JsonObj | None) -> bool | None:
    if article is None:
        return None
    for obj in (article, article.get("hasPart")):
        objs = obj if isinstance(obj, list) else [obj]
        for o in objs:
            if not isinstance(o, dict) or "isAccessibleForFree" not in o:
                continue
            value = o["isAccessibleForFree"]
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
                return value.strip().lower() == "true"
    return None


def _publisher_name(article: JsonObj | None, index: dict[str, JsonObj]) -> str | None:
    if article is None:
        return None
    pub = _resolve(article.get("publisher") or article.get("sourceOrganization"), index)
    if isinstance(pub, list) and pub:
        pub = _resolve(pub[0], index)
    if isinstance(pub, dict):
        return _str_value(pub.get("name"))
    return _str_value(pub)


_TAGLINE = re.compile(r"\s+[|–—-]\s+|\s*[|:]\s+")


def _tidy_source(name: str | None) -> str | None:
    """"Isthmus | Madison, Wisconsin" → "Isthmus": site names often carry a tagline."""
    if not name:
        return None
    head = _TAGLINE.split(normalize_space(name), maxsplit=1)[0].strip()
    return head if head and len(head.split()) <= 8 else None


def _source_from_title(page_title: str | None, headline: str | None) -> str | None:
    """The " | Site" segment of ``<title>`` when the rest of it is the headline."""
    if not page_title or not headline:
        return None
    matches = list(_SEPARATORS.finditer(page_title))
    if not matches:
        return None
    last = matches[-1]
    head, tail = page_title[: last.start()], page_title[last.end():].strip()
    if 0 < len(tail.split()) <= 5 and _similarity(head, headline) >= 0.8:
        return tail
    return None


def _source(article: JsonObj | None, meta: dict[str, list[str]], index: dict[str, JsonObj],
            nodes: list[tuple[int, JsonObj]], url: str | None) -> str | None:
    """Publisher name, else og:site_name, else the built-in map, else the WebSite node."""
    found = _tidy_source(_publisher_name(article, index) or _first(meta, ("og:site_name",)))
    if found:
        return found
    mapped = source_for_url(url)
    if mapped:
        return mapped
    for _, obj in nodes:
        if "WebSite" in _types(obj):
            name = _str_value(obj.get("name"))
            if name:
                return name
    return None


def _page_url(tree: lxml.html.HtmlElement, meta: dict[str, list[str]]) -> str | None:
    for link in tree.iter("link"):
        if (link.get("rel") or "").strip().lower() == "canonical" and link.get("href"):
            href = str(link.get("href", "")).strip()
            if href.startswith(("http://", "https://")):
                return href
    og = _first(meta, ("og:url",))
    return og if og and og.startswith(("http://", "https://")) else None


def _iter_nonempty(values: Iterable[str | None]) -> Iterator[str]:
    for v in values:
        if v:
            yield v


def extract_metadata(tree: lxml.html.HtmlElement, url: str | None) -> Metadata:
    """Read the page's metadata without modifying ``tree``."""
    meta = _meta_map(tree)
    url = url or _page_url(tree, meta)
    nodes = jsonld_nodes(tree)
    index: dict[str, JsonObj] = {}
    for _, obj in nodes:
        ref = obj.get("@id")
        if isinstance(ref, str) and ref not in index:
            index[ref] = obj
    article = _pick_article(nodes, url)
    names = _site_names(meta, article, index, nodes, url)

    # title
    ld_headline = _str_value(article.get("headline") or article.get("name")) if article else None
    title_tag = tree.find(".//title")
    page_title = _element_text(title_tag) if title_tag is not None else None
    strong = [
        _clean_headline(strip_site_suffix(t, names))
        for t in _iter_nonempty(
            [ld_headline, _first(meta, ("og:title",)), _first(meta, ("twitter:title",))]
        )
    ]
    declared = strong + (
        [_clean_headline(strip_site_suffix(page_title, names))] if page_title else []
    )
    title = _headline(tree, declared, strong, names) or next(iter(declared), None) or None

    # dates
    parsely = _parsely(meta)
    trusted: list[object] = [
        article.get("datePublished") if article else None,
        *(_first(meta, (k,)) for k in _PUBLISHED_META),
        parsely.get("pub_date"),
        article.get("dateCreated") if article else None,
        # a WebPage's date; deeper nodes are often other stories (ItemList)
        *(o.get("datePublished") for d, o in nodes if d <= 1),
    ]
    normalized = [(raw, normalize_date(raw)) for raw in trusted]
    chosen = next(((raw, v) for raw, v in normalized if v), None)
    time_pubs = _time_elements(tree)
    if chosen is None:
        published = (
            next(iter(time_pubs), None) or _date_text_elements(tree) or _script_dates(tree)
            or _htmldate(tree)
        )
    else:
        others = [v for _, v in normalized if v and v != chosen[1]]
        published = _refine(chosen[1], chosen[0], [*others, *time_pubs])
    ld_mod = normalize_date(article.get("dateModified")) if article else None
    meta_mod = next(
        (v for v in (normalize_date(_first(meta, (k,))) for k in _MODIFIED_META) if v), None
    )
    modified = ld_mod or meta_mod

    source = _source(article, meta, index, nodes, url) or _source_from_title(page_title, title)

    page_type = None
    if article is not None:
        page_type = next(iter(_types(article)), None)
    if page_type is None:
        page_type = next(
            (t for d, o in nodes if d == 0 for t in _types(o)
             if t not in ("WebSite", "Organization", "BreadcrumbList", "NewsMediaOrganization")),
            None,
        ) or _first(meta, ("og:type",))

    return Metadata(
        title=title or None,
        source=source or None,
        published=published,
        modified=modified,
        authors=_authors(article, meta, index),
        language=_language(tree, meta, article),
        is_accessible_for_free=_free(article),
        page_type=page_type,
        article_body=_article_body(article),
    )


def _article_body(article: JsonObj | None) -> str | None:
    value = article.get("articleBody") if article else None
    return value if isinstance(value, str) and value.strip() else None
