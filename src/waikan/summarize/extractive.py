"""Offline excerpt: the article's key sentences, clearly labelled as not a summary.

No model and no network, so ``waikan demo`` and fresh installs work anywhere.
It never pretends to be a translation: the label comes first (SPEC §1).
Scoring is the classic frequency method (Luhn 1958) plus a lead bonus, since
news puts what matters first; a library would add weight for no gain here.
"""

from __future__ import annotations

import re
from collections import Counter

import pysbd

from waikan.config import Config
from waikan.models import Summary
from waikan.plugins import Registry
from waikan.summarize.base import SummaryRequest

EXCERPT_LABEL = "【原文摘录，非中文摘要】"

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)
_STOP = frozenset(
    """a an the and or but if of to in on at by for with from as is are was were be been being
    it its this that these those he she they we you i his her their our your him them us not no
    has have had do does did will would can could should may might must said says say also than
    then there here which who whom whose what when where why how all any each more most other
    some such into over after before about against between during without within up down out
    off so very just only own same too s t""".split()
)


_SEGMENTERS: dict[str, pysbd.Segmenter] = {}


def split_sentences(text: str, language: str | None = "en") -> list[str]:
    """Sentences by pysbd's rules, which know abbreviations like U.S., Mr. and D.C."""
    lang = (language or "en").split("-")[0].lower()
    if lang not in pysbd.languages.LANGUAGE_CODES:
        lang = "en"
    seg = _SEGMENTERS.get(lang)
    if seg is None:
        seg = _SEGMENTERS[lang] = pysbd.Segmenter(language=lang, clean=False)
    return [s.strip() for s in seg.segment(text) if s.strip()]


class ExtractiveBackend:
    name = "extractive"

    def __init__(self, sentences: int = 5) -> None:
        self.sentences = sentences

    def summarize(self, request: SummaryRequest) -> Summary:
        picked = self.key_sentences(request.paragraphs, request.language)
        return Summary(
            paragraphs=(EXCERPT_LABEL, *picked),
            backend=self.name,
            model=None,
            prompt_version=None,
            is_excerpt=True,
        )

    def key_sentences(self, paragraphs: tuple[str, ...], language: str | None = "en") -> list[str]:
        sentences = [s for p in paragraphs for s in split_sentences(p, language)]
        if len(sentences) <= self.sentences:
            return sentences
        words = [[w.casefold() for w in _WORD.findall(s)] for s in sentences]
        freq = Counter(w for ws in words for w in ws if w not in _STOP and len(w) > 2)
        top = max(freq.values(), default=1)
        scores = []
        for i, ws in enumerate(words):
            content = [freq[w] / top for w in ws if w in freq]
            density = sum(content) / (len(ws) ** 0.5) if ws else 0.0
            lead = 1.0 / (1 + i * 0.35)  # the first sentences of a news story carry the most
            scores.append(density + lead)
        best = sorted(range(len(sentences)), key=lambda i: -scores[i])[: self.sentences]
        return [sentences[i] for i in sorted(best)]


def register(registry: Registry) -> None:
    def factory(config: Config) -> ExtractiveBackend:
        return ExtractiveBackend(int(config["summarize.excerpt_sentences"]))

    registry.add_backend("extractive", factory)
