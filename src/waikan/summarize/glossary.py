"""The name glossary: standard Chinese forms of people, places and organisations.

Models render foreign names inconsistently (布林肯/布林根/布林克), so the
summary prompt carries the standard forms of the names an article mentions,
and the guard checks the answer against them. The built-in list ships as
``data/glossary.tsv``; user entries live in the store and override it.

Matching is by word n-grams rather than one huge regex alternation: a
20,000-word article is scanned in one pass over its tokens.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from importlib.resources import files
from pathlib import Path

from waikan.errors import InputError

__all__ = [
    "COLUMNS",
    "KINDS",
    "Entry",
    "Glossary",
    "GlossaryError",
    "Hit",
    "builtin",
    "parse_entries",
    "read_file",
]

COLUMNS = ("en", "kind", "zh_hans", "zh_hant_tw", "zh_hant_hk", "variants", "aliases")
KINDS = ("person", "country", "place", "org", "company", "title", "other")
VARIANTS = ("zh-Hans", "zh-Hant-TW", "zh-Hant-HK")
_HAN = re.compile(r"[\u3400-\u9fff]")
_TOKEN = re.compile(r"[^\W_](?:[\w'’.\-]*[\w.])?")
_MAX_WORDS = 8


class GlossaryError(InputError):
    """A glossary file or entry that cannot be used; the message names the line."""


@dataclass(frozen=True)
class Entry:
    en: str
    kind: str
    zh_hans: str
    zh_hant_tw: str = ""
    zh_hant_hk: str = ""
    variants: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    origin: str = "builtin"

    @property
    def key(self) -> str:
        return _norm_phrase(self.en).casefold()

    @property
    def names(self) -> tuple[str, ...]:
        """English spellings that count as a mention in an article."""
        return (self.en, *self.aliases)

    @property
    def forms(self) -> tuple[str, ...]:
        """Every accepted Chinese form in Simplified script: the standard one, then variants."""
        return (self.zh_hans, *self.variants)

    @property
    def parts(self) -> tuple[str, ...]:
        """Parts of ``·``-joined forms (安东尼·布林肯 → 安东尼, 布林肯): a surname alone is fine."""
        out: list[str] = []
        for form in self.forms:
            if "·" in form:
                out.extend(p for p in form.split("·") if len(p) >= 2)
        return tuple(dict.fromkeys(out))

    def regional(self, variant: str) -> str:
        """The form for a script variant; empty when the column is empty (convert with OpenCC)."""
        if variant == "zh-Hant-TW":
            return self.zh_hant_tw
        if variant == "zh-Hant-HK":
            return self.zh_hant_hk
        return self.zh_hans

    def as_row(self) -> dict[str, str]:
        return {
            "en": self.en,
            "kind": self.kind,
            "zh_hans": self.zh_hans,
            "zh_hant_tw": self.zh_hant_tw,
            "zh_hant_hk": self.zh_hant_hk,
            "variants": "|".join(self.variants),
            "aliases": "|".join(self.aliases),
            "origin": self.origin,
        }


@dataclass(frozen=True)
class Hit:
    entry: Entry
    count: int
    first: int  # character offset of the first mention, for ordering


@functools.lru_cache(maxsize=1 << 16)  # news vocabulary repeats: most tokens are hits
def _norm_token(token: str) -> str:
    for suffix in ("'s", "’s"):
        if token.endswith(suffix):
            token = token[: -len(suffix)]
    if token.endswith(".") and "." not in token[:-1].rstrip("."):
        token = token.rstrip(".")
    return token.replace("’", "'")


def _norm_phrase(text: str) -> str:
    return " ".join(_norm_token(t) for t in text.split())


@dataclass
class Glossary:
    """Built-in entries overlaid with user entries (same English name → the user's wins)."""

    entries: dict[str, Entry] = field(default_factory=dict)

    @classmethod
    def of(cls, *layers: Iterable[Entry]) -> Glossary:
        merged: dict[str, Entry] = {}
        for layer in layers:
            for entry in layer:
                merged[entry.key] = entry
        return cls(merged)

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, en: str) -> Entry | None:
        return self.entries.get(_norm_phrase(en).casefold())

    @functools.cached_property
    def _index(self) -> dict[str, Entry]:
        index: dict[str, Entry] = {}
        # A transliterated person is often named by surname alone after the first mention;
        # surnames shared by two entries (Johnson) stay out, since they would guess.
        surnames: dict[str, list[Entry]] = {}
        for entry in self.entries.values():
            if entry.kind == "person" and "·" in entry.zh_hans and " " in entry.en:
                surnames.setdefault(_norm_token(entry.en.split()[-1]), []).append(entry)
        for surname, owners in surnames.items():
            if len(owners) == 1 and len(surname) >= 4:
                index[surname] = owners[0]
        for entry in self.entries.values():
            for name in entry.names:
                index.setdefault(_norm_phrase(name), entry)
        # An entry's own name beats another entry's alias (user "US" entry, say).
        for entry in self.entries.values():
            index[_norm_phrase(entry.en)] = entry
        return index

    @functools.cached_property
    def _longest_from(self) -> dict[str, int]:
        """First word of an indexed name → most words of a name starting with it, so a scan
        tries phrases only where a name can start (most words start none)."""
        out: dict[str, int] = {}
        for phrase in self._index:
            words = phrase.split(" ")
            out[words[0]] = max(out.get(words[0], 0), len(words))
        return out

    @functools.cached_property
    def numeral_forms(self) -> list[str]:
        """Chinese forms holding a numeral (五角大楼…): masked before the guard reads figures."""
        return [
            f for f in self.chinese_forms if any(c in f for c in "一二两三四五六七八九十百千万")
        ]

    @functools.cached_property
    def chinese_forms(self) -> dict[str, Entry]:
        """Every Chinese form and variant → its entry (for the guard)."""
        out: dict[str, Entry] = {}
        for entry in self.entries.values():
            for form in (*entry.forms, *entry.parts):
                out.setdefault(form, entry)
        return out

    @functools.cached_property
    def _regional(self) -> dict[str, tuple[tuple[str, str], ...]]:
        return {}

    def regional_names(self, variant: str) -> tuple[tuple[str, str], ...]:
        """(Simplified form, regional form) for ``variant``, longest first, for entries whose
        regional column is filled; the parts of a ``·``-joined name map part by part
        (特朗普 → 川普). OpenCC converts characters, not names, hence this list."""
        cached = self._regional.get(variant)
        if cached is not None:
            return cached
        out: dict[str, str] = {}
        for entry in self.entries.values():
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
        pairs = tuple(sorted(out.items(), key=lambda kv: -len(kv[0])))
        self._regional[variant] = pairs
        return pairs

    @functools.cached_property
    def dotted_forms(self) -> list[str]:
        """The ``·``-joined Chinese forms (transliterated names), for the name check."""
        return [f for f in self.chinese_forms if "·" in f]

    def find(self, text: str) -> list[Hit]:
        """Entries mentioned in ``text`` (English), longest name first, in order of mention."""
        words = [_norm_token(w) for w in _TOKEN.findall(text)]
        counts: dict[str, list[int]] = {}  # entry key → [mentions, index of the first word]
        self._scan(words, None, counts)
        if not counts:
            return []
        last = max(first for _, first in counts.values())
        starts = [m.start() for m in itertools.islice(_TOKEN.finditer(text), last + 1)]
        hits = [Hit(self.entries[k], c, starts[first]) for k, (c, first) in counts.items()]
        return sorted(hits, key=lambda h: h.first)

    def _scan(self, words: list[str], at: int | None, counts: dict[str, list[int]]) -> None:
        """Count the names in ``words``; ``at`` is the word index that hyphen parts stand
        for (None: the words are the text's own). Only words that begin a name, or hold a
        hyphen, are looked at."""
        index = self._index
        longest = self._longest_from
        end = 0
        for i in [i for i, w in enumerate(words) if w in longest or (at is None and "-" in w)]:
            if i < end:
                continue  # inside a name matched before
            matched = 0
            for n in range(min(longest.get(words[i], 0), _MAX_WORDS, len(words) - i), 0, -1):
                entry = index.get(" ".join(words[i : i + n]))
                if entry is not None:
                    slot = counts.setdefault(entry.key, [0, i if at is None else at])
                    slot[0] += 1
                    matched = n
                    break
            if not matched and at is None and "-" in words[i]:
                # Israel-Hamas, Xi-Biden: the parts are names of their own.
                self._scan([_norm_token(p) for p in words[i].split("-") if p], i, counts)
            end = i + (matched or 1)


def _split(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split("|") if v.strip())


def entry_from_row(row: dict[str, str], where: str, origin: str = "user") -> Entry:
    """One validated entry; ``where`` names the file and line in errors."""
    if any("\x00" in (v or "") for v in row.values()):  # PostgreSQL text cannot hold NUL
        raise GlossaryError(f"{where}: contains a NUL character")
    en = " ".join((row.get("en") or "").split())
    zh = (row.get("zh_hans") or "").strip()
    kind = (row.get("kind") or "other").strip() or "other"
    if not en:
        raise GlossaryError(f"{where}: the English name (column en) is empty")
    if not zh:
        raise GlossaryError(f"{where}: the Chinese form (column zh_hans) is empty")
    if kind not in KINDS:
        raise GlossaryError(f"{where}: unknown kind {kind!r} (one of {', '.join(KINDS)})")
    variants = _split(row.get("variants") or "")
    bad = [v for v in variants if not _HAN.search(v)]
    if bad:
        raise GlossaryError(f"{where}: variants must be Chinese forms, got {bad[0]!r}")
    return Entry(
        en=en,
        kind=kind,
        zh_hans=zh,
        zh_hant_tw=(row.get("zh_hant_tw") or "").strip(),
        zh_hant_hk=(row.get("zh_hant_hk") or "").strip(),
        variants=variants,
        aliases=_split(row.get("aliases") or ""),
        origin=origin,
    )


def parse_entries(
    text: str, where: str, *, origin: str = "user", csv_format: bool = False
) -> list[Entry]:
    """Entries of a TSV (or CSV) text with a header naming at least ``en`` and ``zh_hans``."""
    lines = [(n, ln) for n, ln in enumerate(text.splitlines(), 1) if not ln.startswith("#")]
    lines = [(n, ln) for n, ln in lines if ln.strip()]
    if not lines:
        raise GlossaryError(f"{where}: no entries (expected a header line: {' '.join(COLUMNS)})")
    delimiter = "," if csv_format else "\t"
    reader = csv.reader(io.StringIO("\n".join(ln for _, ln in lines)), delimiter=delimiter)
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise GlossaryError(f"{where}: not valid {'CSV' if csv_format else 'TSV'}: {exc}") from None
    header = [h.strip() for h in rows[0]]
    unknown = [h for h in header if h not in COLUMNS]
    if unknown or "en" not in header or "zh_hans" not in header:
        raise GlossaryError(
            f"{where} line {lines[0][0]}: header must name columns from {', '.join(COLUMNS)} "
            f"including en and zh_hans, got {delimiter.join(header)!r}"
        )
    out: list[Entry] = []
    for (lineno, _), cells in zip(lines[1:], rows[1:], strict=True):
        if len(cells) > len(header):
            raise GlossaryError(
                f"{where} line {lineno}: {len(cells)} fields, the header has {len(header)}"
            )
        row = dict(zip(header, cells, strict=False))
        out.append(entry_from_row(row, f"{where} line {lineno}", origin))
    return out


def read_file(path: str | Path) -> list[Entry]:
    """A user glossary file (``.tsv``/``.txt`` tab-separated, ``.csv`` comma-separated)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GlossaryError(f"{p}: no such file") from None
    except UnicodeDecodeError:
        raise GlossaryError(f"{p}: not UTF-8 text") from None
    except OSError as exc:
        raise GlossaryError(f"{p}: cannot read: {exc.strerror}") from None
    return parse_entries(text, str(p), csv_format=p.suffix.lower() == ".csv")


@functools.cache
def builtin() -> tuple[Entry, ...]:
    text = files("waikan.summarize").joinpath("data/glossary.tsv").read_text("utf-8")
    return tuple(parse_entries(text, "built-in glossary", origin="builtin"))


def with_origin(entries: Sequence[Entry], origin: str) -> list[Entry]:
    return [replace(e, origin=origin) for e in entries]
