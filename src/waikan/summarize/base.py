"""The summary backend interface.

Contract: ``Backend.summarize(request)`` returns a :class:`~waikan.models.Summary`
whose ``paragraphs`` are final text (full-width punctuation applied). It
raises :class:`~waikan.errors.SummarizeError` for anything the caller should
retry later (endpoint down, timeout, garbage answer); the article's status is
then left unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from waikan.models import Summary


@dataclass(frozen=True)
class SummaryRequest:
    """One article to summarize.

    ``glossary`` holds (English, Chinese) standard names found in the article;
    ``feedback`` the guard's problems with a previous answer, for the one retry.
    """

    title: str | None
    source: str | None
    published: str | None
    paragraphs: tuple[str, ...]
    language: str | None = None
    glossary: tuple[tuple[str, str], ...] = ()
    feedback: tuple[str, ...] = ()


class Backend(Protocol):
    name: str

    def summarize(self, request: SummaryRequest) -> Summary: ...


_HAN = r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]"
_FULLWIDTH = {",": "，", ";": "；", ":": "：", "?": "？", "!": "！"}
_PUNCT_NEXT_TO_HAN = re.compile(rf"(?<={_HAN})\s*([,;:?!])\s*|\s*([,;:?!])\s*(?={_HAN})")


def fullwidth_punctuation(text: str) -> str:
    """ASCII ``, ; : ? !`` touching a Han character become full-width (SPEC §1)."""

    def sub(m: re.Match[str]) -> str:
        return _FULLWIDTH[m.group(1) or m.group(2)]

    return _PUNCT_NEXT_TO_HAN.sub(sub, text)


def split_paragraphs(answer: str) -> list[str]:
    """Paragraphs of a model answer: blank-line separated, else line separated.

    NUL is dropped: no post holds one, and PostgreSQL text cannot (it crashed the run).
    """
    text = answer.replace("\r\n", "\n").replace("\x00", "").strip()
    parts = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    if len(parts) == 1:
        parts = [p for p in text.split("\n") if p.strip()]
    return [" ".join(p.split()) for p in parts]
