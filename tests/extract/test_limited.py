"""Extraction within limits: each broken limit is a reject reason, never a hang or a crash."""

from __future__ import annotations

import pytest
from tests.conftest import DATA

from waikan.errors import ExtractError
from waikan.extract.core import extract
from waikan.extract.limited import extract_limited, nesting_depth

PAGE = (DATA / "reuters-blinken-wang.html").read_bytes()
URL = "https://www.reuters.com/world/blinken-wang/"


def test_same_result_as_in_process() -> None:
    assert extract_limited(PAGE, url=URL) == extract(PAGE, url=URL)


def test_nesting_depth_counts_elements_not_void_tags() -> None:
    assert nesting_depth(b"<div><p>a<br>b<img src=x></p><p/></div>") == 2
    assert nesting_depth(b"<b>" * 50, stop=10) == 11  # stops counting past the limit


def test_deeply_nested_page_is_too_deep() -> None:
    deep = b"<html><body>" + b"<div>" * 100_000 + b"x" + b"</div>" * 100_000
    assert extract_limited(deep).reject_reason == "too_deep"


def test_over_the_byte_cap_is_too_large() -> None:
    assert extract_limited(PAGE, max_bytes=1000).reject_reason == "too_large"


def test_deadline_is_timeout() -> None:
    assert extract_limited(PAGE, timeout=0.001).reject_reason == "timeout"


def test_memory_ceiling_is_memory() -> None:
    big = b"<html><body>" + b"<p>some words here and there</p>" * 300_000
    got = extract_limited(big, max_bytes=100 * 2**20, timeout=60, memory_mb=100)
    assert got.reject_reason == "memory"


def test_not_a_document_is_still_an_error() -> None:
    with pytest.raises(ExtractError):
        extract_limited(b"\x00\x01binary" * 100)


def test_limits_hold_in_a_process_that_is_already_large() -> None:
    ballast = bytearray(1200 * 2**20)  # the parent's address space, inherited by the fork
    try:
        assert extract_limited(PAGE, url=URL, memory_mb=300) == extract(PAGE, url=URL)
        with pytest.raises(ExtractError):
            extract_limited(b"\x00\x01binary" * 100, memory_mb=300)
    finally:
        del ballast
