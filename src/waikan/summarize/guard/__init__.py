"""The faithfulness guard: deterministic, offline checks of a Chinese summary.

Contract: :func:`check` takes the summary paragraphs and the article and
returns :class:`Finding` records (empty when the summary passes). It never
calls a model and never raises on odd text: a check that cannot judge says
nothing rather than guess, so the findings stay trustworthy.
"""

from __future__ import annotations

from dataclasses import dataclass

from waikan.summarize.glossary import Glossary, Hit
from waikan.summarize.guard.names import name_problems
from waikan.summarize.guard.numbers import article_facts, trace, zh_quantities
from waikan.summarize.guard.text import han_count, injection_sentences, shape_problems

__all__ = ["Article", "Finding", "check", "han_count", "injection_sentences"]


@dataclass(frozen=True)
class Finding:
    kind: str  # number | date | name | language | structure | length | url | chatter | instruction
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Article:
    """What the guard needs of an article: its text and publication date."""

    text: str
    published: str | None = None

    @classmethod
    def of(
        cls,
        title: str | None,
        caption: str | None,
        paragraphs: tuple[str, ...] | list[str],
        published: str | None,
    ) -> Article:
        parts = [p for p in (title, caption, *paragraphs) if p]
        return cls("\n".join(parts), published)


_DATE_KINDS = {"date", "day", "month", "year", "weekday"}


def check(
    paragraphs: tuple[str, ...] | list[str],
    article: Article,
    glossary: Glossary,
    *,
    hits: list[Hit] | None = None,
    min_han: int = 200,
    max_han: int = 700,
    paragraphs_wanted: int = 4,
) -> list[Finding]:
    """Every problem of the summary, in a stable order (shape, numbers, names)."""
    if hits is None:
        hits = glossary.find(article.text)
    text = "\n".join(paragraphs)
    findings = [
        Finding(p.split(":", 1)[0], p)
        for p in shape_problems(
            paragraphs,
            min_han=min_han,
            max_han=max_han,
            paragraphs_wanted=paragraphs_wanted,
            article=article.text,
        )
    ]
    if not han_count(text):
        return findings  # nothing Chinese to trace
    masked = glossary.numeral_forms
    facts = article_facts(article.text, article.published)
    seen: set[str] = set()
    for q in zh_quantities(text, masked):
        if q.text in seen or trace(q, facts):
            continue
        seen.add(q.text)
        kind = "date" if q.kind in _DATE_KINDS else "number"
        what = {"date": "date", "number": "figure"}[kind]
        findings.append(Finding(kind, f"{kind}: {what} {q.text} is not in the article"))
    findings.extend(Finding("name", p) for p in name_problems(text, hits, glossary, article.text))
    return findings
