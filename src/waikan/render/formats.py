"""Post renderings: text (the seed layout), markdown, html, json.

Each is a function ``Post -> str`` registered by name, so channels and
third-party formats plug in the same way.
"""

from __future__ import annotations

import json
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from waikan.models import Post, reading_minutes
from waikan.plugins import Registry
from waikan.render.post import meta_line, summary_line, timestamp, title_line

_env = Environment(
    loader=PackageLoader("waikan.render", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    keep_trailing_newline=False,
)


def render_text(post: Post) -> str:
    """The seed layout, byte for byte: blank lines exactly as the reference post."""
    blocks = [post.channel, title_line(post), meta_line(post), summary_line(post)]
    head = [line for line in (timestamp(post), post.caption) if line]
    if head:
        blocks.append("\n".join(head))
    blocks.extend(post.paragraphs)
    if len(outlets := post_outlets(post)) > 1:
        blocks.append("报道来源：" + "、".join(str(o["source"] or o["url"]) for o in outlets))
    return "\n\n".join(blocks)


def post_outlets(post: Post) -> list[dict[str, Any]]:
    """The story's outlets (canonical first) that dedupe put in ``meta``; [] when unknown."""
    found = post.meta.get("outlets")
    return [o for o in found if isinstance(o, dict)] if isinstance(found, list) else []


def post_fields(post: Post) -> dict[str, Any]:
    """Every field of a post, machine-readable; the json and markdown formats share it."""
    return {
        "id": post.id,
        "channel": post.channel,
        "source": post.source,
        "title": post.title,
        "title_line": title_line(post),
        "title_zh": post.title_zh,
        "url": post.url,
        "published": post.published,
        "meta": meta_line(post),
        "word_count": post.word_count,
        "reading_minutes": reading_minutes(post.word_count, post.reading_wpm),
        "summary": list(post.summary),
        "summary_is_excerpt": post.is_excerpt,
        "caption": post.caption,
        "image_url": post.image_url,
        "paragraphs": list(post.paragraphs),
        "language": post.language,
        "status": post.status,
        "outlets": post_outlets(post),
    }


def render_json(post: Post) -> str:
    return json.dumps(post_fields(post), ensure_ascii=False, indent=2)


def render_markdown(post: Post) -> str:
    """Front matter (JSON values are valid YAML) for Hugo/Jekyll, then the seed's content."""
    fields = post_fields(post)
    front = [f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in fields.items()]
    body = [f"# {_md_escape(title_line(post))}", meta_line(post)]
    body += [_md_escape(p) for p in post.summary]
    if (ts := timestamp(post)) is not None:
        body.append(ts)
    if post.caption:
        body.append(f"*{_md_escape(post.caption)}*")
    body += [_md_escape(p) for p in post.paragraphs]
    if post.url:
        body.append(f"<{post.url}>")
    if len(outlets := post_outlets(post)) > 1:
        body.append(
            "\n".join(
                f"- [{_md_escape(str(o['source'] or o['url']))}](<{o['url']}>)"
                if o.get("url")
                else f"- {_md_escape(str(o['source']))}"
                for o in outlets
            )
        )
    return "---\n" + "\n".join(front) + "\n---\n\n" + "\n\n".join(body) + "\n"


def _md_escape(text: str) -> str:
    # Source text is data: neutralise markup characters a Markdown engine would act on.
    for ch in "\\`*_[]<>#|":
        text = text.replace(ch, "\\" + ch)
    return text


def render_html(post: Post) -> str:
    return _env.get_template("post.html").render(
        post=post,
        title_line=title_line(post),
        meta=meta_line(post),
        timestamp=timestamp(post),
        outlets=post_outlets(post),
    )


def register(registry: Registry) -> None:
    registry.add_format("text", render_text)
    registry.add_format("markdown", render_markdown)
    registry.add_format("html", render_html)
    registry.add_format("json", render_json)
