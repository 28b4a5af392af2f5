"""Golden pages: every ``*.expected.json`` under tests/data is the acceptance for its page.

``tests/data/NAME.expected.json`` pairs with ``tests/data/NAME.html``; the
demo expectations in ``tests/data/demo/`` pair with the shipped samples in
``src/waikan/demo/samples/``. Each key present in the JSON is asserted,
including the metadata and caption fields owned by their own modules: this
is the end-to-end contract of :func:`waikan.extract.extract`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from waikan.errors import ExtractError
from waikan.extract import extract
from waikan.extract.core import DEFAULT_MAX_BYTES
from waikan.models import Extracted, reading_minutes

TESTS = Path(__file__).resolve().parent.parent
DATA = TESTS / "data"
SAMPLES = TESTS.parent / "src" / "waikan" / "demo" / "samples"


def _golden() -> list[tuple[Path, Path]]:
    pairs = []
    for expected in sorted(DATA.rglob("*.expected.json")):
        name = expected.name.removesuffix(".expected.json") + ".html"
        page = SAMPLES / name if expected.parent.name == "demo" else expected.parent / name
        pairs.append((page, expected))
    return pairs


GOLDEN = _golden()


def _actual(doc: Extracted, key: str) -> Any:
    if key == "paragraphs":
        return list(doc.paragraphs)
    if key == "authors":
        return list(doc.authors)
    if key == "reading_minutes":
        return reading_minutes(doc.word_count)
    return getattr(doc, key)


def test_golden_pages_are_present() -> None:
    assert GOLDEN, "no *.expected.json under tests/data"
    for page, expected in GOLDEN:
        assert page.exists(), f"{expected.name} has no page {page}"


@pytest.mark.parametrize(("page", "expected"), GOLDEN, ids=[p.stem for p, _ in GOLDEN])
def test_golden_page(page: Path, expected: Path) -> None:
    want = json.loads(expected.read_text(encoding="utf-8"))
    doc = extract(page.read_bytes())
    for key, value in want.items():
        assert _actual(doc, key) == value, key
    if "reject_reason" not in want:
        assert doc.reject_reason is None


def test_reuters_body_is_byte_identical() -> None:
    want = json.loads((DATA / "reuters-blinken-wang.expected.json").read_text(encoding="utf-8"))
    doc = extract((DATA / "reuters-blinken-wang.html").read_bytes())
    assert "\n\n".join(doc.paragraphs).encode() == "\n\n".join(want["paragraphs"]).encode()
    assert len(doc.paragraphs) == 8
    assert not doc.paragraphs[0].startswith("WASHINGTON")


def test_str_and_bytes_agree() -> None:
    raw = (DATA / "reuters-blinken-wang.html").read_bytes()
    assert extract(raw) == extract(raw.decode("utf-8"))


def test_too_large_is_rejected_without_parsing() -> None:
    huge = b"<html><body><p>" + b"word " * (40 * 1024 * 1024) + b"</p></body></html>"
    doc = extract(huge)
    assert doc.reject_reason == "too_large"
    assert doc.paragraphs == ()


def test_max_bytes_is_a_keyword() -> None:
    raw = (DATA / "reuters-blinken-wang.html").read_bytes()
    assert extract(raw, max_bytes=1000).reject_reason == "too_large"
    assert len(raw) < DEFAULT_MAX_BYTES


@pytest.mark.parametrize(
    "data",
    [b"\x00\x01\x02binary\x00" * 100, b"%PDF-1.7\n%\xe2\xe3\xcf\xd3", b"\x1f\x8b\x08\x00gzip"],
    ids=["nul", "pdf", "gzip"],
)
def test_binary_data_is_an_error(data: bytes) -> None:
    with pytest.raises(ExtractError) as info:
        extract(data)
    assert "\n" not in str(info.value)


def test_deep_nesting_does_not_crash() -> None:
    depth = 100_000
    page = "<html><body>" + "<div>" * depth + "<p>deep</p>" + "</div>" * depth + "</body></html>"
    doc = extract(page)
    assert doc.reject_reason is not None


@pytest.mark.parametrize("page", ["", "   ", "<html></html>", "<p>", "<<<>>>"])
def test_degenerate_pages_are_rejected_not_raised(page: str) -> None:
    assert extract(page).reject_reason is not None


def test_utf16_with_bom_is_decoded() -> None:
    raw = (DATA / "reuters-blinken-wang.html").read_text(encoding="utf-8")
    assert extract(raw.encode("utf-16")).paragraphs == extract(raw).paragraphs


def test_legacy_charset_is_honoured() -> None:
    body = "<p>" + " ".join(["café façade naïve “quoted” words"] * 40) + "</p>"
    head = '<head><meta charset="windows-1252"><title>t</title></head>'
    page = f"<html>{head}<body><article>{body}</article></body></html>"
    doc = extract(page.encode("cp1252"))
    assert "café façade naïve “quoted”" in doc.body


def test_language_is_detected_from_the_body() -> None:
    sentence = (
        "Der Bundestag hat am Donnerstag ein neues Gesetz beschlossen, das die Regeln für"
        " erneuerbare Energien grundlegend ändert und den Ausbau beschleunigen soll."
    )
    text = " ".join([sentence] * 12)
    page = f"<html><body><article><h1>Gesetz</h1><p>{text}</p><p>{text}</p></article></body></html>"
    assert extract(page).language == "de"
