"""Quantities on both sides: Chinese summary text and the English article.

Every number, date, percentage, amount and count in a summary must be
traceable to the article. Both sides are normalized to :class:`Quantity`
(kind, value, unit) and matched by kind: an ordinal (第三天) never traces to
the count in "three-day", a duration needs its unit, a date is a month and a
day. Chinese numerals are parsed here rather than with ``cn2an.transform``,
which rewrites whole sentences (一系列 → 1系列, 周五 → 周5); idioms and
glossary names that contain numerals (五角大楼, 七国集团) are masked first.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

__all__ = ["ArticleFacts", "Quantity", "article_facts", "parse_zh_number", "trace", "zh_quantities"]

# -- Chinese numerals ------------------------------------------------------------------

_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_SMALL = {"十": 10, "百": 100, "千": 1000}
_BIG = {"万": 10_000, "亿": 100_000_000}
_ZH_NUM = "零〇一二两三四五六七八九十百千万亿"


def _parse_section(text: str) -> float:
    """A section below 万 (三千五百二十 → 3520); a bare 十 means 10."""
    total, digit = 0.0, None
    for ch in text:
        if ch in _DIGITS:
            digit = _DIGITS[ch]
        elif ch in _SMALL:
            total += (1 if digit is None else digit) * _SMALL[ch]
            digit = None
        else:
            raise ValueError(ch)
    return total + (digit or 0)


def parse_zh_number(text: str) -> float:
    """三千五百万 → 35,000,000; 十二亿 → 1.2e9; 三点五 → 3.5; 二〇二三 → 2023 (digit string)."""
    if "点" in text:
        whole, _, frac = text.partition("点")
        value = parse_zh_number(whole) if whole else 0.0
        digits = "".join(str(_DIGITS[c]) for c in frac)
        return value + (float("0." + digits) if digits else 0.0)
    if text and all(c in _DIGITS for c in text) and len(text) > 1:
        return float("".join(str(_DIGITS[c]) for c in text))
    # 亿 multiplies everything since the previous 亿 (一万二千亿, 一百万亿); 万 only its section
    above, below, section = 0.0, 0.0, ""
    for ch in text:
        if ch == "万":
            below += (_parse_section(section) if section else 1) * _BIG[ch]
            section = ""
        elif ch == "亿":
            group = below + (_parse_section(section) if section else 0)
            above += (group or 1) * _BIG[ch]
            below, section = 0.0, ""
        else:
            section += ch
    return above + below + (_parse_section(section) if section else 0)


# -- quantities -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Quantity:
    kind: str  # number | percent | date | day | year | month | weekday | ordinal | duration
    value: float | tuple[int, int]
    unit: str = ""
    text: str = ""
    precision: float = 1.0
    hedged: bool = False
    currency: str = ""


_SCALE_ZH = {"万亿": 1e12, "亿": 1e8, "万": 1e4, "千": 1e3, "百": 1e2}
_CURRENCY_ZH = {
    "美元": "USD",
    "美金": "USD",
    "欧元": "EUR",
    "英镑": "GBP",
    "日元": "JPY",
    "人民币": "CNY",
    "元": "CNY",
    "港元": "HKD",
    "港币": "HKD",
    "澳元": "AUD",
    "加元": "CAD",
    "卢布": "RUB",
    "卢比": "INR",
    "韩元": "KRW",
    "瑞郎": "CHF",
    "新台币": "TWD",
    "里拉": "TRY",
}
_DOLLARS = {"USD", "HKD", "AUD", "CAD", "TWD", "SGD", "NZD"}
_DURATION_ZH = {
    "天": "day",
    "日": "day",
    "周": "week",
    "星期": "week",
    "个月": "month",
    "年": "year",
    "小时": "hour",
    "分钟": "minute",
    "秒": "second",
    "季度": "quarter",
    "个星期": "week",
    "个小时": "hour",
}
_WEEKDAY_ZH = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_HEDGE_BEFORE = (
    "约",
    "大约",
    "近",
    "将近",
    "接近",
    "超过",
    "逾",
    "多达",
    "至少",
    "不到",
    "不足",
    "上",
    "近乎",
    "大概",
    "约为",
    "高达",
    "达",
)
_HEDGE_AFTER = ("多", "余", "左右", "以上", "以下", "上下")

# Words whose numerals are not quantities. Masked before scanning (same length, so
# offsets hold). Vague amounts (数百, 几十, 上千) cannot be checked and are masked too.
_IDIOMS = sorted(
    """一系列 一些 一起 一直 一致 一定 一般 一切 一旦 一度 一方面 统一 唯一 进一步 之一 一带一路
    五角大楼 两岸 万一 十分 千万 百姓 一样 一同 一再 一向 一味 一律 一时 一手 一体 一线 一流 一道
    一边 一部分 一番 一举 一贯 一齐 一共 一下 一点 同一 第一时间 三思 一心 一面 一开始 不一 一口
    两党 两院 百分百 千方百计 万众 万物 亿万 千千万万 数以万计 成千上万 七上八下 四面八方 一带
    一阵 一场 一次性 一揽子 一员 一把手 两面 两难 三番五次 一国两制 九一一 一代 几乎 一再 一贯
    一刀切 一窝蜂 十足 一概 一向 万分 一目了然 一体化 首次 一轮 逐一 一致性""".split(),
    key=len,
    reverse=True,
)
_VAGUE = re.compile(rf"(?:数|几|上|好几|若干)[十百千万亿]+|[十百千万]余|[{_ZH_NUM}]+来")

_NUM = rf"(?:\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?|[{_ZH_NUM}]+(?:点[{_ZH_NUM}]+)?)"
_SCALE = r"(?:万亿|亿|万|千|百)"
_ZH_PATTERN = re.compile(
    rf"""
    (?P<date>(?:(?P<dy>\d{{4}}|[〇零一二三四五六七八九]{{4}})年)?(?P<dm>{_NUM})月(?:(?P<dd>{_NUM})[日号])?)
    |(?P<year>(?P<yv>\d{{4}}|[〇零一二三四五六七八九]{{4}})年(?!代))
    |(?P<wk>(?<![{_ZH_NUM}\d])(?:周|星期|礼拜)(?P<wd>[一二三四五六日天])(?![{_ZH_NUM}]))
    |(?P<pct>百分之(?P<pv>{_NUM})|(?P<pv2>{_NUM})\s*(?:%|％|个百分点)|(?P<pv3>[一二三四五六七八九十]|\d)成(?![为功本员立果绩就交长]))
    |(?P<frac>(?P<fd>{_NUM})分之(?P<fn>{_NUM}))
    |(?P<ord>第(?P<ov>{_NUM}))
    |(?P<num>(?P<nv>{_NUM})\s*(?P<ns>{_SCALE})?(?P<nafter>多|余)?\s*
        (?P<nunit>个月|个星期|个小时|天|日|周|星期|年|小时|分钟|秒|季度|
        美元|美金|欧元|英镑|日元|人民币|港元|港币|澳元|加元|卢布|卢比|韩元|瑞郎|新台币|里拉|元)?)
    """,
    re.VERBOSE,
)


def _precision(digits: str, scale: float, hedged: bool) -> float:
    """One unit of the last written digit; trailing zeros count only when not hedged."""
    digits = digits.replace(",", "")
    if re.fullmatch(r"\d+(?:\.\d+)?", digits):
        if "." in digits:
            return float(10 ** -len(digits.split(".")[1]) * scale)
        zeros = len(digits) - len(digits.rstrip("0")) if hedged and digits != "0" else 0
        return float(10**zeros * scale)
    # Chinese numerals: the smallest unit written (三百五十 → 10, 三千 → 1000 when hedged).
    value = parse_zh_number(digits)
    if "点" in digits:
        return float(10 ** -len(digits.split("点")[1]) * scale)
    if hedged and value:
        p = 1
        while value % (p * 10) == 0:
            p *= 10
        return p * scale
    return scale


def _num(text: str) -> float:
    text = text.replace(",", "")
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    return parse_zh_number(text)


# A weekday's numeral belongs to the weekday before any idiom: 周一起 is "from Monday"
# (not 一起), 周一举行 "held on Monday" (not 一举). Hidden behind private-use stand-ins
# while idioms are masked, then put back.
_ZH_WEEKDAY = re.compile(rf"(?<![{_ZH_NUM}\d])(?:周|星期|礼拜)([一二三四五六日天])(?![{_ZH_NUM}])")
_HIDE = {c: chr(0xE000 + i) for i, c in enumerate("一二三四五六日天")}
_SHOW = str.maketrans("".join(_HIDE.values()), "".join(_HIDE))


@functools.lru_cache(maxsize=64)
def _mask_words(extra: tuple[str, ...]) -> tuple[str, ...]:
    """Idioms and ``extra`` words, longest first (sorted once per glossary, not per summary)."""
    return tuple(sorted({*_IDIOMS, *extra}, key=len, reverse=True))


def mask(text: str, extra: Iterable[str] = ()) -> str:
    """Blank out idioms, vague amounts and names with numerals (same length)."""
    text = _ZH_WEEKDAY.sub(lambda m: m.group()[:-1] + _HIDE[m.group(1)], text)
    for word in _mask_words(tuple(extra)):
        if word and word in text:
            text = text.replace(word, "□" * len(word))
    text = text.translate(_SHOW)
    return _VAGUE.sub(lambda m: "□" * len(m.group()), text)


def _hedged(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - 3) : start]
    after = text[end : end + 2]
    return before.endswith(_HEDGE_BEFORE) or after.startswith(_HEDGE_AFTER)


def zh_quantities(text: str, masked_words: Iterable[str] = ()) -> list[Quantity]:
    """Every checkable quantity in a Chinese summary."""
    clean = mask(text, masked_words)
    out: list[Quantity] = []
    for m in _ZH_PATTERN.finditer(clean):
        surface = text[m.start() : m.end()]
        try:
            q = _zh_one(m, surface, clean)
        except (ValueError, KeyError):
            continue  # not a numeral after all (e.g. a stray 千 in a name)
        if q is not None:
            out.append(q)
    return out


def _zh_one(m: re.Match[str], surface: str, clean: str) -> Quantity | None:
    if m.group("date"):
        month = int(_num(m.group("dm")))
        if m.group("dd"):
            # An impossible date (21月22日, 4月32日) stays a date: it traces to nothing.
            return Quantity("date", (month, int(_num(m.group("dd")))), text=surface)
        if not 1 <= month <= 12:
            return Quantity("date", (month, 0), text=surface)
        if m.group("dy"):
            return Quantity("month", float(month), text=surface)
        return Quantity("month", float(month), text=surface)
    if m.group("year"):
        return Quantity("year", _num(m.group("yv")), text=surface)
    if m.group("wk"):
        return Quantity("weekday", float(_WEEKDAY_ZH[m.group("wd")]), text=surface)
    hedged = _hedged(clean, m.start(), m.end())
    if m.group("pct"):
        if m.group("pv3"):
            v = _num(m.group("pv3")) * 10
            return Quantity("percent", v, text=surface, precision=10, hedged=True)
        digits = m.group("pv") or m.group("pv2")
        return Quantity(
            "percent",
            _num(digits),
            text=surface,
            precision=_precision(digits, 1, hedged),
            hedged=hedged,
        )
    if m.group("frac"):
        den, num = _num(m.group("fd")), _num(m.group("fn"))
        if not den:
            return None
        return Quantity("percent", 100 * num / den, text=surface, precision=1, hedged=True)
    if m.group("ord"):
        return Quantity("ordinal", _num(m.group("ov")), text=surface)
    digits = m.group("nv")
    scale = _SCALE_ZH.get(m.group("ns") or "", 1.0)
    value = _num(digits) * scale
    unit = m.group("nunit") or ""
    hedged = hedged or bool(m.group("nafter"))
    precision = _precision(digits, scale, hedged)
    if unit in _DURATION_ZH and not m.group("ns"):
        kind_unit = _DURATION_ZH[unit]
        if unit == "年" and 1900 <= value <= 2100:
            return Quantity("year", value, text=surface)
        if unit == "日" and value <= 31:
            return Quantity("day", value, text=surface)
        if value == 1 and not hedged:
            return None
        return Quantity("duration", value, kind_unit, surface, precision, hedged)
    if value == 1 and not unit:
        return None  # "one" is everywhere (一位, 一名) and never the risky figure
    currency = _CURRENCY_ZH.get(unit, "")
    return Quantity("number", value, unit, surface, precision, hedged, currency)


# -- the article side ------------------------------------------------------------------------

_EN_UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "dozen": 12,
}
_EN_ORD = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
    "thirteenth": 13,
    "fourteenth": 14,
    "fifteenth": 15,
    "twentieth": 20,
    "thirtieth": 30,
    "fiftieth": 50,
    "hundredth": 100,
}
_EN_SCALE = {
    "hundred": 1e2,
    "thousand": 1e3,
    "million": 1e6,
    "billion": 1e9,
    "trillion": 1e12,
    "bn": 1e9,
    "b": 1e9,
    "mn": 1e6,
    "m": 1e6,
    "k": 1e3,
    "tn": 1e12,
    "mln": 1e6,
    "bln": 1e9,
    "dozen": 12.0,
}
_MONTHS = {
    m: i
    for i, m in enumerate(
        "january february march april may june july august september october november "
        "december".split(),
        1,
    )
}
_MONTHS.update({m[:3]: i for m, i in list(_MONTHS.items())})
_MONTHS["sept"] = 9
_WEEKDAYS = {
    d: i for i, d in enumerate("monday tuesday wednesday thursday friday saturday sunday".split())
}
_DURATION_EN = {
    "day": "day",
    "week": "week",
    "month": "month",
    "year": "year",
    "hour": "hour",
    "minute": "minute",
    "second": "second",
    "quarter": "quarter",
    "decade": "year",
}
_CURRENCY_EN = {
    "$": "USD",
    "us$": "USD",
    "hk$": "HKD",
    "a$": "AUD",
    "c$": "CAD",
    "s$": "SGD",
    "nt$": "TWD",
    "£": "GBP",
    "€": "EUR",
    "¥": "JPY",
    "dollars": "USD",
    "dollar": "USD",
    "euros": "EUR",
    "euro": "EUR",
    "pounds": "GBP",
    "pound": "GBP",
    "yuan": "CNY",
    "renminbi": "CNY",
    "yen": "JPY",
    "rupees": "INR",
    "rubles": "RUB",
    "roubles": "RUB",
    "won": "KRW",
    "usd": "USD",
    "eur": "EUR",
    "gbp": "GBP",
    "cny": "CNY",
}
_WORD_NUM = "|".join(sorted(_EN_UNITS, key=len, reverse=True))
_EN_NUMBER = re.compile(
    rf"""
    (?P<cur>US\$|HK\$|NT\$|A\$|C\$|S\$|\$|£|€|¥)?\s?
    (?P<v>\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?
       |an?(?=\s(?:hundred|thousand|million|billion|trillion|dozen)\b)
       |(?:{_WORD_NUM})(?:[-\s](?:one|two|three|four|five|six|seven|eight|nine))?)
    (?:[\s-]?(?P<s>hundred|thousand|million|billion|trillion|dozen|bn|mn|mln|bln|tn|[mbk])\b)?
    (?:\s?(?P<pct>%|percent\b|per\scent\b|percentage\spoints?\b))?
    (?:[-\s](?P<dur>day|week|month|year|hour|minute|second|quarter|decade)s?\b)?
    (?:\s(?P<curw>dollars?|euros?|pounds?|yuan|renminbi|yen|rupees|rubles|roubles|won)\b)?
    """,
    re.VERBOSE | re.IGNORECASE,
)
_MONTH_WORD = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_EN_DATE = re.compile(
    rf"\b(?:(?P<m1>{_MONTH_WORD})\s+(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?\b"
    rf"|(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m2>{_MONTH_WORD})\b)",
    re.IGNORECASE,
)
_EN_MONTH = re.compile(rf"\b(?P<m>{_MONTH_WORD})(?=\W|$)", re.IGNORECASE)
_EN_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)s?\b")
_EN_WEEKDAY = re.compile(
    r"\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?\b", re.IGNORECASE
)
_EN_ORDINAL = re.compile(
    rf"\b(?:(?P<d>\d+)(?:st|nd|rd|th)|(?P<w>{'|'.join(_EN_ORD)}))\b", re.IGNORECASE
)
_EN_FRACTION = {
    r"\bhalf\b": 50.0,
    r"\b(?:a|one)[-\s]third\b": 100 / 3,
    r"\btwo[-\s]thirds\b": 200 / 3,
    r"\b(?:a|one)[-\s]quarter\b": 25.0,
    r"\bthree[-\s]quarters\b": 75.0,
    r"\b(?:a|one)[-\s]fifth\b": 20.0,
    r"\b(?:a|one)[-\s]tenth\b": 10.0,
}
_ONE_IN = re.compile(r"\b(one|two|three)\s+(?:in|out\s+of)\s+(\w+)\b", re.IGNORECASE)
_RELATIVE = {"yesterday": -1, "today": 0, "tonight": 0, "tomorrow": 1}
# A quotation within one paragraph; a paragraph may also end a quote opened before it
# (…tonight,” the coach said) or open one it does not close.
_QUOTED = re.compile(r"^[^“”\n]*”|“[^”\n]*(?:”|$)|\"[^\"\n]*(?:\"|$)", re.MULTILINE)
_TWO_WORDS = re.compile(
    r"\b(?:two|both|pair|twice|second|2|couple|duo|bilateral|either|"
    r"twin|dual)\b",
    re.IGNORECASE,
)


@dataclass
class ArticleFacts:
    """What the article can vouch for, indexed by kind."""

    numbers: list[tuple[float, str]] = field(default_factory=list)  # (value, currency)
    percents: list[float] = field(default_factory=list)
    durations: set[tuple[float, str]] = field(default_factory=set)
    ordinals: set[int] = field(default_factory=set)
    dates: set[tuple[int, int]] = field(default_factory=set)
    days: set[int] = field(default_factory=set)
    months: set[int] = field(default_factory=set)
    years: set[int] = field(default_factory=set)
    weekdays: set[int] = field(default_factory=set)
    says_two: bool = False


def _en_value(raw: str) -> float | None:
    raw = raw.replace(",", "").lower()
    if raw in ("a", "an"):
        return 1.0
    try:
        return float(raw)
    except ValueError:
        pass
    parts = re.split(r"[-\s]", raw)
    total = 0.0
    for p in parts:
        if p not in _EN_UNITS:
            return None
        total += _EN_UNITS[p]
    return total


# -- fast scanning of the article -------------------------------------------------------
# Python's ``re`` tries a pattern at every position of the text unless it opens with a
# literal; the article patterns open with optional groups or ``\b``, so one article of
# 6,000 characters cost ~15 ms. Each pattern is instead tried only where a match can
# start (a digit, or a word found with ``str.find`` in the lower-cased text): the same
# matches as ``finditer``, a fraction of the work.

# re.IGNORECASE also matches these to ASCII letters, which ``str.lower`` does not show.
ODD_CASE = ("\u0130", "\u0131", "\u017f", "\u212a")
_DIGIT = re.compile(r"\d")
_SCALE_WORDS = ("hundred", "thousand", "million", "billion", "trillion", "dozen")
_MONTH_PREFIXES = tuple(dict.fromkeys(m[:3] for m in _MONTHS))
_TWO_WORD_LIST = "two both pair twice second couple duo bilateral either twin dual".split()
# The word each fraction pattern ends with: without it in the text, no need to search.
_FRACTION_KEYS = {
    pattern: re.findall(r"[a-z]+", pattern.replace(r"\b", ""))[-1] for pattern in _EN_FRACTION
}
_NUMBER_SIGN = re.compile(r"\b(?:No\.|Number|#)\s?(\d{1,3})\b")


class _Scan:
    """One article text, with the positions where the article patterns may match."""

    def __init__(self, text: str) -> None:
        self.text = text
        low = text.lower()
        odd = len(low) != len(text) or any(c in text for c in ODD_CASE)
        self.low: str | None = None if odd else low  # None: scan everywhere (exact, slow)
        self._digits: list[int] | None = None
        self._found: dict[str, list[int]] = {}

    def digits(self) -> list[int]:
        if self._digits is None:
            self._digits = [m.start() for m in _DIGIT.finditer(self.text)]
        return self._digits

    def where(self, words: Iterable[str]) -> list[int]:
        """Start of every occurrence of each word in the lower-cased text (inside words too)."""
        assert self.low is not None
        low, out = self.low, []
        for word in words:
            found = self._found.get(word)
            if found is None:
                found = []
                i = low.find(word)
                while i >= 0:
                    found.append(i)
                    i = low.find(word, i + 1)
                self._found[word] = found
            out += found
        return out

    def has(self, word: str) -> bool:
        """Whether a case-insensitive match of ``word`` is possible at all."""
        return self.low is None or word in self.low

    def finditer(
        self, pattern: re.Pattern[str], starts: Callable[[], Iterable[int]]
    ) -> Iterator[re.Match[str]]:
        """``pattern.finditer(text)``, trying only ``starts()`` (which must hold the start of
        every possible match; none of the patterns matches the empty string)."""
        if self.low is None:
            yield from pattern.finditer(self.text)
            return
        end = 0
        for pos in sorted(set(starts())):
            if pos < end:
                continue
            m = pattern.match(self.text, pos)
            if m is not None:
                yield m
                end = m.end()

    def search(self, pattern: re.Pattern[str], starts: Callable[[], Iterable[int]]) -> bool:
        return next(self.finditer(pattern, starts), None) is not None

    def number_starts(self) -> list[int]:
        """Where an _EN_NUMBER match may start: at a digit, a number word or the ``a``/``an``
        of "a million", or before it at a space and/or a currency (US$, £…)."""
        text = self.text
        values = [*self.digits(), *self.where(_EN_UNITS)]
        for i in self.where(_SCALE_WORDS):
            values += (i - 2, i - 3)
        out = []
        for v in values:
            if v < 0:
                continue
            out.append(v)
            k = v - 1
            if k >= 0 and text[k].isspace():  # what \s matches
                out.append(k)
                k -= 1
            if k >= 0 and text[k] in "$£€¥":  # the end of every currency prefix
                out += range(max(0, k - 2), k + 1)
        return out


def article_facts(text: str, published: str | None = None) -> ArticleFacts:
    """Index every quantity of the article (title, caption and body joined)."""
    facts = ArticleFacts()
    scan = _Scan(text)
    pub: dt.date | None = None
    if published:
        try:
            pub = dt.date.fromisoformat(published[:10])
        except ValueError:
            pub = None
    if pub:
        # The publication date alone vouches for the month and year, not for a day: a
        # day must come from the text (a date, a weekday or "today" resolved against it),
        # else a date off by one that lands on the publication day would pass.
        facts.months.add(pub.month)
        facts.years.add(pub.year)
    facts.says_two = scan.search(_TWO_WORDS, lambda: [*scan.where(_TWO_WORD_LIST), *scan.digits()])
    for m in scan.finditer(_EN_NUMBER, scan.number_starts):
        value = _en_value(m.group("v"))
        if value is None:
            continue
        scale_word = (m.group("s") or "").lower()
        if scale_word in ("m", "b", "k") and not m.group("cur"):
            scale_word = ""  # "5 m" is metres, "3b" a grade: only after a currency sign
        value *= _EN_SCALE.get(scale_word, 1.0)
        cur = _CURRENCY_EN.get((m.group("cur") or m.group("curw") or "").lower(), "")
        if m.group("pct"):
            facts.percents.append(value)
            continue
        if m.group("dur"):
            unit = _DURATION_EN[m.group("dur").lower()]
            facts.durations.add((value * (10 if m.group("dur").lower() == "decade" else 1), unit))
        facts.numbers.append((value, cur))
    for m in scan.finditer(_EN_DATE, lambda: [*scan.where(_MONTH_PREFIXES), *scan.digits()]):
        month = _MONTHS.get(
            (m.group("m1") or m.group("m2") or "").lower().rstrip(".")[:4].rstrip(".")
        )
        if month is None:
            month = _MONTHS.get((m.group("m1") or m.group("m2") or "").lower()[:3])
        day = int(m.group("d1") or m.group("d2"))
        if month and 1 <= day <= 31:
            facts.dates.add((month, day))
            facts.days.add(day)
            if pub:
                # "Jan. 4" in a December story is next year's: the nearest such date.
                with contextlib.suppress(ValueError):
                    when = min(
                        (dt.date(pub.year + k, month, day) for k in (-1, 0, 1)),
                        key=lambda d: abs((d - pub).days),
                    )
                    facts.weekdays.add(when.weekday())
    for m in scan.finditer(_EN_MONTH, lambda: scan.where(_MONTH_PREFIXES)):
        word = m.group("m")
        key = word.lower().rstrip(".")
        full = key in _MONTHS and (len(key) > 3 or word.endswith(".") or key in ("may",))
        if full and (key != "may" or word[0].isupper()):
            facts.months.add(_MONTHS[key])
    for m in scan.finditer(_EN_YEAR, scan.digits):
        facts.years.add(int(m.group(1)))
    for m in scan.finditer(_EN_WEEKDAY, lambda: scan.where(_WEEKDAYS)):
        wd = _WEEKDAYS[m.group(1).lower()]
        facts.weekdays.add(wd)
        if pub:  # "on Friday" in a story of that week: the date a summary may write instead
            for delta in range(-6, 1):
                when = pub + dt.timedelta(days=delta)
                if when.weekday() == wd:
                    facts.dates.add((when.month, when.day))
                    facts.days.add(when.day)
    # "today" inside a quotation is the speaker's day (or "nowadays"), not the story's.
    relative = [(w, d) for w, d in _RELATIVE.items() if scan.has(w)] if pub else []
    unquoted = _QUOTED.sub(" ", text) if relative else ""
    for word, delta in relative:
        if pub and re.search(rf"\b{word}\b", unquoted, re.IGNORECASE):
            when = pub + dt.timedelta(days=delta)
            facts.dates.add((when.month, when.day))
            facts.days.add(when.day)
            facts.weekdays.add(when.weekday())
    if "No." in text or "Number" in text or "#" in text:
        for m in _NUMBER_SIGN.finditer(text):
            facts.ordinals.add(int(m.group(1)))  # "the No. 3 class": 第三
    for m in scan.finditer(_EN_ORDINAL, lambda: [*scan.where(_EN_ORD), *scan.digits()]):
        facts.ordinals.add(int(m.group("d")) if m.group("d") else _EN_ORD[m.group("w").lower()])
    for pattern, pct in _EN_FRACTION.items():
        if scan.has(_FRACTION_KEYS[pattern]) and re.search(pattern, text, re.IGNORECASE):
            facts.percents.append(pct)
    for m in scan.finditer(_ONE_IN, lambda: scan.where(("one", "two", "three"))):
        a, b = _en_value(m.group(1)), _en_value(m.group(2))
        if a and b:
            facts.percents.append(100 * a / b)
    for value, _cur in list(facts.numbers):
        if 1 <= value <= 12 and value == int(value):
            facts.durations.add((value, ""))  # a bare "three" may carry its unit elsewhere
    return facts


def _close(q: Quantity, value: float) -> bool:
    assert isinstance(q.value, float)
    # Rounding to the written precision; a hedge (约, 近) only makes trailing zeros
    # imprecise (see _precision), it does not widen "至少213" to 214.
    tolerance = q.precision / 2
    return math.isclose(q.value, value, rel_tol=1e-9) or abs(q.value - value) <= tolerance * (
        1 + 1e-9
    )


def trace(q: Quantity, facts: ArticleFacts) -> bool:
    """Whether the article vouches for ``q``."""
    if q.kind == "date":
        return q.value in facts.dates
    if q.kind == "day":
        return int(q.value) in facts.days  # type: ignore[arg-type]
    if q.kind == "month":
        return int(q.value) in facts.months  # type: ignore[arg-type]
    if q.kind == "year":
        return int(q.value) in facts.years  # type: ignore[arg-type]
    if q.kind == "weekday":
        return int(q.value) in facts.weekdays  # type: ignore[arg-type]
    if q.kind == "ordinal":
        return int(q.value) in facts.ordinals  # type: ignore[arg-type]
    if q.kind == "percent":
        return any(_close(q, p) for p in facts.percents)
    if q.kind == "duration":
        return any((unit in (q.unit, "") and _close(q, v)) for v, unit in facts.durations) or (
            q.value == 2 and facts.says_two
        )
    if q.kind == "number":
        if q.value == 2 and not q.currency and facts.says_two:
            return True
        for value, cur in facts.numbers:
            if q.currency and cur and not _same_currency(q.currency, cur):
                continue
            if _close(q, value):
                return True
        return False
    return True


def _same_currency(a: str, b: str) -> bool:
    return a == b or (b == "USD" and a in _DOLLARS)
