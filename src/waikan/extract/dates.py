"""Date normalization for extracted metadata.

Pages write dates in many shapes (ISO 8601 with or without a zone, RFC 2822,
"October 27, 2023 2:03 PM EDT", compact ``20231027``). waikan stores one
shape (SPEC §1): ``YYYY-MM-DDTHH:MM:SSZ`` in UTC when the page gives an
instant with a zone, else ``YYYY-MM-DD``. A time without a zone cannot be
placed in UTC, so it yields the day only rather than a guessed instant.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["local_time", "normalize_date"]

MIN_YEAR = 1990
MAX_YEAR = 2100

# Common zone abbreviations in news pages; ambiguous ones (IST, CST) take the
# reading a news site most likely means (India, US Central).
_ZONES: dict[str, int] = {
    "Z": 0, "UT": 0, "UTC": 0, "GMT": 0, "WET": 0,
    "BST": 60, "CET": 60, "WEST": 60, "CEST": 120, "EET": 120, "EEST": 180,
    "MSK": 180, "IST": 330, "SGT": 480, "HKT": 480, "JST": 540, "KST": 540,
    "AEST": 600, "AEDT": 660, "NZST": 720, "NZDT": 780,
    "EST": -300, "EDT": -240, "CST": -360, "CDT": -300, "MST": -420, "MDT": -360,
    "PST": -480, "PDT": -420, "AKST": -540, "AKDT": -480, "HST": -600,
}
# Zones named without standard/daylight ("ET"): the offset depends on the date.
_REGIONS: dict[str, str] = {
    "ET": "America/New_York", "CT": "America/Chicago", "MT": "America/Denver",
    "PT": "America/Los_Angeles",
}

_MONTHS: dict[str, int] = {
    m: i + 1
    for i, ms in enumerate(
        [
            ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
            ("may",), ("jun", "june"), ("jul", "july"), ("aug", "august"),
            ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
            ("dec", "december"),
        ]
    )
    for m in ms
}

_ISO = re.compile(
    r"""^\s*(?P<y>\d{4})[-/]?(?P<mo>\d{2})[-/]?(?P<d>\d{2})
    (?:[T\s]+(?P<h>\d{1,2}):?(?P<mi>\d{2})(?::?(?P<s>\d{2})(?:[.,]\d+)?)?
       \s*(?P<ampm>[AaPp]\.?[Mm]\.?)?
       \s*(?P<z>Z|[+-]\d{2}(?::?\d{2})?|\(?[A-Za-z]{1,5}\)?(?:[+-]\d{1,2}(?::?\d{2})?)?)?)?
    \s*$""",
    re.VERBOSE,
)

# "Fri, 27 Oct 2023 14:03:40 GMT", "27 October 2023", "October 27, 2023 2:03 PM EDT"
_TEXT_DMY = re.compile(
    r"(?P<d>\d{1,2})(?:st|nd|rd|th)?\.?\s+(?P<mo>[A-Za-z]{3,9})\.?,?\s+(?P<y>\d{4})"
)
_TEXT_MDY = re.compile(
    r"(?P<mo>[A-Za-z]{3,9})\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y>\d{4})"
)
_TEXT_TIME = re.compile(
    r"(?P<h>\d{1,2})[:.](?P<mi>\d{2})(?::(?P<s>\d{2}))?\s*(?P<ampm>[AaPp]\.?[Mm]\.?)?"
    r"\s*(?P<z>Z\b|[+-]\d{2}:?\d{2}\b|\(?[A-Z]{1,5}\)?(?:[+-]\d{1,2}(?::?\d{2})?)?(?![A-Za-z]))?"
)


def _offset(zone: str | None, local: dt.datetime) -> int | None:
    """Minutes east of UTC for a zone token at ``local`` time, None when absent or unknown."""
    if not zone:
        return None
    z = zone.strip().strip("()").upper()
    if not z:
        return None
    if z in _REGIONS:
        try:
            delta = local.replace(tzinfo=ZoneInfo(_REGIONS[z])).utcoffset()
        except ZoneInfoNotFoundError:
            return None
        return int(delta.total_seconds() // 60) if delta is not None else None
    m = re.fullmatch(r"(?:(?:UTC|GMT|UT)?)([+-])(\d{1,2})(?::?(\d{2}))?", z)
    if m:
        minutes = int(m.group(2)) * 60 + int(m.group(3) or 0)
        if minutes > 14 * 60:
            return None
        return minutes if m.group(1) == "+" else -minutes
    m = re.fullmatch(r"([A-Z]{1,5})([+-]\d{1,2}(?::?\d{2})?)?", z)
    if m and m.group(1) in _ZONES and not m.group(2):
        return _ZONES[m.group(1)]
    return None


def _build(
    y: int, mo: int, d: int,
    h: int | None, mi: int | None, s: int | None,
    ampm: str | None, zone: str | None,
) -> str | None:
    if not MIN_YEAR <= y <= MAX_YEAR:
        return None
    try:
        day = dt.date(y, mo, d)
    except ValueError:
        return None
    if h is None or mi is None:
        return day.isoformat()
    if ampm:
        pm = ampm.lower().startswith("p")
        if not 1 <= h <= 12:
            return day.isoformat()
        h = (h % 12) + (12 if pm else 0)
    try:
        local = dt.datetime(y, mo, d, h, mi, s or 0)
    except ValueError:
        return day.isoformat()
    off = _offset(zone, local)
    if off is None:
        return day.isoformat()
    utc = local - dt.timedelta(minutes=off)
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso(text: str) -> str | None:
    m = _ISO.match(text)
    if not m:
        return None
    g = m.group
    h = int(g("h")) if g("h") is not None else None
    mi = int(g("mi")) if g("mi") is not None else None
    s = int(g("s")) if g("s") is not None else None
    return _build(int(g("y")), int(g("mo")), int(g("d")), h, mi, s, g("ampm"), g("z"))


def _textual(text: str) -> str | None:
    for pattern in (_TEXT_MDY, _TEXT_DMY):
        m = pattern.search(text)
        if not m or m.group("mo").lower() not in _MONTHS:
            continue
        mo = _MONTHS[m.group("mo").lower()]
        y, d = int(m.group("y")), int(m.group("d"))
        t = _TEXT_TIME.search(text[m.end():]) or _TEXT_TIME.search(text[: m.start()])
        if t:
            return _build(
                y, mo, d, int(t.group("h")), int(t.group("mi")),
                int(t.group("s")) if t.group("s") else None, t.group("ampm"), t.group("z"),
            )
        return _build(y, mo, d, None, None, None, None, None)
    return None


def _epoch(text: str) -> str | None:
    if not re.fullmatch(r"\d{10}(?:\d{3})?", text):
        return None
    seconds = int(text[:10])
    when = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    if not MIN_YEAR <= when.year <= MAX_YEAR:
        return None
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def normalize_date(value: object) -> str | None:
    """Return ``YYYY-MM-DDTHH:MM:SSZ`` (UTC), ``YYYY-MM-DD``, or None for garbage.

    Fractional seconds are dropped; an offset or zone name is converted to
    UTC; a time without a zone gives the day only (SPEC §1).
    """
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    text = str(value).strip()
    if not text or len(text) > 200:
        return None
    return _iso(text) or _epoch(text) or _textual(text)


def local_time(value: object) -> dt.datetime | None:
    """The wall-clock time of an ISO date-time given without a zone, else None.

    Lets a caller match a zoneless time against a zoned instant found
    elsewhere on the page (same publication, different field).
    """
    if not isinstance(value, str) or len(value) > 200:
        return None
    m = _ISO.match(value)
    if not m or m.group("h") is None or m.group("ampm"):
        return None
    if _offset(m.group("z"), dt.datetime(2000, 1, 1)) is not None:
        return None
    try:
        return dt.datetime(
            int(m.group("y")), int(m.group("mo")), int(m.group("d")),
            int(m.group("h")), int(m.group("mi")), int(m.group("s") or 0),
        )
    except ValueError:
        return None
