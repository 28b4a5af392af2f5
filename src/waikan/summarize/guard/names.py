"""Name checks: a name in the summary is a glossary form of someone in the article.

Two kinds of mistakes are caught. A near miss — a one-character change of a
glossary form of someone or something the article names (布琳肯 for 布林肯,
王义 for 王毅) — is another rendering of someone in the article. A
``·``-joined transliterated name that shares no part with a person the article
names, and whose parts do not even begin like a name in the article, maps to
nobody in it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from waikan.summarize.glossary import Entry, Glossary, Hit

__all__ = ["name_problems"]

_DOTTED = re.compile(r"[\u4e00-\u9fff]{1,10}(?:[·•・][\u4e00-\u9fff]{1,10})+")
_TITLES = (
    "国务卿",
    "外长",
    "部长",
    "主席",
    "总统",
    "总理",
    "首相",
    "顾问",
    "发言人",
    "大使",
    "秘书长",
    "议长",
    "总裁",
    "董事长",
    "首席执行官",
    "国王",
    "委员",
    "司令",
    "主任",
)
_SAID = (
    "表示",
    "说",
    "称",
    "指出",
    "强调",
    "认为",
    "会见",
    "会晤",
    "访问",
    "宣布",
    "警告",
    "呼吁",
    "政府",
    "总统",
    "政权",
    "时期",
    "团队",
    "阵营",
    "家族",
    "先生",
    "女士",
    "当局",
    "希望",
    "计划",
    "曾",
    "则",
    "还",
    "也",
    "与",
    "和",
    "在",
    "的",
)

# Latin onsets a transliteration syllable may stand for (Xinhua's tables, loosely:
# Chinese has no /r/ or /v/, and Ch/J/G/Z/Ts blur).
_ONSETS: dict[str, str] = {}
for _chars, _letters in (
    ("阿埃艾安昂奥欧厄恩尔", "aeiouyh"),
    ("巴拜班邦鲍贝本比宾波伯博布", "bp"),
    ("卡凯坎康考柯科克肯库夸奎昆", "kcqg"),
    ("达戴丹道德迪丁东杜多", "dt"),
    ("法范菲费芬丰冯弗福富", "fvph"),
    ("加盖甘冈高戈格贡古瓜圭", "gkcj"),
    ("哈海汉豪赫亨洪胡华怀惠霍", "hkwj"),
    ("贾杰吉基金", "jgcdy"),
    ("拉莱兰朗劳勒雷黎里利莉丽林琳卢鲁伦罗洛", "lr"),
    ("马玛迈麦曼梅门蒙米明莫姆穆", "m"),
    ("纳娜奈南内尼宁努诺", "n"),
    ("帕派潘庞佩彭皮普", "pb"),
    ("萨塞桑瑟森沙莎尚舍什施史斯苏索", "sczx"),
    ("塔泰坦汤唐陶特蒂提廷图托", "tdc"),
    ("瓦万旺威韦维温沃乌", "vwuo"),
    ("西希夏谢辛休肖", "xshc"),
    ("雅亚扬耶伊因英尤约", "yjieu"),
    ("扎泽詹兹祖佐", "zjgc"),
    ("查乔切琼丘奇齐契", "cjqk"),
):
    for _ch in _chars:
        _ONSETS[_ch] = _letters
_CAPS = re.compile(r"\b[A-Z][a-zA-Z'’\-]+(?:\s+[A-Z][a-zA-Z'’\-]+)*")


def _hamming1(a: str, b: str) -> bool:
    return len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) == 1


def _insert1(short: str, long: str) -> bool:
    """``long`` is ``short`` with one character added inside (布林克肯)."""
    if len(long) != len(short) + 1:
        return False
    return any(long[:i] + long[i + 1 :] == short for i in range(1, len(long) - 1))


def _checked_forms(hits: Iterable[Hit]) -> list[tuple[str, Entry]]:
    out: list[tuple[str, Entry]] = []
    for hit in hits:
        entry = hit.entry
        if entry.kind == "title":
            continue
        for form in (*entry.forms, *entry.parts):
            if "·" in form:
                continue
            if len(form) >= 3 or (entry.kind == "person" and len(form) == 2):
                out.append((form, entry))
    return out


def _in_name_position(text: str, start: int, end: int) -> bool:
    before, after = text[max(0, start - 5) : start], text[end : end + 2]
    return before.endswith(_TITLES) or after.startswith(_SAID)


def _starts(form: str, size: int, at: _Positions) -> list[int]:
    """Where a near miss of ``form`` of ``size`` characters can start in the summary: a
    one-character change keeps the first or the second character in place, an insertion
    inside keeps the first."""
    first = at[form[0]]
    if size > len(form):
        return first
    return sorted({*first, *(p - 1 for p in at[form[1]] if p)})


class _Positions(dict[str, list[int]]):
    """Character → its positions in a text, found on first use."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def __missing__(self, ch: str) -> list[int]:
        found, i = [], self.text.find(ch)
        while i >= 0:
            found.append(i)
            i = self.text.find(ch, i + 1)
        self[ch] = found
        return found


def name_problems(summary: str, hits: list[Hit], glossary: Glossary, article: str) -> list[str]:
    """Problems found with names, as one-line messages."""
    problems: list[str] = []
    known = glossary.chinese_forms
    covered: list[tuple[int, int]] | None = None  # spans of correct names, when needed
    at = _Positions(summary)
    seen: set[str] = set()
    for form, entry in _checked_forms(hits):
        n = len(form)
        for size in (n, n + 1):
            if size > n and n < 3:
                continue
            for i in _starts(form, size, at):
                cand = summary[i : i + size]
                if len(cand) < size or cand in seen or cand in known or not _all_han(cand):
                    continue
                if not (_hamming1(form, cand) if size == n else _insert1(form, cand)):
                    continue
                if covered is None:
                    covered = _covered_spans(summary, known)
                if any(a <= i and i + size <= b for a, b in covered):
                    continue  # part of a longer correct name (乔·拜登 holds 拜登)
                if size == n:
                    d = next(k for k in range(n) if form[k] != cand[k]) + i
                    if any(a <= d < b for a, b in covered):
                        continue  # the odd character belongs to another name (美国国务卿)
                if n == 2 and not _in_name_position(summary, i, i + size):
                    continue  # 拜访 is a word, not a misspelt 拜登
                seen.add(cand)
                problems.append(
                    f"name: {cand} is not the standard form {form} ({entry.en}); "
                    f"use {entry.zh_hans}"
                )
    persons = [h.entry for h in hits if h.entry.kind == "person"]
    person_parts = {p for e in persons for p in (*e.parts, *e.forms)}
    dotted_forms = glossary.dotted_forms
    for form in dotted_forms:
        if form in summary:
            entry = known[form]
            if entry.kind == "person" and entry not in persons:
                seen.add(form)
                problems.append(f"name: {form} ({entry.en}) is not named in the article")
    caps: list[list[str]] | None = None
    for m in _DOTTED.finditer(summary):
        name = re.sub(r"[•・]", "·", m.group())
        if name in seen or any(form in name for form in seen if "·" in form):
            continue
        if any(form in name for form in dotted_forms):
            continue  # a glossary name (the match may run into the words around it)
        parts = [p for p in name.split("·") if p]
        # The regex cannot tell where the name starts and ends (会见约翰·史密斯表示):
        # the first part may carry words before it, the last part words after it.
        first, last, middle = parts[0], parts[-1], parts[1:-1]
        if (
            any(first.endswith(p) for p in person_parts)
            or any(last.startswith(p) for p in person_parts)
            or any(p in person_parts for p in middle)
        ):
            continue
        if caps is None:
            caps = [m.group().split() for m in _CAPS.finditer(article)]
        if _maps_to_article([first[-4:], last[:4]], caps):
            continue
        seen.add(name)
        problems.append(f"name: {name} maps to nobody named in the article")
    return problems


def _all_han(text: str) -> bool:
    return all("\u4e00" <= c <= "\u9fff" for c in text)


def _covered_spans(text: str, known: Iterable[str]) -> list[tuple[int, int]]:
    spans = []
    for form in known:
        if len(form) < 2:
            continue
        start = text.find(form)
        while start >= 0:
            spans.append((start, start + len(form)))
            start = text.find(form, start + 1)
    return spans


def _maps_to_article(parts: list[str], caps: list[list[str]]) -> bool:
    """The first and last parts begin like the first and last words of a name in the article."""
    first, last = _ONSETS.get(parts[0][0]), _ONSETS.get(parts[-1][0])
    if first is None or last is None:
        return True  # not a transliteration we can judge: no finding rather than a guess
    for words in caps:
        if len(words) < 2:
            continue
        for i in range(len(words) - 1):
            a, b = words[i][0].lower(), words[-1][0].lower()
            if a in first and b in last:
                return True
    return False
