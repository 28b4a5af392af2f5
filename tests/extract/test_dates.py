"""Date normalization (SPEC §1): UTC instant with a zone, the day without one."""

from __future__ import annotations

import pytest

from waikan.extract.dates import normalize_date


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("2023-10-27T14:03:40Z", "2023-10-27T14:03:40Z"),
        ("2023-10-27T14:03:40.123Z", "2023-10-27T14:03:40Z"),
        ("2023-10-27T14:03:40.123456+00:00", "2023-10-27T14:03:40Z"),
        ("2024-04-18T00:30:05+01:00", "2024-04-17T23:30:05Z"),
        ("2023-12-22T11:09:34-0500", "2023-12-22T16:09:34Z"),
        ("2023-12-31T22:00:00-05:00", "2024-01-01T03:00:00Z"),
        ("2023-10-27T14:03Z", "2023-10-27T14:03:00Z"),
        ("2023-10-27 14:03:40 UTC", "2023-10-27T14:03:40Z"),
        ("2023-10-27T10:03:40 EDT", "2023-10-27T14:03:40Z"),
        ("20231027T140340Z", "2023-10-27T14:03:40Z"),
        # a time without a zone yields the day only
        ("2023-10-27T14:03:40", "2023-10-27"),
        ("2023-10-27 23:59:59", "2023-10-27"),
        ("2023-10-27T14:03:40.5", "2023-10-27"),
        ("2023-10-27T14:03:40 XYZ", "2023-10-27"),
        # day only
        ("2023-10-27", "2023-10-27"),
        ("2023/10/27", "2023-10-27"),
        ("20231027", "2023-10-27"),
        ("October 27, 2023", "2023-10-27"),
        ("Oct. 27, 2023", "2023-10-27"),
        ("27 October 2023", "2023-10-27"),
        ("Tue 5 Mar 2024", "2024-03-05"),
        # textual with time and zone
        ("Fri, 27 Oct 2023 14:03:40 GMT", "2023-10-27T14:03:40Z"),
        ("Fri, 27 Oct 2023 14:03:40 +0100", "2023-10-27T13:03:40Z"),
        ("October 27, 2023 10:03 AM EDT", "2023-10-27T14:03:00Z"),
        ("October 27, 2023 2:03 p.m. ET", "2023-10-27T18:03:00Z"),
        ("October 27, 2023 2:03 PM", "2023-10-27"),
        # epoch seconds / milliseconds
        ("1698415420", "2023-10-27T14:03:40Z"),
        ("1698415420000", "2023-10-27T14:03:40Z"),
        # garbage
        ("", None),
        ("   ", None),
        ("yesterday", None),
        ("2023-13-45", None),
        ("2023-02-30T10:00:00Z", None),
        ("0001-01-01T00:00:00Z", None),
        ("not a date 12345", None),
        ("2023-10-27T25:61:00Z", "2023-10-27"),
        ("x" * 500, None),
    ],
)
def test_normalize_date(raw: str, want: str | None) -> None:
    assert normalize_date(raw) == want


@pytest.mark.parametrize("value", [None, 3.5, True, ["2023-10-27"], {"@value": 1}])
def test_non_strings_are_not_dates(value: object) -> None:
    assert normalize_date(value) is None
