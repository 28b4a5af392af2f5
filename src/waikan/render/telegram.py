"""The ``telegram`` rendering: the seed layout as Bot API HTML, split as Telegram counts.

A post becomes *blocks* (the seed's paragraphs, blank lines between them),
each a list of styled *segments*. Rendering escapes the text of every
segment, so source text can never open a tag; the only tags written are
ones Telegram allows (``b``, ``i``, ``a``). Lengths are counted as Telegram
counts them: UTF-16 code units of the text after entity parsing, i.e. of
the plain segments. A block longer than a message is cut at a sentence
boundary, else at a space, else anywhere (never inside a surrogate pair);
blocks are then packed greedily, so nothing is lost and order is kept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from waikan.models import Post
from waikan.plugins import Registry
from waikan.render.post import meta_line, summary_line, timestamp, title_line

__all__ = [
    "CAPTION_LIMIT",
    "TEXT_LIMIT",
    "Segment",
    "escape",
    "photo_caption",
    "post_blocks",
    "render_block",
    "render_telegram",
    "split_messages",
    "utf16_len",
]

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Segment:
    text: str
    tag: str = ""  # "" | "b" | "i" | "a"
    href: str | None = None


Block = tuple[Segment, ...]


def utf16_len(text: str) -> int:
    """Telegram's length: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def escape(text: str, *, quote: bool = False) -> str:
    """Only the entities Telegram's HTML mode knows: &amp; &lt; &gt; &quot;."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace('"', "&quot;") if quote else text


def render_segment(seg: Segment) -> str:
    body = escape(seg.text)
    if seg.tag == "a" and seg.href:
        return f'<a href="{escape(seg.href, quote=True)}">{body}</a>'
    if seg.tag in ("b", "i"):
        return f"<{seg.tag}>{body}</{seg.tag}>"
    return body


def render_block(block: Block) -> str:
    return "".join(render_segment(s) for s in block)


def plain(block: Block) -> str:
    return "".join(s.text for s in block)


def post_blocks(
    post: Post, *, page_url: str | None = None, with_title_zh: bool = True
) -> list[Block]:
    """The seed's layout as blocks: channel, title, meta, summary, timestamp+caption, body."""
    blocks: list[Block] = [(Segment(post.channel, "b"),), (Segment(title_line(post), "b"),)]
    if with_title_zh and post.title_zh:
        blocks.append((Segment(post.title_zh, "b"),))
    blocks.append((Segment(meta_line(post)),))
    if summary := summary_line(post):
        blocks.append((Segment(summary),))
    head: list[Segment] = []
    if (ts := timestamp(post)) is not None:
        head.append(Segment(ts))
    if post.caption:
        if head:
            head.append(Segment("\n"))
        head.append(Segment(post.caption, "i"))
    if head:
        blocks.append(tuple(head))
    blocks.extend((Segment(p),) for p in post.paragraphs if p.strip())
    links: list[Segment] = []
    if page_url:
        links += [Segment("网页版", "a", page_url)]
    if post.url:
        links += [Segment(" · ")] if links else []
        links += [Segment("原文", "a", post.url)]
    if links:
        blocks.append(tuple(links))
    return blocks


def render_telegram(post: Post) -> str:
    """The whole post as one HTML text (``waikan show --format telegram``); unsplit."""
    return SEPARATOR.join(render_block(b) for b in post_blocks(post))


# -- splitting -------------------------------------------------------------------------

# After a sentence end (Latin or CJK), with closing quotes/brackets kept on the left.
_SENTENCE_END = re.compile(r"[.!?。！？…；;](?:[\"'”’」』)）\]]*)(?:\s+|(?=\S))")
_SPACE = re.compile(r"\s+")


def _slice(block: Block, start: int, end: int) -> Block:
    """Segments covering plain-text code points [start, end)."""
    out: list[Segment] = []
    pos = 0
    for seg in block:
        lo, hi = pos, pos + len(seg.text)
        pos = hi
        a, b = max(lo, start), min(hi, end)
        if a < b:
            out.append(Segment(seg.text[a - lo : b - lo], seg.tag, seg.href))
    return tuple(out)


def _strip(block: Block) -> Block:
    """Drop leading/trailing whitespace (Telegram trims it; it is a split point anyway)."""
    text = plain(block)
    left = len(text) - len(text.lstrip())
    right = len(text.rstrip())
    return _slice(block, left, right) if right > left else ()


def _prefix_fitting(text: str, limit: int) -> int:
    """Largest code-point count whose UTF-16 length is <= limit."""
    units = 0
    for i, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return i
    return len(text)


def _cut_point(text: str, limit: int) -> int:
    """Where to cut ``text`` so the left part fits: sentence end, else space, else hard."""
    room = _prefix_fitting(text, limit)
    if room >= len(text):
        return len(text)
    best = 0
    for m in _SENTENCE_END.finditer(text, 0, room + 1):
        if m.end() <= room:
            best = m.end()
    if best > room // 3:  # a sentence end not absurdly early; else prefer a word break
        return best
    spaces = [m.start() for m in _SPACE.finditer(text, 0, room + 1) if 0 < m.start() <= room]
    if spaces and spaces[-1] > room // 3:
        return spaces[-1]
    return best or room


def split_block(block: Block, limit: int) -> list[Block]:
    pieces: list[Block] = []
    rest = _strip(block)
    while rest and utf16_len(plain(rest)) > limit:
        cut = _cut_point(plain(rest), limit)
        head = _strip(_slice(rest, 0, cut))
        if head:
            pieces.append(head)
        rest = _strip(_slice(rest, cut, len(plain(rest))))
    if rest:
        pieces.append(rest)
    return pieces


def split_messages(blocks: Sequence[Block], limit: int = TEXT_LIMIT) -> list[str]:
    """HTML messages of at most ``limit`` units each (after entity parsing), in order."""
    sep = utf16_len(SEPARATOR)
    messages: list[list[Block]] = []
    size = 0
    for block in blocks:
        for piece in split_block(block, limit):
            n = utf16_len(plain(piece))
            if messages and size + sep + n <= limit:
                messages[-1].append(piece)
                size += sep + n
            else:
                messages.append([piece])
                size = n
    return [SEPARATOR.join(render_block(b) for b in msg) for msg in messages]


def photo_caption(post: Post, limit: int = CAPTION_LIMIT) -> str:
    """Title and meta line for the lead photo; the title is shortened only past the limit
    (the full title is in the text messages anyway)."""
    title = title_line(post)
    meta = meta_line(post)
    room = limit - utf16_len(meta) - utf16_len(SEPARATOR)
    if utf16_len(title) > room:
        title = title[: _prefix_fitting(title, max(0, room - 1))] + "…"
    return f"<b>{escape(title)}</b>{SEPARATOR}{escape(meta)}"


def register(registry: Registry) -> None:
    registry.add_format("telegram", render_telegram)
