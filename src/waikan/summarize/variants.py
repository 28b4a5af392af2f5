"""Script variants: zh-Hant-TW and zh-Hant-HK summaries from the stored zh-Hans text.

Summaries are written and checked in Simplified Chinese; a channel in
Traditional script gets them converted with the official ``opencc`` package
(``s2twp`` for Taiwan, with its phrasing; ``s2hk`` for Hong Kong). OpenCC
converts characters, not names: 特朗普 is 川普 in Taiwan and 悉尼 is 雪梨,
so glossary names (built-in and the user's) are swapped for their regional
forms around the conversion.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from waikan.summarize.glossary import Glossary, builtin

__all__ = ["CONFIGS", "to_variant"]

CONFIGS = {"zh-Hant-TW": "s2twp", "zh-Hant-HK": "s2hk"}
_PLACEHOLDER = 0xF0000  # Unicode plane 15 private use: OpenCC passes it through untouched


@functools.cache
def _converter(config: str) -> Any:
    import opencc

    return opencc.OpenCC(config)


@functools.cache
def _builtin() -> Glossary:
    return Glossary.of(builtin())


def to_variant(
    texts: Sequence[str], variant: str, glossary: Glossary | None = None
) -> tuple[str, ...]:
    """``texts`` in the script of ``variant`` (unchanged for zh-Hans), with the regional
    names of ``glossary`` — the merged one of :func:`~waikan.summarize.service.load_glossary`,
    so user entries count — or of the built-in glossary alone."""
    config = CONFIGS.get(variant)
    if config is None:
        return tuple(texts)
    names = (glossary or _builtin()).regional_names(variant)
    converter = _converter(config)
    out = []
    for text in texts:
        used: list[str] = []
        for hans, regional in names:
            if hans in text:
                text = text.replace(hans, chr(_PLACEHOLDER + len(used)))
                used.append(regional)
        text = converter.convert(text)
        for i, regional in enumerate(used):
            text = text.replace(chr(_PLACEHOLDER + i), regional)
        out.append(text)
    return tuple(out)
