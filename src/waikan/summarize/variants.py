"""Script variants: zh-Hant-TW and zh-Hant-HK summaries from the stored zh-Hans text.

Summaries are written and checked in Simplified Chinese; a channel in
Traditional script gets them converted with the official ``opencc`` package
(``s2twp`` for Taiwan, with its phrasing; ``s2hk`` for Hong Kong). OpenCC
converts characters, not names: 特朗普 is 川普 in Taiwan and 悉尼 is 雪梨,
so glossary names are swapped for their regional forms around the conversion.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from waikan.summarize.glossary import Entry, builtin

__all__ = ["CONFIGS", "to_variant"]

CONFIGS = {"zh-Hant-TW": "s2twp", "zh-Hant-HK": "s2hk"}
_PLACEHOLDER = 0xF0000  # Unicode plane 15 private use: OpenCC passes it through untouched


@functools.cache
def _converter(config: str) -> Any:
    import opencc

    return opencc.OpenCC(config)


def _regional_map(entries: Sequence[Entry], variant: str) -> dict[str, str]:
    """Simplified form → regional form, for entries whose regional column is filled;
    the parts of a ``·``-joined name map part by part (特朗普 → 川普)."""
    out: dict[str, str] = {}
    for entry in entries:
        regional = entry.regional(variant)
        if not regional or regional == entry.zh_hans:
            continue
        out[entry.zh_hans] = regional
        ours, theirs = entry.zh_hans.split("·"), regional.split("·")
        if len(ours) == len(theirs) > 1:
            for a, b in zip(ours, theirs, strict=True):
                if len(a) >= 2 and a != b:
                    out.setdefault(a, b)
        elif "·" not in regional:
            for v in entry.variants:  # 贺锦丽 and 哈里斯 both become 賀錦麗
                out.setdefault(v, regional)
    return out


@functools.cache
def _builtin_map(variant: str) -> tuple[tuple[str, str], ...]:
    mapping = _regional_map(builtin(), variant)
    return tuple(sorted(mapping.items(), key=lambda kv: -len(kv[0])))


def to_variant(
    texts: Sequence[str], variant: str, entries: Sequence[Entry] | None = None
) -> tuple[str, ...]:
    """``texts`` in the script of ``variant`` (unchanged for zh-Hans)."""
    config = CONFIGS.get(variant)
    if config is None:
        return tuple(texts)
    if entries is None:
        names = _builtin_map(variant)
    else:
        names = tuple(sorted(_regional_map(entries, variant).items(), key=lambda kv: -len(kv[0])))
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
